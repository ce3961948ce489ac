// The test node itself: it is Ready, runs the project's image (imported under the charts' default
// reference) as a pod that reaches the apiserver by the `kubernetes` Service with its own ServiceAccount
// token; and a second node cluster, started and stopped here, leaves no process, namespace, mount or cgroup
// directory behind.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { chartImageReference } from '../../scripts/image/build.ts';
import { clustersRoot, REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { clusterDir } from '../../scripts/testbed/cluster.ts';
import { alive, namespaceOf, processesInCgroups } from '../../scripts/testbed/node-namespace.ts';
import { runInNamespace, startNodeCluster, stopNodeCluster, type NodeRecord } from '../../scripts/testbed/node.ts';
import { eventually, uniqueName } from '../support/kube.ts';
import { nodeCluster, waitForPod } from '../support/node-cluster.ts';

const cluster = nodeCluster();
const core = cluster.admin().makeApiClient(CoreV1Api);
const namespace = uniqueName('kcr-node');

after(async () => {
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
});

/** In-cluster config as client-go reads it, by hand: the Service's address, the CA and the token. */
const CALL_THE_API = `
const https = require('node:https');
const fs = require('node:fs');
const dir = '/var/run/secrets/kubernetes.io/serviceaccount';
const request = https.get({
  host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT,
  path: '/api/v1/namespaces/' + fs.readFileSync(dir + '/namespace', 'utf8') + '/serviceaccounts/default',
  ca: fs.readFileSync(dir + '/ca.crt'), headers: { authorization: 'Bearer ' + fs.readFileSync(dir + '/token', 'utf8') },
  timeout: 10000,
}, (response) => { console.log('status', response.statusCode, 'uid', process.getuid()); process.exit(response.statusCode === 200 ? 0 : 1); });
request.on('error', (error) => { console.log('error', error.message); process.exit(1); });
`;

describe('the test node', () => {
  it('is Ready on the pinned release, and runs the project image as a pod that calls the apiserver by its Service', async () => {
    const node = await core.readNode({ name: cluster.node.nodeName });
    assert.equal(node.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
    const pinned = /\tk8s\.io\/kubernetes (v\S+)/.exec(
      readFileSync(join(REPO_ROOT, 'scripts', 'controlplane', 'go.mod'), 'utf8'),
    )?.[1];
    assert.equal(node.status.nodeInfo?.kubeletVersion, pinned);
    assert.equal(node.status.addresses?.find((a) => a.type === 'InternalIP')?.address, cluster.node.address);

    await core.createNamespace({ body: { metadata: { name: namespace } } });
    // Pods wait for the namespace's default ServiceAccount (the serviceaccount controller makes it).
    await eventually(() => core.readNamespacedServiceAccount({ namespace, name: 'default' }), { timeoutMs: 30_000 });
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'call-the-api' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'node',
              image: chartImageReference(),
              imagePullPolicy: 'Never',
              command: ['node', '-e', CALL_THE_API],
            },
          ],
        },
      },
    });
    // RBAC: a ServiceAccount may not read itself by default; grant it for this check.
    await cluster.kubectl(
      ...['create', 'rolebinding', 'read-sa', '--namespace', namespace, '--clusterrole=view'],
      `--serviceaccount=${namespace}:default`,
    );
    const pod = await waitForPod(cluster, namespace, 'call-the-api', (p) =>
      ['Succeeded', 'Failed'].includes(p.status?.phase ?? ''),
    );
    const log = await core.readNamespacedPodLog({ namespace, name: 'call-the-api' });
    assert.equal(pod.status?.phase, 'Succeeded', log);
    // The image's own user, not root.
    assert.match(log, /status 200 uid 1000/);
  });

  it('is stopped with nothing left: no process, network or mount namespace, mount or cgroup directory', async () => {
    const root = clustersRoot();
    const name = uniqueName('life');
    const dir = clusterDir(root, name);
    const images = cluster.node.images;
    const pauseImage = images.find((image) => image.reference === cluster.node.pauseImage);
    assert.ok(pauseImage, 'the pods cluster records its pause image');
    const state = await startNodeCluster(name, {
      binDir: cluster.node.binDir,
      root,
      pauseImage,
      images: images.filter((image) => image !== pauseImage),
      onProgress: (line) => process.stderr.write(`${line}\n`),
    });
    const node = state.node;
    assert.ok(node);
    let during: { processes: number[]; cgroups: string[] };
    try {
      // A running container, so that there are shims, a pod sandbox, a pod network namespace and cgroups.
      const kubectl = [join(node.binDir, 'kubectl'), '--kubeconfig', state.kubeconfig];
      const image = `--image=${chartImageReference()}`;
      const sleeper = ['run', 'sleeper', image, '--image-pull-policy=Never', '--restart=Never', '--command', '--'];
      const quiet = () => undefined;
      await runInNamespace(node.holder, [...kubectl, ...sleeper, 'node', '-e', 'setInterval(() => {}, 1000)'], quiet);
      await runInNamespace(node.holder, [...kubectl, 'wait', '--for=condition=Ready', 'pod/sleeper'], quiet);
      during = { processes: processesOf(node, dir), cgroups: cgroupDirsBelow(node.cgroupRoot) };
      // The holder, 6 daemons, a shim, the pause and the sleeper container at least.
      assert.ok(during.processes.length >= 10, `processes of the cluster: ${during.processes.join(' ')}`);
      assert.ok(
        during.cgroups.some((d) => d.includes('kubepods')),
        `cgroups: ${during.cgroups.join(' ')}`,
      );
    } catch (error) {
      await stopNodeCluster(root, name);
      throw error;
    }

    assert.equal(await stopNodeCluster(root, name), true);

    assert.deepEqual(
      during.processes.filter((pid) => alive(pid)).map(describeProcess),
      [],
      'every process of the cluster is gone',
    );
    assert.deepEqual(processesOf(node, dir), [], 'no process in its namespaces or naming its directory');
    assert.deepEqual(cgroupDirsBelow(node.cgroupRoot), [], 'no cgroup directory at or below its root');
    const podsClusterCgroups = cgroupDirsBelow(cluster.node.cgroupRoot);
    assert.deepEqual(
      node.cgroups.filter((d) => existsSync(d) && !podsClusterCgroups.some((used) => used.startsWith(`${d}/`))),
      [],
      'no parent it made, unless the pods cluster, still running, uses it',
    );
    assert.deepEqual(mountsMentioning(dir), [], 'no mount of it in any namespace');
    assert.equal(existsSync(dir), false, 'its state directory is removed');
  });
});

/**
 * Live processes in the holder's network or mount namespace, in the cluster's cgroups (containers), or whose
 * command line names the cluster's directory.
 */
function processesOf(node: NodeRecord, dir: string): number[] {
  const inCgroups = new Set(processesInCgroups(node.cgroupRoot));
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      const ns = namespaceOf(pid);
      let cmdline: string;
      try {
        cmdline = readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8');
      } catch {
        return false;
      }
      const inNamespace = ns?.netns === node.holder.netns || ns?.mntns === node.holder.mntns;
      return alive(pid) && (inNamespace || inCgroups.has(pid) || cmdline.includes(dir));
    });
}

function describeProcess(pid: number): string {
  try {
    return `${String(pid)}: ${readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8').replaceAll('\0', ' ')}`;
  } catch {
    return `${String(pid)}: exited`;
  }
}

function cgroupDirsBelow(cgroupRoot: string): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    if (!existsSync(path)) return;
    found.push(path);
    for (const entry of readdirSync(path, { withFileTypes: true }))
      if (entry.isDirectory()) walk(join(path, entry.name));
  };
  for (const hierarchy of readdirSync('/sys/fs/cgroup')) walk(join('/sys/fs/cgroup', hierarchy, cgroupRoot));
  return found;
}

/** Mount table lines naming the directory, in every mount namespace a live process is in. */
function mountsMentioning(dir: string): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const ns = namespaceOf(Number(entry))?.mntns;
    if (ns === undefined || seen.has(ns)) continue;
    seen.add(ns);
    try {
      for (const line of readFileSync(`/proc/${entry}/mountinfo`, 'utf8').split('\n'))
        if (line.includes(dir)) lines.push(`${ns} ${line}`);
    } catch {
      // exited meanwhile
    }
  }
  return lines.sort();
}
