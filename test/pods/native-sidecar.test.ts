// An agent's chart (test/pods/fixtures/agent) that runs kubeconfig-rotator as a native sidecar through the
// sidecar chart's named templates, with the directory sink, on real pods: the agent, a Node program in the
// project's image, calls the target every 300 ms with the credential files as they are at each call.
// The pod is installed before `bootstrap` has run (the bootstrap Secret volume is optional): the kubelet
// delivers the Secret to the running sidecar, which then publishes; only then may the agent start.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type V1ContainerStatus, type V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { chartImageReference } from '../../scripts/image/build.ts';
import { REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { run } from '../../scripts/testbed/node-namespace.ts';
import { eventually } from '../support/eventually.ts';
import { uniqueName } from '../support/kube.ts';
import { nodeCluster } from '../support/node-cluster.ts';
import { bootstrapEast, eastTarget, installApprover } from '../support/pods-charts.ts';
import { scratchDir } from '../support/sidecar.ts';

const cluster = nodeCluster();
const core = cluster.admin().makeApiClient(CoreV1Api);
const scratch = scratchDir('pods-native-sidecar');
const sourceName = uniqueName('src');
const source = { name: sourceName, identity: `kcr-agent-${sourceName}`, organization: 'kcr-agents' };
const namespaces = { target: uniqueName('kcr-target'), source: uniqueName('kcr-agent') };
const SIDECAR = 'kubeconfig-rotator';

interface AgentLine {
  readonly ok: boolean;
  readonly status?: number;
  readonly serial?: string;
  readonly error?: string;
}

let podName = '';

before(async () => {
  await installApprover(cluster, scratch.path, 'approver', namespaces.target, source);
  const chart = join(scratch.path, 'agent');
  cpSync(join(REPO_ROOT, 'test', 'pods', 'fixtures', 'agent'), chart, { recursive: true });
  const chartFile = join(chart, 'Chart.yaml');
  const dependency = `file://${join(REPO_ROOT, 'charts', 'kubeconfig-rotator-sidecar')}`;
  writeFileSync(chartFile, readFileSync(chartFile, 'utf8').replace('file://REPLACED_BY_THE_TEST', dependency));
  await cluster.helm('dependency', 'build', chart);
  const values = join(scratch.path, 'agent-values.yaml');
  writeFileSync(
    values,
    stringify({
      targetNamespace: namespaces.target,
      image: chartImageReference(),
      'kubeconfig-rotator-sidecar': { targets: [eastTarget(source, { directory: {} })] },
    }),
  );
  await cluster.helm(
    ...['install', 'agent', chart, '--namespace', namespaces.source, '--create-namespace', '-f', values],
  );
  await bootstrapEast(cluster, source.name, namespaces.source);
  await cluster.kubectl('rollout', 'status', 'deployment/pods-agent', '-n', namespaces.source, '--timeout=240s');
  const pods = await core.listNamespacedPod({ namespace: namespaces.source, labelSelector: 'app=pods-agent' });
  podName = pods.items[0]?.metadata?.name ?? assert.fail('no agent pod');
});

after(async () => {
  await cluster.helm('uninstall', 'agent', '--namespace', namespaces.source).catch(() => undefined);
  await cluster.helm('uninstall', 'approver', '--namespace', namespaces.target).catch(() => undefined);
  for (const name of Object.values(namespaces)) await core.deleteNamespace({ name }).catch(() => undefined);
  scratch.dispose();
});

async function agentLines(): Promise<AgentLine[]> {
  const log = await core.readNamespacedPodLog({ namespace: namespaces.source, name: podName, container: 'agent' });
  return log
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as AgentLine);
}

function status(pod: V1Pod, name: string): V1ContainerStatus {
  return (
    [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].find(
      (container) => container.name === name,
    ) ?? assert.fail(`pod ${String(pod.metadata?.name)} has no container ${name}`)
  );
}

describe('an agent with the native sidecar (named templates, directory sink) on real pods', () => {
  it('the agent starts only once the sidecar has published, and calls the target with no failure across 3 rotations', async () => {
    const pod = await core.readNamespacedPod({ namespace: namespaces.source, name: podName });
    const sidecar = status(pod, SIDECAR);
    const agent = status(pod, 'agent');
    // The kubelet's own record: the sidecar started first, and neither container ever restarted (an agent
    // started before the credential existed exits 3 on its first call).
    const sidecarStarted = sidecar.state?.running?.startedAt ?? assert.fail('sidecar not running');
    const agentStarted = agent.state?.running?.startedAt ?? assert.fail('agent not running');
    assert.ok(
      sidecarStarted <= agentStarted,
      `sidecar ${sidecarStarted.toISOString()}, agent ${agentStarted.toISOString()}`,
    );
    assert.equal(sidecar.restartCount, 0);
    assert.equal(agent.restartCount, 0);

    let lines = await agentLines();
    await eventually(
      async () => {
        lines = await agentLines();
        return new Set(lines.map((line) => line.serial)).size >= 4;
      },
      { timeoutMs: 120_000, intervalMs: 2_000, description: "the agent's calls with 4 certificates" },
    );
    const serials = new Set(lines.map((line) => line.serial));
    assert.ok(serials.size >= 4, `certificates used: ${String(serials.size)}`);
    assert.equal(lines[0]?.ok, true, 'the first call already had a credential');
    assert.deepEqual(
      lines.filter((line) => !line.ok),
      [],
      `${String(lines.length)} calls`,
    );
    // The sidecar reports on its own pod (the chart grants the agent's ServiceAccount Events there).
    const events = await core.listNamespacedEvent({
      namespace: namespaces.source,
      fieldSelector: `involvedObject.name=${podName}`,
    });
    assert.ok(
      events.items.some((event) => event.reason === 'CertificateRotated' && event.type === 'Normal'),
      `events on the pod: ${events.items.map((event) => event.reason).join(' ')}`,
    );
  });

  it('both containers run as the runtime shows: non-root, no capabilities, seccomp, read-only root, no new privileges', async () => {
    const pod = await core.readNamespacedPod({ namespace: namespaces.source, name: podName });
    const tasks = run('ctr', ['--address', cluster.node.containerdSocket, '-n', 'k8s.io', 'tasks', 'ls']);
    for (const name of [SIDECAR, 'agent']) {
      const id = (status(pod, name).containerID ?? '').replace(/^containerd:\/\//, '');
      const pid = new RegExp(`^${id}\\s+(\\d+)\\s+RUNNING`, 'm').exec(tasks)?.[1] ?? assert.fail(`no task ${id}`);
      const proc = readFileSync(`/proc/${pid}/status`, 'utf8');
      const field = (key: string) => new RegExp(`^${key}:\\s+(.*)$`, 'm').exec(proc)?.[1]?.trim();
      assert.doesNotMatch(field('Uid') ?? '', /(^|\s)0(\s|$)/, `${name}: Uid ${String(field('Uid'))}`);
      assert.equal(field('CapEff'), '0000000000000000', `${name}: effective capabilities`);
      assert.equal(field('CapPrm'), '0000000000000000', `${name}: permitted capabilities`);
      assert.equal(field('Seccomp'), '2', `${name}: seccomp filter mode`);
      assert.equal(field('NoNewPrivs'), '1', `${name}: no_new_privs`);
      const root = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
        .split('\n')
        .find((line) => line.split(' ')[4] === '/');
      assert.match(root?.split(' ')[5] ?? '', /^ro(,|$)/, `${name}: root mount ${String(root)}`);
    }
  });

  it("a bootstrap Secret replaced while the pod runs reaches the sidecar through the kubelet's volume update, with no restart", async () => {
    const changes = async () =>
      (await core.readNamespacedPodLog({ namespace: namespaces.source, name: podName, container: SIDECAR }))
        .split('\n')
        .filter((line) => line.includes('"bootstrap kubeconfig changed"')).length;
    const before = await changes();
    // A new token for the same source: bootstrap replaces the Secret (and revokes the earlier token).
    await bootstrapEast(cluster, source.name, namespaces.source);
    // The kubelet refreshes Secret volumes on its pod sync (syncFrequency 10 s here, plus jitter).
    await eventually(async () => (await changes()) !== before, {
      timeoutMs: 90_000,
      intervalMs: 1_000,
      description: 'the sidecar seeing the new bootstrap kubeconfig',
    });
    const pod = await core.readNamespacedPod({ namespace: namespaces.source, name: podName });
    assert.equal(status(pod, SIDECAR).restartCount, 0);
  });

  it('at pod deletion the sidecar gets SIGTERM from the kubelet and stops within the grace period', async () => {
    const follow = spawn(
      join(cluster.node.binDir, 'kubectl'),
      [
        '--kubeconfig',
        cluster.state.kubeconfig,
        'logs',
        '-f',
        podName,
        '-c',
        SIDECAR,
        '-n',
        namespaces.source,
        '--tail=0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    follow.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const ended = new Promise((resolve) => follow.once('close', resolve));
    await sleep(1000);
    const started = Date.now();
    await core.deleteNamespacedPod({ namespace: namespaces.source, name: podName });
    await ended;
    const seconds = (Date.now() - started) / 1000;
    const messages = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => (JSON.parse(line) as { msg?: string }).msg);
    assert.ok(messages.includes('shutting down'), `sidecar's last lines: ${output}`);
    assert.ok(messages.includes('stopped'), `sidecar's last lines: ${output}`);
    assert.ok(seconds < 30, `the log stream ended ${seconds.toFixed(1)} s after the deletion (grace period 30 s)`);
  });
});
