// Every consumer probe at once (scripts/consumers: each reads what the sidecar published through that
// tool's own code and calls the target with the client it builds), long-lived, against one sidecar with
// 600-second certificates renewed every minute: no tool that reloads by itself fails a call, and a
// long-lived client-go client on the directory sink or on the reference Secret (whose data never changes)
// fails none but a call client-go itself cuts when it closes its connections for a new certificate.
// Each tool also reads a token target's publication (600-second tokens renewed every minute, through
// `bootstrap --credential token`): its own format with the token embedded, or the directory's tokenFile.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { ensureConsumerProbes } from '../../scripts/testbed/binaries.ts';
import { testCluster } from '../support/clusters.ts';
import { Probe, type ProbeLine } from '../support/consumer-probe.ts';
import { eventually } from '../support/kube.ts';
import {
  prepareTarget,
  sidecarTestFile,
  TestApprover,
  testSidecarSettings,
  type PreparedTarget,
} from '../support/sidecar.ts';
import { prepareTokenTarget, type PreparedTokenTarget } from '../support/token-target.ts';

const target = testCluster('target');
const source = testCluster('source');
const { scratch, startSidecar, remember, secrets } = sidecarTestFile('consumers');
const EXPIRATION_SECONDS = 600;
// Twelve minutes by default: past the first certificate's expiry, so every consumer must have moved on.
const RUN_SECONDS = Number(process.env.KCR_CONSUMERS_TEST_SECONDS ?? '720');
const ROTATE_EVERY_SECONDS = 60;
const NAMESPACE = 'default';
// client-go-reference is left out for tokens: its point is a Secret whose data never changes for certificates.
const TOKEN_TOOLS = ['argocd', 'istio', 'cluster-api', 'flux', 'crossplane', 'client-go-directory'];

/** One target of the sidecar, read by one tool's probe. */
interface Case {
  readonly tool: string;
  readonly name: string;
  readonly dir: string;
  readonly bootstrapKubeconfig: string;
  /** The user every call must be made as. */
  readonly user: string;
  /** The sidecar target's credential fields. */
  readonly fields: Record<string, unknown>;
  readonly certificate?: PreparedTarget;
  readonly token?: PreparedTokenTarget & { readonly firstToken: string };
}

const outputDir = (one: Case) => join(one.dir, 'out');
const rotated = (line: { msg: string }) => line.msg === 'certificate rotated' || line.msg === 'token rotated';

// client-go's own log line when a certificate file changed: it then closes every connection it made.
const CLIENT_GO_CLOSES = /Certificate rotation detected, shutting down client connections/;

/** When client-go logged closing its connections for a new certificate. */
const clientGoCloseTimes = (lines: readonly ProbeLine[]) =>
  lines
    .filter((line) => line.event === 'log' && CLIENT_GO_CLOSES.test(line.message ?? ''))
    .map((line) => line.time ?? '');

/**
 * How long after logging its close a call may still be handed one of the closed connections: client-go logs,
 * then closes them (util/connrotation CloseAll), and net/http drops a closed idle connection from its pool only
 * once that connection's read loop notices, so a call starting in between writes to a closed one (a CI run saw
 * one start 1.8 ms after the log line).
 */
const CLOSED_CONNECTION_REUSE_MS = 100;

/** The failed calls that client-go's closing of its connections for a new certificate does not explain. */
function failuresNotFromClientGoClosing(lines: readonly ProbeLine[]): ProbeLine[] {
  const closes = clientGoCloseTimes(lines).map((time) => Date.parse(time));
  return lines.filter((line) => {
    if (line.event !== 'call' || line.ok) return false;
    const [started, ended] = [Date.parse(line.started ?? ''), Date.parse(line.time ?? '')];
    const closedDuringCall = closes.some((at) => started - CLOSED_CONNECTION_REUSE_MS <= at && at <= ended);
    return !(closedDuringCall && /use of closed network connection/.test(line.error ?? ''));
  });
}

describe('consumers read what the sidecar publishes, with their own code, across rotations', () => {
  const prepared = new Map<string, Case>();
  const probes = new Map<string, Probe>();
  let approvers: TestApprover[] = [];
  let sidecar: ReturnType<typeof startSidecar>;
  const referenceData: string[] = [];

  // What each tool's target publishes, and how its probe is started.
  const tools: Record<string, { secret?: Record<string, unknown>; probe: (one: Case) => string[] }> = {
    argocd: {
      secret: { format: 'argocd' },
      probe: (one) => ['-namespace', NAMESPACE, '-name', `${one.name}-argocd`],
    },
    istio: { secret: { format: 'istio' }, probe: (one) => ['-namespace', NAMESPACE, '-name', `${one.name}-istio`] },
    'cluster-api': {
      secret: { format: 'cluster-api' },
      probe: (one) => ['-namespace', NAMESPACE, '-name', one.name],
    },
    flux: { secret: { format: 'flux' }, probe: (one) => ['-namespace', NAMESPACE, '-name', `${one.name}-flux`] },
    crossplane: {
      secret: { format: 'kubeconfig', key: 'kubeconfig', tlsKeys: false },
      probe: (one) => ['-namespace', NAMESPACE, '-name', `${one.name}-crossplane`, '-key', 'kubeconfig'],
    },
    'client-go-directory': {
      probe: (one) => ['-tool', 'client-go-directory', '-kubeconfig', join(outputDir(one), 'kubeconfig')],
    },
    'client-go-reference': {
      secret: { format: 'kubeconfig', reference: {} },
      probe: (one) => [
        '-tool',
        'client-go-reference',
        '-namespace',
        NAMESPACE,
        '-name',
        `${one.name}-client-go-reference`,
      ],
    },
  };
  const secretName = (tool: string, one: Case) =>
    tool === 'cluster-api' ? `${one.name}-kubeconfig` : `${one.name}-${tool}`;
  const binOf = (tool: string) => (tool.startsWith('client-go') ? 'client-go' : tool);

  before(async () => {
    const bin = await ensureConsumerProbes();
    for (const tool of Object.keys(tools)) {
      const certificate = await prepareTarget(target);
      prepared.set(tool, {
        tool,
        ...certificate,
        user: certificate.identity.commonName,
        fields: { identity: certificate.identity },
        certificate,
      });
    }
    for (const tool of TOKEN_TOOLS) {
      const token = await prepareTokenTarget(target, source, { targetNamespace: 'kcr-consumers' });
      prepared.set(`${tool} (token)`, { tool, ...token, fields: token.targetFields, token });
    }
    approvers = [...prepared.values()].flatMap((one) =>
      one.certificate === undefined ? [] : [new TestApprover(target.admin(), one.name)],
    );
    const [home] = prepared.values();
    assert.ok(home !== undefined);
    const config = {
      ...testSidecarSettings(home.dir, source.state.kubeconfig),
      targets: [...prepared.values()].map((one) => {
        const { secret } = tools[one.tool] ?? assert.fail(one.tool);
        const tool = one.tool;
        return {
          name: one.name,
          bootstrapKubeconfig: one.bootstrapKubeconfig,
          ...one.fields,
          expirationSeconds: EXPIRATION_SECONDS,
          rotation: { minRemainingSeconds: 60, forceIntervalSeconds: ROTATE_EVERY_SECONDS },
          sinks: {
            directory: { path: outputDir(one) },
            ...(secret === undefined
              ? {}
              : { secret: { namespace: NAMESPACE, name: secretName(tool, one), ...secret } }),
          },
        };
      }),
    };
    const configPath = join(home.dir, 'config.yaml');
    writeFileSync(configPath, stringify(config));
    sidecar = startSidecar(configPath);
    const api = source.admin().makeApiClient(CoreV1Api);
    for (const [key, one] of prepared) {
      const { tool } = one;
      const { secret, probe } = tools[tool] ?? assert.fail(tool);
      // Each probe starts once its input exists, as a tool would be installed after the sidecar.
      await eventually(
        async () => {
          if (secret === undefined) readFileSync(join(outputDir(one), 'kubeconfig'));
          else await api.readNamespacedSecret({ namespace: NAMESPACE, name: secretName(tool, one) });
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      probes.set(
        key,
        new Probe({
          bin: join(bin, `${binOf(tool)}-probe`),
          logFile: join(scratch.path, `${key.replace(/\W+/g, '-')}.jsonl`),
          args: probe(one),
          sourceKubeconfig: source.state.kubeconfig,
          interval: '2s',
        }),
      );
    }
  });

  after(async () => {
    await Promise.all([...probes.values()].map((probe) => probe.stop()));
    for (const one of prepared.values()) {
      if (one.certificate !== undefined) remember(one.certificate);
      if (one.token !== undefined) {
        secrets.push(one.token.firstToken);
        const token = join(outputDir(one), 'token');
        if (existsSync(token)) secrets.push(readFileSync(token, 'utf8'));
      }
    }
    await sidecar.stop();
    await Promise.all(approvers.map((approver) => approver.stop()));
  });

  it(`every probe calls the target as the right identity for ${String(RUN_SECONDS)} s, failing only where client-go closes its own connections`, async (context) => {
    const api = source.admin().makeApiClient(CoreV1Api);
    const reference = prepared.get('client-go-reference');
    assert.ok(reference !== undefined);
    const deadline = Date.now() + RUN_SECONDS * 1000;
    while (Date.now() < deadline) {
      const secret = await api.readNamespacedSecret({
        namespace: NAMESPACE,
        name: secretName('client-go-reference', reference),
      });
      referenceData.push(JSON.stringify(secret.data));
      await sleep(10_000);
    }
    await Promise.all([...probes.values()].map((probe) => probe.stop()));

    const rotations = sidecar.lines.filter(rotated);
    const report: Record<
      string,
      {
        calls: number;
        failures: number;
        clientGoClosedConnections: number;
        rotationsSeen: number;
        rotationsPublished: number;
      }
    > = {};
    const failed: Record<string, ProbeLine[]> = {};
    for (const [tool, probe] of probes) {
      const one = prepared.get(tool);
      assert.ok(one !== undefined);
      const lines = probe.lines();
      const calls = lines.filter((line) => line.event === 'call');
      failed[tool] = calls.filter((line) => !line.ok);
      report[tool] = {
        calls: calls.length,
        failures: failed[tool].length,
        clientGoClosedConnections: clientGoCloseTimes(lines).length,
        rotationsSeen: lines.filter((line) => line.event === 'rotation').length,
        rotationsPublished: rotations.filter((line) => line.target === one.name).length,
      };
      assert.deepEqual(
        lines.filter((line) => line.event === 'fatal'),
        [],
        `${tool} could not start`,
      );
      assert.ok(calls.length >= RUN_SECONDS / 4, `${tool}: only ${String(calls.length)} calls`);
      assert.ok(
        calls.every((line) => !line.ok || line.user === one.user),
        `${tool}: a call was made as someone other than ${one.user}`,
      );
    }
    context.diagnostic(`consumer probes: ${JSON.stringify(report)}`);
    // Trigger to published, per kind, as the sidecar measured it (the closing notes quote these).
    for (const kind of ['certificate', 'token']) {
      const durations = rotations
        .filter((line) => line.msg === `${kind} rotated`)
        .map((line) => Number(line.durationMs))
        .sort((a, b) => a - b);
      const at = (fraction: number) =>
        durations[Math.min(durations.length - 1, Math.floor(durations.length * fraction))];
      context.diagnostic(
        `${kind} rotations: ${String(durations.length)}, p50 ${String(at(0.5))} ms, p99 ${String(at(0.99))} ms`,
      );
    }
    const reloading = ['argocd', 'istio', 'cluster-api', 'flux', 'crossplane'];
    // Tokens: every reader, the directory's tokenFile included (client-go re-reads it each minute, and the
    // token it holds is still valid): not one failed call.
    const tokenReaders = TOKEN_TOOLS.map((tool) => `${tool} (token)`);
    for (const tool of [...reloading, ...tokenReaders]) assert.deepEqual(failed[tool], [], `${tool}: failed calls`);
    // client-go closes every connection it made when it finds a changed certificate file
    // (transport/cert_rotation.go: its 5-minute poll, and each new connection's handshake), so a call on one
    // of them at that moment fails with "use of closed network connection", whoever published the files. A
    // failure is that only when client-go itself logged closing its connections during that very call (or
    // just before it began: CLOSED_CONNECTION_REUSE_MS);
    // any other failure (an expired certificate, a key that does not match, a refused identity) fails here.
    for (const tool of ['client-go-directory', 'client-go-reference']) {
      const probe = probes.get(tool) ?? assert.fail(tool);
      const lines = probe.lines();
      const unexplained = failuresNotFromClientGoClosing(lines);
      context.diagnostic(
        `${tool}: client-go closed its connections at ${JSON.stringify(clientGoCloseTimes(lines))}; failed calls ${JSON.stringify(failed[tool]?.map((line) => [line.started, line.time, line.error]))}`,
      );
      assert.deepEqual(
        unexplained.map((line) => [line.started, line.time, line.error]),
        [],
        `${tool}: failed calls client-go's closing of its connections does not explain`,
      );
      // client-go's 5-minute poll found a new certificate each time: it used the rotated files.
      assert.ok(
        (report[tool]?.clientGoClosedConnections ?? 0) >= Math.floor(RUN_SECONDS / 300),
        `${tool}: client-go did not reload the rotated certificate files every 5 minutes`,
      );
    }
    for (const tool of [...reloading, ...tokenReaders.filter((key) => !key.startsWith('client-go'))])
      assert.ok((report[tool]?.rotationsSeen ?? 0) >= 3, `${tool} saw fewer than three rotations`);
    assert.ok(
      (report['client-go-directory (token)']?.rotationsPublished ?? 0) >= 3,
      'fewer than three token rotations',
    );
    assert.ok((report['client-go-reference']?.rotationsPublished ?? 0) >= 3, 'fewer than three rotations');
    // The reference Secret's data never changed: nothing that restarts on a change would have.
    assert.equal(new Set(referenceData).size, 1, 'the reference Secret changed during rotations');
  });
});
