// `npm run demo` (scripts/demo/main.ts): the whole product on this machine. Builds or reuses the control
// plane, starts a source and a target cluster, runs `bootstrap`, an approver in the target with only its own
// RBAC, a sidecar in the source with short lifetimes, a stand-in agent calling the target through the
// published kubeconfig, and a rogue sidecar asking for another cluster's identity. Works from a checkout
// (it needs scripts/ and Go to build the control plane).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type V1ClusterRoleBinding } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { runBootstrap } from '../../src/bootstrap/run.ts';
import { BOOTSTRAP_SECRET_KEY, bootstrapGroup, CSR_REQUESTER_ROLE } from '../../src/core/bootstrap/plan.ts';
import { readCertificate } from '../../src/core/pki/certificate.ts';
import { formatSubject } from '../../src/core/pki/subject.ts';
import { describeError } from '../../src/io/kube/errors.ts';
import { createApproverAccount, createUnlessExists } from '../testbed/approver-account.ts';
import { clustersRoot, ensureControlPlane } from '../testbed/binaries.ts';
import { CliProcess } from '../testbed/cli-process.ts';
import { runningClusters, startClusters, stopCluster, type ClusterState } from '../testbed/cluster.ts';
import { writeKubeletMount } from '../testbed/mount.ts';
import { parseMetrics, total } from '../testbed/metrics.ts';
import { renderLine, renderView, type DemoSnapshot } from './view.ts';

const execute = promisify(execFile);

export interface DemoOptions {
  /** Run this long, print a summary and exit (0 only if the agent saw no failed call); else until Ctrl-C or MAX_RUN_SECONDS. */
  readonly durationSeconds: number | undefined;
  /** Forced rotation interval of the demo's sidecar. */
  readonly rotateEverySeconds: number;
  readonly keepClusters: boolean;
  readonly signal: AbortSignal;
  readonly out: NodeJS.WriteStream;
}

const CLUSTERS = { source: 'demo-source', target: 'demo-target' } as const;
const NAMESPACE = 'kubeconfig-rotator';
const SOURCE = 'west';
const TARGET = 'east';
const IDENTITY = { commonName: 'demo-agent-west', organizations: ['demo-agents'] };
const ROGUE_IDENTITY = { commonName: 'demo-agent-north', organizations: ['demo-agents'] };
// The approver's ServiceAccount token is requested once for the whole run (the demo does not renew it), so a
// run without --duration still ends, before the token does.
const MAX_RUN_SECONDS = 86_400;
// Covers what comes between the token request and the start of the run (sidecars, first certificate).
const TOKEN_MARGIN_SECONDS = 600;

interface Agent {
  clientNodeCalls: number;
  kubectlCalls: number;
  failures: number;
  lastFailure?: string;
}

export async function runDemo(options: DemoOptions): Promise<number> {
  const say = (line: string) => options.out.write(`${line}\n`);
  const notes: string[] = [];
  const note = (line: string) => {
    notes.push(`${new Date().toISOString().slice(11, 19)} ${line}`);
  };
  const scratch = mkdtempSync(join(tmpdir(), 'kcr-demo-'));
  const root = clustersRoot();
  const running = runningClusters(root, Object.values(CLUSTERS));
  const startedHere = Object.values(CLUSTERS).filter((name) => !running.includes(name));
  const processes: CliProcess[] = [];
  const loops = new AbortController();
  const stopAll = AbortSignal.any([options.signal, loops.signal]);
  let agentDone: Promise<void> = Promise.resolve();
  const agent: Agent = { clientNodeCalls: 0, kubectlCalls: 0, failures: 0 };
  let keepLogs = false;
  try {
    say('building the control plane if needed (the first time takes about 8 minutes on 2 cores)...');
    const binDir = await ensureControlPlane((line) => {
      say(`  ${line}`);
    });
    say('starting the source and target clusters...');
    const [source, target] = await startClusters([CLUSTERS.source, CLUSTERS.target], {
      binDir,
      root,
      onProgress: (line) => {
        say(`  ${line}`);
      },
    });
    if (source === undefined || target === undefined) throw new Error('the demo clusters did not start');

    say(`kubeconfig-rotator bootstrap --source-name ${SOURCE} --target-name ${TARGET} --ttl 30m ...`);
    const bootstrapOutput: string[] = [];
    const code = await runBootstrap({
      targetKubeconfig: target.kubeconfig,
      targetContext: undefined,
      sourceKubeconfig: source.kubeconfig,
      sourceContext: undefined,
      source: SOURCE,
      target: TARGET,
      ttl: '30m',
      namespace: NAMESPACE,
      secretName: undefined,
      server: undefined,
      dryRun: false,
      out: collect(bootstrapOutput),
      err: collect(bootstrapOutput),
    });
    for (const line of bootstrapOutput.join('').trimEnd().split('\n')) say(`  ${line}`);
    if (code !== 0) throw new Error('bootstrap failed');

    say("target: the approver's ServiceAccount, its RBAC, and the RBAC the agent's identity gets...");
    const runSeconds = options.durationSeconds ?? MAX_RUN_SECONDS;
    const approverKubeconfig = await prepareTarget(target, scratch, runSeconds + TOKEN_MARGIN_SECONDS);
    const policy = join(scratch, 'policy.yaml');
    writeFileSync(
      policy,
      stringify({
        signerName: 'kubernetes.io/kube-apiserver-client',
        policies: [
          {
            name: `source-${SOURCE}`,
            bootstrap: { groups: [bootstrapGroup(SOURCE)] },
            identity: { commonNames: [IDENTITY.commonName], organizations: IDENTITY.organizations },
            maxExpirationSeconds: 3600,
          },
        ],
      }),
    );
    const approver = new CliProcess(
      [
        'approver',
        '--policy',
        policy,
        '--kubeconfig',
        approverKubeconfig,
        '--lease-namespace',
        NAMESPACE,
        '--listen',
        '127.0.0.1:0',
        '--identity',
        'demo-approver',
      ],
      { logFile: join(scratch, 'approver.log'), label: 'approver' },
    );
    processes.push(approver);
    await approver.port();

    say('source: the bootstrap Secret, mounted for the sidecar as the kubelet would...');
    const bootstrapDir = join(scratch, 'bootstrap');
    const secret = await kubeConfig(source)
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ namespace: NAMESPACE, name: `kubeconfig-rotator-bootstrap-${TARGET}` });
    writeKubeletMount(bootstrapDir, {
      kubeconfig: Buffer.from(secret.data?.[BOOTSTRAP_SECRET_KEY] ?? '', 'base64').toString('utf8'),
    });

    const sidecar = startSidecar(scratch, 'sidecar', TARGET, IDENTITY, source, options.rotateEverySeconds, true);
    const rogue = startSidecar(
      scratch,
      'rogue',
      `${TARGET}-rogue`,
      ROGUE_IDENTITY,
      source,
      options.rotateEverySeconds,
      false,
    );
    processes.push(sidecar, rogue);
    say('waiting for the first certificate...');
    await sidecar.waitForLog((line) => line.msg === 'certificate rotated', 60_000);
    note(`sidecar: first certificate, requested with the bootstrap token`);

    const output = join(scratch, 'out', TARGET);
    agentDone = runAgent(join(output, 'kubeconfig'), join(binDir, 'kubectl'), agent, stopAll);
    const startedAt = Date.now();
    const deadline = startedAt + runSeconds * 1000;
    if (options.durationSeconds === undefined)
      say(
        `running until Ctrl-C, at most ${String(MAX_RUN_SECONDS / 3600)} h (as long as the approver's ServiceAccount token lasts)`,
      );
    const interactive = options.out.isTTY;
    let lastLine = 0;
    let seenRotations = 0;
    while (!stopAll.aborted && Date.now() < deadline) {
      const snapshot = await snapshotOf({
        startedAt,
        endsAt: deadline,
        output,
        sidecar,
        approver,
        rogue,
        agent,
        notes,
      });
      const rotations = snapshot.targets[0]?.rotations ?? 0;
      if (rotations > seenRotations) {
        const renewed = sidecar.lines.filter((line) => line.msg === 'certificate rotated').at(-1);
        if (seenRotations > 0)
          note(
            `sidecar: rotated to serial ${String(renewed?.serial).slice(0, 16)} (${String(renewed?.durationMs)} ms, authenticated with the ${String(renewed?.authenticatedWith)} certificate)`,
          );
        seenRotations = rotations;
      }
      if (interactive) options.out.write(`\x1b[H\x1b[2J${renderView(snapshot)}`);
      else if (Date.now() - lastLine >= 10_000) {
        options.out.write(renderLine(snapshot));
        lastLine = Date.now();
      }
      await sleep(1_000, undefined, { signal: stopAll }).catch(() => undefined);
    }
    loops.abort();
    await agentDone;
    const final = await snapshotOf({ startedAt, endsAt: deadline, output, sidecar, approver, rogue, agent, notes });
    say('');
    say('summary');
    say(
      `  rotations: ${String(final.targets[0]?.rotations ?? 0)} (failed ${String(final.targets[0]?.failedRotations ?? 0)}), current serial ${final.targets[0]?.serial ?? '-'}`,
    );
    say(
      `  agent: ${String(agent.clientNodeCalls)} client-node and ${String(agent.kubectlCalls)} kubectl calls through the published kubeconfig, ` +
        `${String(agent.failures)} failed${agent.lastFailure === undefined ? '' : ` (last: ${agent.lastFailure})`}`,
    );
    say(`  approver: ${String(final.approver.approved)} approved, ${String(final.approver.denied)} denied`);
    say(
      `  rogue sidecar (${formatSubject(ROGUE_IDENTITY)}): ${String(final.rogue.denials)} requests denied${final.rogue.lastReason === undefined ? '' : `: ${final.rogue.lastReason}`}`,
    );
    if (agent.failures > 0) {
      keepLogs = true;
      say(`  logs kept in ${scratch}`);
    }
    return agent.failures === 0 ? 0 : 1;
  } catch (error) {
    // A failed run is when the logs are needed: keep them rather than delete them with the scratch directory.
    keepLogs = true;
    say(`the demo failed; logs kept in ${scratch}`);
    throw error;
  } finally {
    loops.abort();
    await agentDone;
    await Promise.all(processes.map((child) => child.stop()));
    if (!options.keepClusters) for (const name of startedHere) await stopCluster(root, name);
    if (!keepLogs) rmSync(scratch, { recursive: true, force: true });
  }
}

function collect(into: string[]): NodeJS.WritableStream {
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      into.push(chunk.toString());
      done();
    },
  });
}

function kubeConfig(state: ClusterState): KubeConfig {
  const config = new KubeConfig();
  config.loadFromFile(state.kubeconfig);
  return config;
}

/** What the approver chart does in a real target: the approver's account and the issued identity's RBAC. */
async function prepareTarget(target: ClusterState, scratch: string, tokenSeconds: number): Promise<string> {
  const admin = kubeConfig(target);
  const account = await createApproverAccount(admin, target, {
    namespace: NAMESPACE,
    name: 'kubeconfig-rotator-approver',
    signerName: 'kubernetes.io/kube-apiserver-client',
    tokenSeconds,
    kubeconfig: join(scratch, 'approver.kubeconfig'),
  });
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const bind = (name: string, role: string): V1ClusterRoleBinding => ({
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: IDENTITY.commonName }],
  });
  // The agent's identity may read the cluster (what it is for) and renew its own certificate.
  for (const [name, role] of [
    ['demo-agent-west-view', 'view'],
    ['demo-agent-west-renewal', CSR_REQUESTER_ROLE],
  ] as const) {
    await createUnlessExists(`ClusterRoleBinding ${name}`, () =>
      rbac.createClusterRoleBinding({ body: bind(name, role) }),
    );
  }
  return account.kubeconfig;
}

function startSidecar(
  scratch: string,
  label: string,
  target: string,
  identity: typeof IDENTITY,
  source: ClusterState,
  rotateEvery: number,
  secretSink: boolean,
): CliProcess {
  const config = join(scratch, `${label}.yaml`);
  writeFileSync(
    config,
    stringify({
      stateDir: join(scratch, `${label}-state`),
      sourceKubeconfig: source.kubeconfig,
      listen: { host: '127.0.0.1', port: 0 },
      rereadIntervalSeconds: 10,
      targets: [
        {
          name: target,
          bootstrapKubeconfig: join(scratch, 'bootstrap', 'kubeconfig'),
          identity,
          expirationSeconds: 600,
          rotation: { minRemainingSeconds: 60, forceIntervalSeconds: rotateEvery },
          sinks: {
            directory: { path: join(scratch, 'out', target) },
            ...(secretSink ? { secret: { namespace: NAMESPACE, name: `${target}-kubeconfig` } } : {}),
          },
        },
      ],
    }),
  );
  return new CliProcess(['sidecar', '--config', config], { logFile: join(scratch, `${label}.log`), label });
}

/** The stand-in agent: a long-lived client-node client and kubectl, both through the published kubeconfig. */
async function runAgent(kubeconfig: string, kubectl: string, agent: Agent, signal: AbortSignal): Promise<void> {
  const client = new KubeConfig();
  client.loadFromFile(kubeconfig);
  const core = client.makeApiClient(CoreV1Api);
  const stopped = () => signal.aborted;
  const failed = (what: string, error: unknown) => {
    agent.failures++;
    agent.lastFailure = `${what}: ${describeError(error)}`.slice(0, 120);
  };
  const clientNode = (async () => {
    while (!signal.aborted) {
      try {
        await core.listNamespacedConfigMap({ namespace: 'default' });
        agent.clientNodeCalls++;
      } catch (error) {
        failed('client-node', error);
      }
      await sleep(200, undefined, { signal }).catch(() => undefined);
    }
  })();
  const cli = (async () => {
    while (!signal.aborted) {
      try {
        await execute(kubectl, ['--kubeconfig', kubeconfig, 'get', 'configmaps', '-n', 'default', '-o', 'name'], {
          signal,
        });
        agent.kubectlCalls++;
      } catch (error) {
        // A call cut short by the demo stopping is not a failure of the credential.
        if (!stopped()) failed('kubectl', error);
      }
      await sleep(2_000, undefined, { signal }).catch(() => undefined);
    }
  })();
  await Promise.all([clientNode, cli]);
}

async function metricsOf(child: CliProcess) {
  try {
    const response = await fetch(`http://127.0.0.1:${String(await child.port())}/metrics`);
    return parseMetrics(await response.text());
  } catch {
    return [];
  }
}

async function snapshotOf(parts: {
  startedAt: number;
  endsAt: number;
  output: string;
  sidecar: CliProcess;
  approver: CliProcess;
  rogue: CliProcess;
  agent: Agent;
  notes: string[];
}): Promise<DemoSnapshot> {
  const [sidecarMetrics, approverMetrics] = await Promise.all([metricsOf(parts.sidecar), metricsOf(parts.approver)]);
  let certificate: { serial: string; notAfter: number; identity: string } | undefined;
  try {
    const facts = readCertificate(readFileSync(join(parts.output, 'tls.crt'), 'utf8'));
    certificate = { serial: facts.serial, notAfter: facts.notAfter, identity: formatSubject(facts.subject) };
  } catch {
    certificate = undefined;
  }
  const next = total(sidecarMetrics, 'kubeconfig_rotator_next_rotation_timestamp_seconds', { target: TARGET });
  const rogueDenials = parts.rogue.lines.filter(
    (line) => line.msg === 'rotation failed; the current certificate stays' && line.result === 'denied',
  );
  return {
    now: Date.now(),
    startedAt: parts.startedAt,
    endsAt: parts.endsAt,
    targets: [
      {
        name: TARGET,
        identity: certificate?.identity ?? formatSubject(IDENTITY),
        ...(certificate === undefined ? {} : { serial: certificate.serial, notAfter: certificate.notAfter }),
        ...(next > 0 ? { nextRotation: next * 1000 } : {}),
        rotations: total(sidecarMetrics, 'kubeconfig_rotator_rotations_total', { target: TARGET, result: 'success' }),
        failedRotations:
          total(sidecarMetrics, 'kubeconfig_rotator_rotations_total', { target: TARGET }) -
          total(sidecarMetrics, 'kubeconfig_rotator_rotations_total', { target: TARGET, result: 'success' }),
      },
    ],
    agent: { ...parts.agent },
    approver: {
      approved: total(approverMetrics, 'kubeconfig_rotator_approver_decisions_total', { result: 'approved' }),
      denied: total(approverMetrics, 'kubeconfig_rotator_approver_decisions_total', { result: 'denied' }),
      unprocessed: total(approverMetrics, 'kubeconfig_rotator_approver_decisions_total', { result: 'unprocessed' }),
      leader: total(approverMetrics, 'kubeconfig_rotator_approver_leader') === 1,
    },
    rogue: {
      identity: formatSubject(ROGUE_IDENTITY),
      denials: rogueDenials.length,
      ...(rogueDenials.length === 0
        ? {}
        : { lastReason: String(rogueDenials.at(-1)?.error).replace(/^CSR \S+ was denied: /, '') }),
    },
    notes: parts.notes,
  };
}
