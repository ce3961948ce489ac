// ClusterProfile consumers (issue 26 section 3), with the consumers' own code: the clusterprofile probe
// (scripts/consumers/clusterprofile, sigs.k8s.io/cluster-inventory-api v0.1.0's access.NewFromFile and
// BuildConfigFromCP, as MultiKueue and Argo CD build their clients) calls a certificate target and a token target
// continuously through the ClusterProfiles the sidecar keeps in the source, across rotations every minute of
// 600-second credentials, once with our provider file (`kubeconfig-rotator credential`) and once with the upstream
// kubeconfig-secretreader plugin's. Ours: no 401, the plugin run again after every rotation (for certificates, only
// the call client-go cuts itself when it closes its connections for the new certificate may fail). The upstream
// plugin sets no expiry, so client-go keeps the first credential it read until a call fails with 401: one failed
// call per credential lifetime, then a plugin run; nothing at rotations. And without ClusterProfile, a client-go
// client built once from a kubeconfig whose user execs our plugin on the directory sink fails no call either.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { ensureConsumerProbes, REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { PROVIDER_NAME, SECRETREADER_PROVIDER_NAME } from '../../src/core/exec-credential/extension.ts';
import { OVERDUE_RETRY_MS } from '../../src/core/exec-credential/render.ts';
import { CLUSTER_PROFILES, installClusterProfileCrd } from '../support/cluster-profile-crd.ts';
import { testCluster } from '../support/clusters.ts';
import { Probe, type ProbeLine } from '../support/consumer-probe.ts';
import { eventually, uniqueName } from '../support/kube.ts';
import { prepareTarget, sidecarTestFile, TestApprover, testSidecarSettings } from '../support/sidecar.ts';
import { prepareTokenTarget } from '../support/token-target.ts';

const target = testCluster('target');
const source = testCluster('source');
const { scratch, startSidecar, remember, secrets, track } = sidecarTestFile('cluster-profile-consumers');
const EXPIRATION_SECONDS = 600;
const ROTATE_EVERY_SECONDS = 60;
// Past the first credential's expiry, as the target enforces it: a certificate at its notAfter, a token up to a
// minute later (the apiserver accepts a ServiceAccount token 60 s past its exp: a run of 690 s saw the token's 401
// 68 s after it), both issued a moment before the probes start; and short of the second credential's (issued at
// most a rotation interval before the first 401, so about 540 s after it): exactly one expiry per target.
const RUN_SECONDS = Number(process.env.KCR_CLUSTER_PROFILE_TEST_SECONDS ?? '720');
const TOKEN_LEEWAY_SECONDS = 60;
const EXPIRIES_IN_RUN = 1;
const CALL_INTERVAL = '1s';
/** The sidecar logs a rotation once every sink has it: the directory (what the plugin reads) a moment before. */
const PUBLISHED_BEFORE_LOGGED_MS = 1_000;

/** One probe process, its JSON lines (and the exec plugin's stderr) kept in a file. */
const startProbe = (bin: string, name: string, args: readonly string[]) =>
  new Probe({
    bin,
    logFile: join(scratch.path, `${name}.jsonl`),
    args,
    sourceKubeconfig: source.state.kubeconfig,
    interval: CALL_INTERVAL,
    // Both plugins read their Secret in the source cluster with the consumer's own credentials: in a pod, its
    // ServiceAccount; here, $KUBECONFIG (each plugin's fallback outside a pod).
    env: { ...process.env, KUBECONFIG: source.state.kubeconfig },
  });

const pluginRuns = (lines: readonly ProbeLine[]) =>
  lines.filter((line) => line.event === 'log' && /^exec plugin ran/.test(line.message ?? ''));

describe('ClusterProfile consumers (cluster-inventory-api access) across rotations', () => {
  const namespace = uniqueName('cp-consumers');
  const probes = new Map<string, Probe>();
  const users = new Map<string, string>();
  const names = new Map<string, string>();
  let sidecar: ReturnType<typeof startSidecar>;
  let approver: TestApprover;
  let tokenOut = '';

  before(async () => {
    const [shortest, longest] = [
      EXPIRATION_SECONDS + TOKEN_LEEWAY_SECONDS + 40,
      2 * EXPIRATION_SECONDS - ROTATE_EVERY_SECONDS - 60,
    ];
    assert.ok(
      RUN_SECONDS >= shortest && RUN_SECONDS <= longest,
      `KCR_CLUSTER_PROFILE_TEST_SECONDS must see exactly one credential expiry: between ${String(shortest)} and ${String(longest)}`,
    );
    const bin = await ensureConsumerProbes();
    await installClusterProfileCrd(source);
    const core = source.admin().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });

    const certificate = await prepareTarget(target);
    remember(certificate);
    const token = await prepareTokenTarget(target, source, { targetNamespace: 'kcr-cp-consumers' });
    secrets.push(token.firstToken);
    tokenOut = join(token.dir, 'out');
    approver = new TestApprover(target.admin(), certificate.name);
    names.set('certificate', certificate.name).set('token', token.name);
    users.set('certificate', certificate.identity.commonName).set('token', token.user);

    const sinks = (name: string, dir: string) => ({
      directory: { path: join(dir, 'out') },
      // A self-contained kubeconfig Secret: both access providers (ours and kubeconfig-secretreader) read it.
      secret: { namespace, name: `${name}-kubeconfig` },
    });
    const common = {
      expirationSeconds: EXPIRATION_SECONDS,
      rotation: { minRemainingSeconds: 60, forceIntervalSeconds: ROTATE_EVERY_SECONDS },
      clusterProfile: {},
    };
    const config = {
      ...testSidecarSettings(certificate.dir, source.state.kubeconfig),
      clusterProfiles: { namespace, healthCheckSeconds: 10 },
      targets: [
        {
          name: certificate.name,
          bootstrapKubeconfig: certificate.bootstrapKubeconfig,
          identity: certificate.identity,
          ...common,
          sinks: sinks(certificate.name, certificate.dir),
        },
        {
          name: token.name,
          bootstrapKubeconfig: token.bootstrapKubeconfig,
          ...token.targetFields,
          ...common,
          sinks: sinks(token.name, token.dir),
        },
      ],
    };
    const configPath = join(certificate.dir, 'config.yaml');
    writeFileSync(configPath, stringify(config));
    sidecar = startSidecar(configPath);

    // The ClusterProfiles the sidecar keeps, each Joined with both access providers.
    const profiles = source.admin().makeApiClient(CustomObjectsApi);
    for (const name of names.values())
      await eventually(
        async () => {
          const profile = (await profiles.getNamespacedCustomObject({ ...CLUSTER_PROFILES, namespace, name })) as {
            status?: { accessProviders?: { name: string }[]; conditions?: { type: string; status: string }[] };
          };
          const providers = (profile.status?.accessProviders ?? []).map((provider) => provider.name);
          assert.deepEqual(providers.sort(), [PROVIDER_NAME, SECRETREADER_PROVIDER_NAME].sort());
          assert.ok(profile.status?.conditions?.some((c) => c.type === 'Joined' && c.status === 'True'));
        },
        { timeoutMs: 90_000, intervalMs: 500 },
      );

    const providerFile = (name: string, command: string, args: readonly string[]) => {
      const path = join(scratch.path, `${name}-providers.json`);
      const execConfig = { apiVersion: 'client.authentication.k8s.io/v1', command, args, provideClusterInfo: true };
      writeFileSync(path, JSON.stringify({ providers: [{ name, execConfig }] }));
      return path;
    };
    const files = {
      ours: providerFile(PROVIDER_NAME, process.execPath, [join(REPO_ROOT, 'src', 'cli.ts'), 'credential']),
      upstream: providerFile(SECRETREADER_PROVIDER_NAME, join(bin, 'kubeconfig-secretreader-plugin'), []),
    };
    for (const [kind, name] of names)
      for (const [plugin, file] of Object.entries(files)) {
        const probe = startProbe(join(bin, 'clusterprofile-probe'), `${kind}-${plugin}`, [
          '-clusterprofile-provider-file',
          file,
          '-namespace',
          namespace,
          '-name',
          name,
        ]);
        probes.set(`${kind} ${plugin}`, track(probe));
      }
    // Without ClusterProfile: a long-lived client-go client built once from a kubeconfig whose user runs the plugin on
    // the directory sink (the restart-free option for an agent that reads its kubeconfig once). Its kubeconfig never
    // changes; past the first credential's expiry, no failed call means client-go ran the plugin again in time.
    const caData = Buffer.from(readFileSync(target.state.caCertFile, 'utf8')).toString('base64');
    for (const [kind, dir] of [
      ['certificate', certificate.dir],
      ['token', token.dir],
    ] as const) {
      const kubeconfig = join(scratch.path, `${kind}-exec.kubeconfig`);
      const exec = {
        apiVersion: 'client.authentication.k8s.io/v1',
        command: process.execPath,
        args: [join(REPO_ROOT, 'src', 'cli.ts'), 'credential', '--directory', join(dir, 'out')],
        interactiveMode: 'Never',
      };
      writeFileSync(
        kubeconfig,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          'current-context': kind,
          clusters: [{ name: kind, cluster: { server: target.state.server, 'certificate-authority-data': caData } }],
          users: [{ name: kind, user: { exec } }],
          contexts: [{ name: kind, context: { cluster: kind, user: kind } }],
        }),
      );
      const probe = startProbe(join(bin, 'client-go-probe'), `${kind}-exec-directory`, [
        '-tool',
        `${kind}-exec-directory`,
        '-kubeconfig',
        kubeconfig,
      ]);
      probes.set(`${kind} exec-directory`, track(probe));
    }
  });

  after(async () => {
    await Promise.all([...probes.values()].map((probe) => probe.stop()));
    const token = join(tokenOut, 'token');
    if (existsSync(token)) secrets.push(readFileSync(token, 'utf8'));
    await sidecar.stop();
    await approver.stop();
    await source.admin().makeApiClient(CoreV1Api).deleteNamespace({ name: namespace });
  });

  it(`our plugin: no 401, only client-go's own cut at a certificate rotation; the upstream plugin fails one call (401) per credential lifetime (${String(RUN_SECONDS)} s)`, async (context) => {
    await sleep(RUN_SECONDS * 1000);
    await Promise.all([...probes.values()].map((probe) => probe.stop()));

    const rotations = sidecar.lines.filter(
      (line) => line.msg === 'certificate rotated' || line.msg === 'token rotated',
    );
    const report: Record<string, unknown> = {};
    try {
      for (const [key, probe] of probes) {
        const [kind = '', plugin = ''] = key.split(' ');
        const lines = probe.lines();
        const calls = lines.filter((line) => line.event === 'call');
        const failed = calls.filter((line) => !line.ok);
        const runs = pluginRuns(lines);
        const started = Date.parse(lines.find((line) => line.event === 'start')?.time ?? '');
        const published = rotations.filter(
          (line) => line.target === names.get(kind) && Date.parse(String(line.time)) > started,
        ).length;
        const seen = lines.filter((line) => line.event === 'rotation').length;
        report[key] = {
          calls: calls.length,
          failed: failed.map((line) => [line.started, line.error]),
          pluginRuns: runs.map((line) => `${line.time ?? ''} ${line.message ?? ''}`),
          credentialsChanged: seen,
          rotationsPublished: published,
        };
        assert.deepEqual(
          lines.filter((line) => line.event === 'fatal'),
          [],
          `${key} could not start`,
        );
        assert.ok(calls.length >= RUN_SECONDS / 2, `${key}: only ${String(calls.length)} calls`);
        assert.ok(
          calls.every((line) => !line.ok || line.user === users.get(kind)),
          `${key}: a call was made as someone other than ${users.get(kind) ?? ''}`,
        );
        assert.ok(published >= 5, `${key}: only ${String(published)} rotations during the run`);
        if (plugin === 'exec-directory' || plugin === 'ours') {
          // client-go's exec authenticator, given a new certificate, closes every connection it made
          // (a.connTracker.CloseAll()) inside the round trip of the call that ran the plugin and then sends that
          // call, which can be handed one of the just-closed connections. That call runs the plugin across the
          // rotation: it may start a moment before the sidecar logs it (the old credential's expirationTimestamp
          // is the rotation's deadline, and the sidecar publishes a moment after it; seen: a call started 1.1 s
          // before its plugin run returned the new certificate), or up to the plugin's 5-s retry after it (the
          // plugin read just before the sidecar published). Such a failure, at most one per rotation, is
          // client-go's; any other (a 401, an expired credential) fails here. Tokens close nothing.
          const rotationTimes = rotations
            .filter((line) => line.target === names.get(kind))
            .map((line) => Date.parse(String(line.time)));
          const rotationOf = (call: ProbeLine) => {
            const started = Date.parse(call.started ?? '');
            const ended = Date.parse(call.time ?? '');
            return rotationTimes.find(
              (time) => started <= time + OVERDUE_RETRY_MS + 2_000 && ended >= time - PUBLISHED_BEFORE_LOGGED_MS,
            );
          };
          // Where the probe sees the credential client-go used (ours), the cut call is also the one it changed in.
          const changedIn = (call: ProbeLine) =>
            (call.credential ?? '') === '' || calls[calls.indexOf(call) - 1]?.credential !== call.credential;
          const closing = failed.filter(
            (line) =>
              kind === 'certificate' &&
              /use of closed network connection/.test(line.error ?? '') &&
              rotationOf(line) !== undefined &&
              changedIn(line),
          );
          assert.equal(new Set(closing.map(rotationOf)).size, closing.length, `${key}: two cut calls at one rotation`);
          report[key] = { ...(report[key] as object), cutByClientGoClosingItsConnections: closing.length };
          assert.deepEqual(
            failed.filter((line) => !closing.includes(line)).map((line) => [line.started, line.error]),
            [],
            `${key}: failed calls`,
          );
        }
        if (plugin === 'exec-directory') continue;
        if (plugin === 'ours') {
          // Asked again after each rotation: the ExecCredential expired at the next rotation.
          assert.ok(
            runs.length >= published,
            `${key}: ${String(runs.length)} plugin runs for ${String(published)} rotations`,
          );
          assert.ok(
            seen >= published - 1,
            `${key}: used ${String(seen)} new credentials for ${String(published)} rotations`,
          );
        } else {
          // No expiry: the first credential is kept past every rotation until the target refuses it (401), once per
          // credential lifetime; client-go then runs the plugin again, and the next call uses the current one.
          assert.equal(failed.length, EXPIRIES_IN_RUN, `${key}: failed calls ${JSON.stringify(report[key])}`);
          for (const line of failed) assert.match(line.error ?? '', /Unauthorized/, key);
          assert.equal(runs.length, 1 + EXPIRIES_IN_RUN, `${key}: plugin runs ${JSON.stringify(report[key])}`);
          assert.equal(seen, EXPIRIES_IN_RUN, `${key}: credentials changed`);
          const failedAt = Date.parse(failed[0]?.time ?? '');
          const next = calls.find((line) => Date.parse(line.started ?? '') > failedAt);
          assert.equal(next?.ok, true, `${key}: the call after the 401 failed too`);
        }
      }
    } finally {
      context.diagnostic(`clusterprofile probes: ${JSON.stringify(report, null, 1)}`);
    }
  });
});
