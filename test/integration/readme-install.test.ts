// README.md's install steps 1 to 3 as written: its values files and its commands, read from README.md, run
// against the test clusters (helm install for real; the operator command through src/cli.ts with the
// README's arguments). Only what the shared clusters force is changed: the source cluster's name "west"
// (unique per run, everywhere it appears), the namespace, the release names, and contexts -> kubeconfig files.
// Then: every bootstrap Secret the sidecar mounts exists, one bootstrap token serves every target, and the
// approver's installed policy approves exactly what each of the sidecar's targets will ask for.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { sidecarConfigSchema, type ParsedSidecarConfig } from '../../src/core/config/sidecar.ts';
import { buildCertificationRequest } from '../../src/core/pki/csr.ts';
import { parseCertificationRequest } from '../../src/core/pki/csr-parse.ts';
import { clientUsagesFor, generateKeyPair } from '../../src/core/pki/keys.ts';
import { evaluate } from '../../src/core/policy/evaluate.ts';
import { parsePolicyFile, type PolicyFile } from '../../src/core/policy/schema.ts';
import { ensureControlPlane, REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { testCluster, type TestCluster } from '../support/clusters.ts';
import { ensureMonitoringCrds, ensureNamespaces } from '../support/chart-prerequisites.ts';
import { uniqueName } from '../support/kube.ts';
import { readmeCommand, readmeInstall } from '../support/readme.ts';
import { scratchDir } from '../support/sidecar.ts';

const execute = promisify(execFile);
const target = testCluster('target');
const source = testCluster('source');
const scratch = scratchDir('readme-install');
const install = readmeInstall();
const sourceName = uniqueName('west');
const namespace = uniqueName('kcr-readme');
const releases: Record<string, string> = {
  'kubeconfig-rotator-approver': `${sourceName}-approver`,
  'kubeconfig-rotator-sidecar': `${sourceName}-sidecar`,
};
let bin = '';

/** The charts' name for their objects, for these release names (which do not contain the chart's). */
const fullname = (chart: string) => `${releases[chart] ?? ''}-${chart}`;

/** The README's text with the source cluster's name made unique (the clusters are shared). */
const renamed = (text: string) => text.replaceAll(/\bwest\b/g, sourceName);

/** A README command's arguments for the test clusters: contexts become kubeconfig files, names unique ones. */
function adapt(args: readonly string[]): string[] {
  const kubeconfigOf = (context: string): TestCluster => {
    if (context === 'target') return target;
    if (context === 'source') return source;
    return assert.fail(`README.md names a context "${context}", neither "source" nor "target"`);
  };
  const out: string[] = [];
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] ?? '';
    const value = args[index + 1] ?? '';
    if (arg === '--kube-context') out.push('--kubeconfig', kubeconfigOf(value).state.kubeconfig);
    else if (arg === '--target-context') out.push('--target-kubeconfig', kubeconfigOf(value).state.kubeconfig);
    else if (arg === '--source-context') out.push('--source-kubeconfig', kubeconfigOf(value).state.kubeconfig);
    else if (arg === '--namespace') out.push('--namespace', namespace);
    else if (arg === '-f') out.push('-f', join(scratch.path, value));
    else {
      out.push(releases[arg] ?? renamed(arg));
      continue;
    }
    index++;
  }
  return out;
}

async function run(command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execute(command, args, { cwd: REPO_ROOT });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const step = {
  // Without the program: `helm`, and `npx kubeconfig-rotator` (run here as src/cli.ts, which its bin runs).
  approver: () => readmeCommand(install, 'helm install kubeconfig-rotator-approver').slice(1),
  bootstrap: () => readmeCommand(install, 'npx kubeconfig-rotator bootstrap').slice(2),
  sidecar: () => readmeCommand(install, 'helm install kubeconfig-rotator-sidecar').slice(1),
};

const sidecarValues = () =>
  parse(renamed(install.files['sidecar-values.yaml'] ?? '')) as {
    targets: { name: string; bootstrapSecret: { name: string }; sinks: { secret?: { namespace?: string } } }[];
  };

before(async () => {
  bin = await ensureControlPlane();
  for (const [file, content] of Object.entries(install.files))
    writeFileSync(join(scratch.path, file), renamed(content));
  // What the README states as prerequisites: the Prometheus Operator's CRDs, and the namespaces the sidecar's
  // Secret sinks write to (the consumers' own: Admiralty's, Argo CD's, Istio's).
  await ensureMonitoringCrds([source, target]);
  const sinkNamespaces = sidecarValues().targets.flatMap((entry) => entry.sinks.secret?.namespace ?? []);
  await ensureNamespaces(source, sinkNamespaces);
});

after(async () => {
  const helm = join(bin, 'helm');
  for (const [cluster, release] of [
    [target, releases['kubeconfig-rotator-approver']],
    [source, releases['kubeconfig-rotator-sidecar']],
  ] as const)
    await run(helm, ['uninstall', release ?? '', '--namespace', namespace, '--kubeconfig', cluster.state.kubeconfig]);
  const targetCore = target.admin().makeApiClient(CoreV1Api);
  const tokens = await targetCore.listNamespacedSecret({
    namespace: 'kube-system',
    labelSelector: `kubeconfig-rotator.io/source=${sourceName}`,
  });
  for (const secret of tokens.items)
    await targetCore.deleteNamespacedSecret({ namespace: 'kube-system', name: secret.metadata?.name ?? '' });
  await target
    .admin()
    .makeApiClient(RbacAuthorizationV1Api)
    .deleteClusterRoleBinding({ name: `kubeconfig-rotator:bootstrap:${sourceName}` })
    .catch(() => undefined);
  for (const cluster of [source, target])
    await cluster
      .admin()
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: namespace })
      .catch(() => undefined);
  scratch.dispose();
});

describe("README.md's install, as written", () => {
  let policy: PolicyFile | undefined;
  let config: ParsedSidecarConfig | undefined;

  it('step 1: helm installs the approver with the README values', async () => {
    const result = await run(join(bin, 'helm'), adapt(step.approver()));
    assert.equal(result.code, 0, result.stderr);
    const configMap = await target
      .admin()
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ namespace, name: `${fullname('kubeconfig-rotator-approver')}-policy` });
    const parsed = parsePolicyFile(configMap.data?.['policy.yaml'] ?? '');
    assert.ok(parsed.ok, parsed.ok ? '' : JSON.stringify(parsed.problems));
    policy = parsed.value;
  });

  it('step 2: one bootstrap run makes the Secret every target of the sidecar mounts', async () => {
    const result = await run(process.execPath, [join(REPO_ROOT, 'src', 'cli.ts'), ...adapt(step.bootstrap())]);
    assert.equal(result.code, 0, result.stderr);
    const core = source.admin().makeApiClient(CoreV1Api);
    for (const name of new Set(sidecarValues().targets.map((entry) => entry.bootstrapSecret.name))) {
      const secret = await core.readNamespacedSecret({ namespace, name }).catch(() => undefined);
      assert.ok(secret !== undefined, `the sidecar mounts bootstrap Secret ${name}, which step 2 made`);
    }
  });

  it('step 3: helm installs the sidecar with the README values, into the namespace step 2 made', async () => {
    const result = await run(join(bin, 'helm'), adapt(step.sidecar()));
    assert.equal(result.code, 0, result.stderr);
    const configMap = await source
      .admin()
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ namespace, name: fullname('kubeconfig-rotator-sidecar') });
    const parsed = sidecarConfigSchema.safeParse(parse(configMap.data?.['config.yaml'] ?? ''));
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
    config = parsed.data;
  });

  it("the approver's policy approves the first certificate each of the sidecar's targets asks for", async () => {
    assert.ok(policy !== undefined && config !== undefined, 'steps 1 and 3 passed');
    const tokens = await target
      .admin()
      .makeApiClient(CoreV1Api)
      .listNamespacedSecret({ namespace: 'kube-system', labelSelector: `kubeconfig-rotator.io/source=${sourceName}` });
    assert.equal(tokens.items.length, 1, 'one bootstrap token for the source');
    const data = tokens.items[0]?.data ?? {};
    const field = (key: string) => Buffer.from(data[key] ?? '', 'base64').toString('utf8');
    // The requester as the apiserver authenticates the bootstrap token.
    const requester = {
      username: `system:bootstrap:${field('token-id')}`,
      groups: ['system:bootstrappers', ...field('auth-extra-groups').split(','), 'system:authenticated'],
    };
    for (const entry of config.targets) {
      if (entry.credential !== 'certificate') assert.fail(`target ${entry.name} is a certificate target`);
      const { identity } = entry;
      const keys = generateKeyPair(entry.keyAlgorithm);
      const decision = evaluate(
        {
          signerName: policy.signerName,
          usages: clientUsagesFor(entry.keyAlgorithm),
          expirationSeconds: entry.expirationSeconds,
          requester,
          request: parseCertificationRequest(buildCertificationRequest(identity, keys)),
        },
        policy,
      );
      assert.equal(decision.result, 'approved', `target ${entry.name}: ${JSON.stringify(decision)}`);
    }
  });
});
