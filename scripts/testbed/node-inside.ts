// The half of `up --node` that runs inside the cluster's namespace (node.ts enters it with nsenter):
// prepares the namespace, starts the control plane on the node's address, kube-scheduler, containerd (images
// imported), the kubelet, the rule that sends the `kubernetes` Service to the apiserver, and waits for the
// Node to be Ready. Every process started here stays in the namespace after this one exits.
// Usage: node-inside.ts ROOT NAME (node.ts has written ROOT/NAME/node.json and node-start.json).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { renderKubeconfig } from '../../src/core/kubeconfig/render.ts';
import {
  clusterDir,
  get,
  insecureHealthz,
  startControlPlane,
  writeClusterState,
  type ClusterState,
  type ProcessRecord,
} from './cluster.ts';
import { runMain } from './main.ts';
import { prepareNamespace, run } from './node-namespace.ts';
import {
  KUBERNETES_SERVICE_IP,
  POD_SUBNET,
  readNodeNamespace,
  readStartOptions,
  type NodeComponent,
  type NodeRecord,
} from './node.ts';
import { issueCertificate, type PemPair } from './pki.ts';
import { freePorts, spawnDetached, tailOfFile } from './processes.ts';

const progress = (line: string) => process.stderr.write(`${line}\n`);

/** Controllers for workloads (deployment, replicaset, endpoints, garbage collector...) plus the testbed's. */
const NODE_CONTROLLERS = ['*', 'tokencleaner'];

async function main(argv: string[]): Promise<number> {
  const [root, name] = argv;
  if (root === undefined || name === undefined) throw new Error('usage: node-inside.ts ROOT NAME');
  const dir = clusterDir(root, name);
  const namespace = readNodeNamespace(dir);
  if (namespace === undefined) throw new Error(`no ${join(dir, 'node.json')}: start with node.ts`);
  const start = readStartOptions(dir);
  prepareNamespace(namespace.holder, namespace.address, join(dir, 'ns'), join(dir, 'containerd'));
  progress('namespace prepared');
  for (const sub of ['etc/cni', 'cni/ipam', 'kubelet', 'logs'])
    mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
  const socket = '/run/containerd/containerd.sock';
  let record: NodeRecord = {
    ...namespace,
    binDir: start.binDir,
    pauseImage: start.pauseImage.reference,
    images: [start.pauseImage, ...start.images],
    containerdSocket: socket,
    processes: {},
  };
  let certs: NodeCertificates | undefined;
  let state = await startControlPlane(name, {
    binDir: start.binDir,
    root,
    address: namespace.address,
    controllers: NODE_CONTROLLERS,
    node: record,
    onProgress: progress,
    apiserverFlags: (initial) => {
      certs = issueNodeCertificates(initial, namespace.nodeName, namespace.address);
      return [
        // logs, exec and port-forward: the apiserver calls the kubelet as system:masters.
        `--kubelet-client-certificate=${certs.apiserverKubeletClient.cert}`,
        `--kubelet-client-key=${certs.apiserverKubeletClient.key}`,
        '--kubelet-preferred-address-types=InternalIP',
        // No kube-proxy: the apiserver calls webhook and aggregated API Services at their pods' addresses.
        '--enable-aggregator-routing=true',
      ];
    },
  });
  if (certs === undefined) throw new Error('node certificates were not issued');
  const launch = async (component: NodeComponent, bin: string, args: string[], ready: () => Promise<boolean>) => {
    const begun = Date.now();
    const processRecord = await launchNodeProcess(state, component, bin, args, ready);
    record = { ...record, processes: { ...record.processes, [component]: processRecord } };
    state = { ...state, node: record };
    writeClusterState(state);
    progress(`${component} ready in ${((Date.now() - begun) / 1000).toFixed(1)} s`);
  };

  const [schedulerPort] = await freePorts(1);
  const schedulerKubeconfig = writeKubeconfig(state, 'kube-scheduler', certs.scheduler);
  await launch(
    'kube-scheduler',
    join(start.binDir, 'kube-scheduler'),
    [
      `--kubeconfig=${schedulerKubeconfig}`,
      `--authentication-kubeconfig=${schedulerKubeconfig}`,
      `--authorization-kubeconfig=${schedulerKubeconfig}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${String(schedulerPort)}`,
      '--profiling=false',
    ],
    () => insecureHealthz(`https://127.0.0.1:${String(schedulerPort)}/healthz`),
  );

  const containerdConfig = join(dir, 'etc', 'containerd.toml');
  writeFileSync(containerdConfig, containerdToml(dir, socket, record.pauseImage));
  writeFileSync(join(dir, 'etc', 'cni', '10-pods.conflist'), cniConfig(dir));
  await launch('containerd', '/usr/bin/containerd', [`--config=${containerdConfig}`], () => {
    try {
      run('ctr', ['--address', socket, 'version']);
      return Promise.resolve(true);
    } catch {
      return Promise.resolve(false);
    }
  });
  const importing = Date.now();
  for (const image of record.images) {
    run('ctr', ['--address', socket, '-n', 'k8s.io', 'images', 'import', image.path]);
    const names = run('ctr', ['--address', socket, '-n', 'k8s.io', 'images', 'ls', '-q']).split('\n');
    if (!names.includes(image.reference))
      throw new Error(`${image.path} was imported, but not as ${image.reference} (containerd has: ${names.join(' ')})`);
  }
  progress(
    `images imported in ${((Date.now() - importing) / 1000).toFixed(1)} s: ` +
      record.images.map((image) => image.reference).join(' '),
  );

  const kubeletConfig = join(dir, 'etc', 'kubelet.yaml');
  writeFileSync(join(dir, 'etc', 'resolv.conf'), 'nameserver 127.0.0.1\noptions ndots:1\n');
  writeFileSync(kubeletConfig, kubeletYaml(dir, namespace.cgroupRoot, socket, namespace.address, certs));
  await launch(
    'kubelet',
    join(start.binDir, 'kubelet'),
    [
      `--config=${kubeletConfig}`,
      `--kubeconfig=${writeKubeconfig(state, 'kubelet', certs.kubeletClient)}`,
      `--root-dir=${join(dir, 'kubelet')}`,
      `--cert-dir=${join(dir, 'kubelet', 'pki')}`,
      `--hostname-override=${namespace.nodeName}`,
      `--node-ip=${namespace.address}`,
    ],
    () => nodeReady(state, namespace.nodeName),
  );

  // No kube-proxy: pods reach the apiserver by what KUBERNETES_SERVICE_HOST/PORT say through one DNAT rule
  // in the namespace's own nat table (PREROUTING: from pods; OUTPUT: from the node's own processes).
  const apiserver = `${namespace.address}:${String(state.ports.apiserver)}`;
  for (const chain of ['PREROUTING', 'OUTPUT'])
    run('iptables', [
      ...['-t', 'nat', '-A', chain, '-d', `${KUBERNETES_SERVICE_IP}/32`, '-p', 'tcp', '--dport', '443'],
      ...['-m', 'comment', '--comment', 'kcr: the kubernetes Service', '-j', 'DNAT', '--to-destination', apiserver],
    ]);
  // The node's own processes have no route to the Service range otherwise (the namespace has no default route).
  run('ip', ['route', 'add', '10.0.0.0/24', 'dev', 'kcr0']);
  return 0;
}

interface NodeCertificates {
  readonly apiserverKubeletClient: { cert: string; key: string };
  readonly kubeletClient: { cert: string; key: string };
  readonly kubeletServing: { cert: string; key: string };
  readonly scheduler: { cert: string; key: string };
}

function issueNodeCertificates(state: ClusterState, nodeName: string, address: string): NodeCertificates {
  const ca: PemPair = { cert: readFileSync(state.caCertFile, 'utf8'), key: readFileSync(state.caKeyFile, 'utf8') };
  const pki = join(state.dir, 'pki');
  const write = (base: string, spec: Parameters<typeof issueCertificate>[1]) => {
    const pair = issueCertificate(ca, spec);
    writeFileSync(join(pki, `${base}.crt`), pair.cert, { mode: 0o600 });
    writeFileSync(join(pki, `${base}.key`), pair.key, { mode: 0o600 });
    return { cert: join(pki, `${base}.crt`), key: join(pki, `${base}.key`) };
  };
  return {
    apiserverKubeletClient: write('apiserver-kubelet-client', {
      commonName: 'kube-apiserver-kubelet-client',
      organizations: ['system:masters'],
      usage: 'client',
    }),
    // The Node authorizer and NodeRestriction know a kubelet by exactly this subject.
    kubeletClient: write('kubelet-client', {
      commonName: `system:node:${nodeName}`,
      organizations: ['system:nodes'],
      usage: 'client',
    }),
    kubeletServing: write('kubelet-serving', {
      commonName: nodeName,
      usage: 'server',
      dnsNames: [nodeName],
      ipAddresses: [address],
    }),
    // Bound to its permissions by the default RBAC roles.
    scheduler: write('kube-scheduler', { commonName: 'system:kube-scheduler', usage: 'client' }),
  };
}

function writeKubeconfig(state: ClusterState, who: string, pair: { cert: string; key: string }): string {
  const path = join(state.dir, `${who}.kubeconfig`);
  const content = renderKubeconfig({
    name: state.name,
    server: state.server,
    certificateAuthority: { file: state.caCertFile },
    credential: { clientCertificate: { file: pair.cert }, clientKey: { file: pair.key } },
  });
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

async function launchNodeProcess(
  state: ClusterState,
  component: NodeComponent,
  bin: string,
  args: string[],
  ready: () => Promise<boolean>,
): Promise<ProcessRecord> {
  const log = join(state.dir, 'logs', `${component}.log`);
  const spawned = spawnDetached(bin, args, log);
  const record: ProcessRecord = { pid: spawned.pid, bin, args, log };
  // Recorded before it is ready, so that a failed start still stops it.
  writeClusterState({
    ...state,
    node: { ...(state.node as NodeRecord), processes: { ...state.node?.processes, [component]: record } },
  });
  const timeoutMs = 180_000;
  let exited: string | undefined;
  void spawned.exited.then((how) => (exited = how));
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (exited !== undefined) throw new Error(`${component} ${exited}; last lines of ${log}:\n${tailOfFile(log)}`);
    if (Date.now() > deadline)
      throw new Error(
        `${component} not ready within ${String(timeoutMs / 1000)} s; last lines of ${log}:\n${tailOfFile(log)}`,
      );
    await sleep(200);
  }
  return record;
}

async function nodeReady(state: ClusterState, nodeName: string): Promise<boolean> {
  const answer = await get(state, `/api/v1/nodes/${nodeName}`);
  if (answer.status !== 200) return false;
  const node = JSON.parse(answer.body) as { status?: { conditions?: { type: string; status: string }[] } };
  return (
    node.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') ?? false
  );
}

function containerdToml(dir: string, socket: string, pauseImage: string): string {
  return `# containerd for the test node (scripts/testbed/node-inside.ts). It runs in the node's mount namespace,
# where /run is a private tmpfs: state and socket there (containerd 1.6 also puts its shim sockets in
# /run/containerd/s, a path it hard-codes); images and snapshots on a tmpfs of the namespace
# over the cluster's containerd directory (overlayfs works on tmpfs).
version = 2
root = "${join(dir, 'containerd')}"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "${socket}"

[plugins."io.containerd.grpc.v1.cri"]
  # Imported from an archive (no registry is reachable); the kubelet names no pause image since 1.35.
  sandbox_image = "${pauseImage}"
  # Root here lacks CAP_SYS_RESOURCE: a sandbox's oom_score_adj of -998 fails in runc ("Permission denied");
  # this clamps requested scores to containerd's own.
  restrict_oom_score_adj = true
  # Pod network namespaces are bind-mounted under the state directory (our tmpfs), not /var/run/netns.
  netns_mounts_under_state_dir = true
  # exec, attach, port-forward on the namespace's own loopback; the kubelet proxies to it.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # crun refuses hybrid cgroups ("cgroups in hybrid mode not supported"); no systemd here.
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${join(dir, 'etc', 'cni')}"
    max_conf_num = 1
`;
}

function cniConfig(dir: string): string {
  const gateway = POD_SUBNET.replace(/\.0\/24$/, '.1');
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'kcr-pods',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          // Nothing is routed out of the namespace, so there is nothing to masquerade for.
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: join(dir, 'cni', 'ipam'),
            ranges: [[{ subnet: POD_SUBNET, gateway }]],
            routes: [{ dst: '0.0.0.0/0' }],
          },
        },
      ],
    },
    null,
    2,
  );
}

function kubeletYaml(
  dir: string,
  cgroupRoot: string,
  socket: string,
  address: string,
  certs: NodeCertificates,
): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // Since 1.35 the kubelet refuses cgroup v1 unless told otherwise; this machine kind is hybrid v1.
    failCgroupV1: false,
    // containerd 1.6 has no CRI RuntimeConfig, so the kubelet uses this (and logs a deprecation).
    cgroupDriver: 'cgroupfs',
    cgroupRoot,
    containerRuntimeEndpoint: `unix://${socket}`,
    podLogsDir: '/var/log/pods',
    volumePluginDir: join(dir, 'kubelet', 'volume-plugins'),
    address,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    tlsCertFile: certs.kubeletServing.cert,
    tlsPrivateKeyFile: certs.kubeletServing.key,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: join(dir, 'pki', 'ca.crt') },
    },
    authorization: { mode: 'Webhook' },
    // Fail rather than write host-wide sysctls (the namespace's bind mounts make them read as expected).
    protectKernelDefaults: true,
    // A shared machine with a busy disk, not a production node.
    evictionHard: {
      'memory.available': '100Mi',
      'nodefs.available': '1%',
      'nodefs.inodesFree': '1%',
      'imagefs.available': '1%',
    },
    // Images cannot be pulled back (no registry), and containerd 1.6 does not pin the sandbox image.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // Secret and ConfigMap volumes are refreshed on a pod's sync: every syncFrequency plus up to 50% jitter.
    syncFrequency: '10s',
    resolvConf: join(dir, 'etc', 'resolv.conf'),
    maxPods: 30,
    serializeImagePulls: false,
  });
}

runMain(main);
