// `npm run demo` (scripts/demo/main.ts): the whole product on this machine. Builds or reuses the control
// plane, starts a source and a target cluster, runs `bootstrap`, an approver in the target with only its own
// RBAC, a sidecar in the source with short lifetimes, a stand-in agent calling the target through the
// published kubeconfig, and a rogue sidecar asking for another cluster's identity. With `--credential
// token`: no approver; the sidecar renews ServiceAccount tokens, and the impostor is the agent's own token
// asking for an unbound day-long token, which the guardrail refuses. Works from a checkout (it needs
// scripts/ and Go to build the control plane).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import {
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type RbacV1Subject,
  type V1ClusterRoleBinding,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { runBootstrap } from '../../src/bootstrap/run.ts';
import { BOOTSTRAP_SECRET_KEY, bootstrapGroup, CSR_REQUESTER_ROLE } from '../../src/core/bootstrap/plan.ts';
import { tokenIdentity } from '../../src/core/bootstrap/token-plan.ts';
import { readCredential } from '../../src/core/credential/credential.ts';
import { serviceAccountUser } from '../../src/core/credential/token.ts';
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
  readonly credential: 'certificate' | 'token';
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
const TOKEN_ACCOUNT = tokenIdentity(SOURCE, NAMESPACE);
const TOKEN_USER = serviceAccountUser({ namespace: NAMESPACE, name: TOKEN_ACCOUNT.serviceAccount });
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
  let rogueDone = () => Promise.resolve();
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

    const tokens = options.credential === 'token';
    say(
      `kubeconfig-rotator bootstrap ${tokens ? '--credential token ' : ''}--source-name ${SOURCE} --target-name ${TARGET} --ttl 30m ...`,
    );
    const bootstrapOutput: string[] = [];
    const code = await runBootstrap({
      ...(tokens ? { credential: 'token', targetNamespace: NAMESPACE, maxTokenTtl: '1h' } : {}),
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

    const runSeconds = options.durationSeconds ?? MAX_RUN_SECONDS;
    let approver: CliProcess | undefined;
    if (tokens) {
      say(
        `target: the RBAC the agent's ServiceAccount ${TOKEN_ACCOUNT.namespace}/${TOKEN_ACCOUNT.serviceAccount} gets...`,
      );
      await bindAgent(target, { kind: 'ServiceAccount', name: TOKEN_ACCOUNT.serviceAccount, namespace: NAMESPACE }, []);
    } else {
      say("target: the approver's ServiceAccount, its RBAC, and the RBAC the agent's identity gets...");
      approver = await startApprover(target, scratch, runSeconds + TOKEN_MARGIN_SECONDS);
      processes.push(approver);
    }

    say('source: the bootstrap Secret, mounted for the sidecar as the kubelet would...');
    const bootstrapDir = join(scratch, 'bootstrap');
    const secret = await kubeConfig(source)
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ namespace: NAMESPACE, name: `kubeconfig-rotator-bootstrap-${TARGET}` });
    writeKubeletMount(bootstrapDir, {
      kubeconfig: Buffer.from(secret.data?.[BOOTSTRAP_SECRET_KEY] ?? '', 'base64').toString('utf8'),
    });

    const credentialFields = tokens
      ? { credential: 'token', serviceAccount: { namespace: NAMESPACE, name: TOKEN_ACCOUNT.serviceAccount } }
      : { identity: IDENTITY };
    const sidecar = startSidecar(
      scratch,
      'sidecar',
      TARGET,
      credentialFields,
      source,
      options.rotateEverySeconds,
      true,
    );
    processes.push(sidecar);
    const output = join(scratch, 'out', TARGET);
    // The impostor: another source's identity from the approver, or the agent's token from the guardrail.
    let rogue: Rogue;
    if (tokens) rogue = guardrailRogue(join(output, 'kubeconfig'), stopAll);
    else {
      const process = startSidecar(
        scratch,
        'rogue',
        `${TARGET}-rogue`,
        { identity: ROGUE_IDENTITY },
        source,
        options.rotateEverySeconds,
        false,
      );
      processes.push(process);
      rogue = sidecarRogue(process);
    }
    const rotatedMessage = `${tokens ? 'token' : 'certificate'} rotated`;
    say(`waiting for the first ${tokens ? 'token' : 'certificate'}...`);
    await sidecar.waitForLog((line) => line.msg === rotatedMessage, 60_000);
    note(`sidecar: first ${tokens ? 'token' : 'certificate'}, requested with the bootstrap token`);
    if (tokens) rogue.start();
    rogueDone = () => rogue.done();

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
        const renewed = sidecar.lines.filter((line) => line.msg === rotatedMessage).at(-1);
        if (seenRotations > 0)
          note(
            `sidecar: rotated to ${tokens ? 'token' : 'serial'} ${String(renewed?.serial).slice(0, 16)} (${String(renewed?.durationMs)} ms, authenticated with the ${String(renewed?.authenticatedWith)} ${tokens ? 'token' : 'certificate'})`,
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
    if (final.approver !== undefined)
      say(`  approver: ${String(final.approver.approved)} approved, ${String(final.approver.denied)} denied`);
    say(
      `  rogue: ${final.rogue.attempt}: ${String(final.rogue.denials)} refused${final.rogue.lastReason === undefined ? '' : `: ${final.rogue.lastReason}`}`,
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
    await rogueDone();
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

/** What the approver chart does in a real target: the approver's account, its policy, the identity's RBAC. */
async function startApprover(target: ClusterState, scratch: string, tokenSeconds: number): Promise<CliProcess> {
  const account = await createApproverAccount(kubeConfig(target), target, {
    namespace: NAMESPACE,
    name: 'kubeconfig-rotator-approver',
    signerName: 'kubernetes.io/kube-apiserver-client',
    tokenSeconds,
    kubeconfig: join(scratch, 'approver.kubeconfig'),
  });
  // The agent's identity may read the cluster (what it is for) and renew its own certificate.
  await bindAgent(target, { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: IDENTITY.commonName }, [
    CSR_REQUESTER_ROLE,
  ]);
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
      account.kubeconfig,
      '--lease-namespace',
      NAMESPACE,
      '--listen',
      '127.0.0.1:0',
      '--identity',
      'demo-approver',
    ],
    { logFile: join(scratch, 'approver.log'), label: 'approver' },
  );
  await approver.port();
  return approver;
}

/** The agent's identity in the target may read the cluster (what it is for), plus `roles`. */
async function bindAgent(target: ClusterState, subject: RbacV1Subject, roles: readonly string[]): Promise<void> {
  const rbac = kubeConfig(target).makeApiClient(RbacAuthorizationV1Api);
  for (const role of ['view', ...roles]) {
    const name = `demo-agent-${SOURCE}-${role.replaceAll(':', '-')}`;
    const body: V1ClusterRoleBinding = {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [subject],
    };
    await createUnlessExists(`ClusterRoleBinding ${name}`, () => rbac.createClusterRoleBinding({ body }));
  }
}

function startSidecar(
  scratch: string,
  label: string,
  target: string,
  credentialFields: Record<string, unknown>,
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
          ...credentialFields,
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

/**
 * The published kubeconfig as a client-node client. client-node does not read `tokenFile` (token targets'
 * directory kubeconfig), so the token is read from the file beside it, and the client is made again when it
 * changes: what a JavaScript agent does (docs/tokens.md).
 */
function agentClient(kubeconfig: string): () => CoreV1Api {
  let token: string | undefined;
  let api: CoreV1Api | undefined;
  return () => {
    const text = readFileSync(kubeconfig, 'utf8');
    const tokenFile = /tokenFile: (\S+)/.exec(text)?.[1];
    const current = tokenFile === undefined ? undefined : readFileSync(join(dirname(kubeconfig), tokenFile), 'utf8');
    if (api === undefined || current !== token) {
      const config = new KubeConfig();
      // From the file: client-node resolves the CA's relative path only then.
      config.loadFromFile(kubeconfig);
      if (current !== undefined) config.users = config.users.map((user) => ({ ...user, token: current }));
      api = config.makeApiClient(CoreV1Api);
      token = current;
    }
    return api;
  };
}

/** The stand-in agent: a long-lived client-node client and kubectl, both through the published kubeconfig. */
async function runAgent(kubeconfig: string, kubectl: string, agent: Agent, signal: AbortSignal): Promise<void> {
  const core = agentClient(kubeconfig);
  const stopped = () => signal.aborted;
  const failed = (what: string, error: unknown) => {
    agent.failures++;
    agent.lastFailure = `${what}: ${describeError(error)}`.slice(0, 120);
  };
  const clientNode = (async () => {
    while (!signal.aborted) {
      try {
        await core().listNamespacedConfigMap({ namespace: 'default' });
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

/** The impostor of each mode: what it attempts, and its refusals so far. */
interface Rogue {
  /** Begins the attempts (token mode: once there is a token to attempt with). */
  start(): void;
  /** Resolves once the attempts have stopped. */
  done(): Promise<void>;
  view(): DemoSnapshot['rogue'];
}

/** Certificate mode: a sidecar asking the approver for another source's identity. */
function sidecarRogue(process: CliProcess): Rogue {
  return {
    start: () => undefined,
    done: () => Promise.resolve(),
    view: () => {
      const denials = process.lines.filter(
        (line) => line.msg === 'rotation failed; the current certificate stays' && line.result === 'denied',
      );
      return {
        attempt: `a sidecar asking for ${formatSubject(ROGUE_IDENTITY)}`,
        denials: denials.length,
        ...(denials.length === 0
          ? {}
          : { lastReason: String(denials.at(-1)?.error).replace(/^CSR \S+ was denied: /, '') }),
      };
    },
  };
}

/** Token mode: the agent's own token asking for an unbound day-long successor, which the guardrail refuses. */
function guardrailRogue(kubeconfig: string, signal: AbortSignal): Rogue {
  const state: { denials: number; lastReason?: string } = { denials: 0 };
  let loop: Promise<void> = Promise.resolve();
  const core = agentClient(kubeconfig);
  return {
    start: () => {
      loop = (async () => {
        while (!signal.aborted) {
          try {
            await core().createNamespacedServiceAccountToken({
              namespace: NAMESPACE,
              name: TOKEN_ACCOUNT.serviceAccount,
              body: { spec: { expirationSeconds: 86_400 } },
            });
            state.lastReason = 'ISSUED: the guardrail let an unbound day-long token through';
          } catch (error) {
            state.denials++;
            state.lastReason = describeError(error).replace(/^.*denied request: /, '');
          }
          await sleep(5_000, undefined, { signal }).catch(() => undefined);
        }
      })();
    },
    done: () => loop,
    view: () => ({ attempt: 'the agent token asking for an unbound 24 h token', ...state }),
  };
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
  approver: CliProcess | undefined;
  rogue: Rogue;
  agent: Agent;
  notes: string[];
}): Promise<DemoSnapshot> {
  const [sidecarMetrics, approverMetrics] = await Promise.all([
    metricsOf(parts.sidecar),
    parts.approver === undefined ? [] : metricsOf(parts.approver),
  ]);
  const next = total(sidecarMetrics, 'kubeconfig_rotator_next_rotation_timestamp_seconds', { target: TARGET });
  const published = publishedFacts(parts.output);
  const rotationsOf = (labels: Record<string, string>) =>
    total(sidecarMetrics, 'kubeconfig_rotator_rotations_total', { target: TARGET, ...labels });
  const decisions = (result: string) =>
    total(approverMetrics, 'kubeconfig_rotator_approver_decisions_total', { result });
  return {
    now: Date.now(),
    startedAt: parts.startedAt,
    endsAt: parts.endsAt,
    targets: [
      {
        name: TARGET,
        identity: published?.identity ?? (parts.approver === undefined ? TOKEN_USER : formatSubject(IDENTITY)),
        ...(published === undefined ? {} : { serial: published.serial, notAfter: published.notAfter }),
        ...(next > 0 ? { nextRotation: next * 1000 } : {}),
        rotations: rotationsOf({ result: 'success' }),
        failedRotations: rotationsOf({}) - rotationsOf({ result: 'success' }),
      },
    ],
    agent: { ...parts.agent },
    ...(parts.approver === undefined
      ? {}
      : {
          approver: {
            approved: decisions('approved'),
            denied: decisions('denied'),
            unprocessed: decisions('unprocessed'),
            leader: total(approverMetrics, 'kubeconfig_rotator_approver_leader') === 1,
          },
        }),
    rogue: parts.rogue.view(),
    notes: parts.notes,
  };
}

/** What the directory holds now: the certificate or the token, read as the sidecar reads it. */
function publishedFacts(output: string): { serial: string; notAfter: number; identity: string } | undefined {
  const read = (file: string) => readFileSync(join(output, file), 'utf8');
  try {
    const facts = readCredential(
      existsSync(join(output, 'token')) ? { token: read('token') } : { certPem: read('tls.crt'), keyPem: '' },
    );
    return { serial: facts.serial, notAfter: facts.notAfter, identity: facts.identity };
  } catch {
    return undefined;
  }
}
