// Issue 22: permissions that cannot be turned into more. The sidecar chart's RBAC and admission policies,
// rendered by helm and applied to the real target apiserver, then tried as the chart's ServiceAccounts
// (kubectl --as): the sidecar's and the injector's ServiceAccounts cannot create a Secret of a type our sinks
// do not write (a kubernetes.io/service-account-token Secret would be filled with another account's token);
// the injector can change the caBundle of its own webhook configuration and nothing else; and the webhook is
// sent only pods that ask for injection, so an injector outage does not hold back every pod of a namespace.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { SECRET_FORMATS, secretType } from '../../src/core/secret-format/formats.ts';
import { ensureControlPlane, REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { testCluster } from '../support/clusters.ts';
import { eventually, uniqueName } from '../support/kube.ts';
import { scratchDir } from '../support/sidecar.ts';

const execute = promisify(execFile);
const target = testCluster('target');
const scratch = scratchDir('admission-policies');
const release = uniqueName('vap');
const namespace = uniqueName('kcr-vap');
const sinkNamespace = uniqueName('kcr-vap-sinks');
const podNamespace = uniqueName('kcr-vap-pods');
const fullname = `${release}-kubeconfig-rotator-sidecar`;
const injector = `${fullname}-injector`;
const account = (name: string) => `system:serviceaccount:${namespace}:${name}`;
// What the policies and RBAC are made of: everything else (Deployments, Services...) is not needed to try them.
const KINDS = new Set([
  'ServiceAccount',
  'Role',
  'RoleBinding',
  'ClusterRole',
  'ClusterRoleBinding',
  'MutatingWebhookConfiguration',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
]);

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

let helm = '';
let kubectl = '';
let manifests: Manifest[] = [];

/** kubectl against the target as the admin, or as `user` (impersonated); resolves with stdout or the error text. */
function kubectlAs(user: string | undefined, args: readonly string[], stdin?: string): Promise<string> {
  const full = ['--kubeconfig', target.state.kubeconfig, ...(user === undefined ? [] : ['--as', user]), ...args];
  return new Promise((resolve) => {
    const child = spawn(kubectl, full, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('close', (code) => {
      resolve(code === 0 ? output : `exit ${String(code)}: ${output}`);
    });
    child.stdin.end(stdin ?? '');
  });
}

const secret = (name: string, type: string) =>
  stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, annotations: { 'kubernetes.io/service-account.name': 'default' } },
    type,
  });

before(async () => {
  const bin = await ensureControlPlane();
  helm = join(bin, 'helm');
  kubectl = join(bin, 'kubectl');
  const values = join(scratch.path, 'values.yaml');
  writeFileSync(
    values,
    stringify({
      mode: 'standalone',
      targets: [
        {
          name: 'east',
          bootstrapSecret: { name: 'bootstrap-east' },
          identity: { commonName: 'agent' },
          sinks: { secret: { name: 'east-kubeconfig', namespace: sinkNamespace } },
        },
      ],
      injector: {
        enabled: true,
        namespaceSelector: { matchLabels: { 'kubeconfig-rotator.io/injection': release } },
        agentServiceAccounts: [{ namespace: podNamespace, name: 'agent', referenceSecrets: ['east-reference'] }],
      },
    }),
  );
  const { stdout } = await execute(helm, [
    'template',
    release,
    join(REPO_ROOT, 'charts', 'kubeconfig-rotator-sidecar'),
    '--namespace',
    namespace,
    '-f',
    values,
  ]);
  manifests = parseAllDocuments(stdout)
    .map((document) => document.toJS() as Manifest | null)
    .filter((manifest): manifest is Manifest => manifest !== null && KINDS.has(manifest.kind));
  for (const name of [namespace, sinkNamespace])
    assert.match(await kubectlAs(undefined, ['create', 'namespace', name]), /created/);
  assert.match(
    await kubectlAs(
      undefined,
      ['create', '-f', '-'],
      stringify({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: podNamespace, labels: { 'kubeconfig-rotator.io/injection': release } },
      }),
    ),
    /created/,
  );
  // create, not apply: no last-applied annotation for a later replace to rewrite (helm adds none either).
  const applied = await kubectlAs(
    undefined,
    ['create', '-f', '-'],
    manifests.map((one) => stringify(one)).join('---\n'),
  );
  assert.doesNotMatch(applied, /^exit/, applied);
});

after(async () => {
  const clusterScoped = manifests.filter(
    (one) => one.metadata.namespace === undefined && one.kind !== 'ServiceAccount',
  );
  for (const one of clusterScoped)
    await kubectlAs(undefined, ['delete', one.kind, one.metadata.name, '--ignore-not-found']);
  for (const name of [namespace, sinkNamespace, podNamespace])
    await kubectlAs(undefined, ['delete', 'namespace', name, '--wait=false', '--ignore-not-found']);
  scratch.dispose();
});

describe('Secrets our ServiceAccounts may write', () => {
  it("the chart's policy allows exactly the types the Secret formats write", () => {
    const policy = manifests.find(
      (one) => one.kind === 'ValidatingAdmissionPolicy' && one.metadata.name === `${fullname}-secret-types`,
    );
    const { validations } = (policy as { spec: { validations: { expression: string }[] } } | undefined)?.spec ?? {
      validations: [],
    };
    const listed = /in (\[.*\])$/.exec(validations[0]?.expression ?? '')?.[1] ?? '[]';
    assert.deepEqual((JSON.parse(listed) as string[]).sort(), [...new Set(SECRET_FORMATS.map(secretType))].sort());
  });

  it("the sidecar's ServiceAccount cannot create a service-account-token Secret (or any type its sinks do not write) where it may create Secrets; an Opaque one it can", async () => {
    const sidecar = account(fullname);
    const token = secret('east-kubeconfig', 'kubernetes.io/service-account-token');
    // The apiserver loads new policies a moment after they are created: wait with server-side dry runs.
    await eventually(
      async () => {
        assert.match(
          await kubectlAs(sidecar, ['-n', sinkNamespace, 'create', '--dry-run=server', '-f', '-'], token),
          /denied request/,
        );
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    assert.match(
      await kubectlAs(sidecar, ['-n', sinkNamespace, 'create', '-f', '-'], token),
      /denied request: kubeconfig-rotator writes Secrets of type Opaque, cluster\.x-k8s\.io\/secret, mirror\.linkerd\.io\/remote-kubeconfig only, not kubernetes\.io\/service-account-token/,
    );
    assert.match(
      await kubectlAs(sidecar, ['-n', sinkNamespace, 'create', '-f', '-'], secret('custom', 'example.com/custom')),
      /denied request: .* not example\.com\/custom/,
    );
    assert.match(
      await kubectlAs(sidecar, ['-n', sinkNamespace, 'create', '-f', '-'], secret('east-kubeconfig', 'Opaque')),
      /created/,
    );
    // The policy binds our ServiceAccounts only: anyone else (here the admin) is not held by it.
    assert.match(
      await kubectlAs(
        undefined,
        ['-n', sinkNamespace, 'create', '-f', '-'],
        secret('admin-token', 'kubernetes.io/service-account-token'),
      ),
      /created/,
    );
  });

  it("the injector's ServiceAccount cannot create one in its namespace either", async () => {
    assert.match(
      await kubectlAs(
        account(injector),
        ['-n', namespace, 'create', '-f', '-'],
        secret(`${injector}-ca`, 'kubernetes.io/service-account-token'),
      ),
      /denied request: kubeconfig-rotator writes Secrets of type .* not kubernetes\.io\/service-account-token/,
    );
  });
  it("an injected pod's ServiceAccount, granted its reference Secret, cannot create one either", async () => {
    const agent = `system:serviceaccount:${podNamespace}:agent`;
    const create = (type: string) =>
      kubectlAs(agent, ['-n', podNamespace, 'create', '-f', '-'], secret('east-reference', type));
    assert.match(
      await create('kubernetes.io/service-account-token'),
      /denied request: .* not kubernetes\.io\/service-account-token/,
    );
    assert.match(await create('mirror.linkerd.io/remote-kubeconfig'), /created/);
  });
});

describe("the injector's webhook configuration", () => {
  const read = async (): Promise<Manifest & { webhooks: Record<string, unknown>[] }> =>
    JSON.parse(
      await kubectlAs(undefined, ['get', 'mutatingwebhookconfiguration', injector, '-o', 'json']),
    ) as Manifest & {
      webhooks: Record<string, unknown>[];
    };
  const replaceAs = async (change: (config: Manifest & { webhooks: Record<string, unknown>[] }) => void) => {
    const config = await read();
    change(config);
    return kubectlAs(account(injector), ['replace', '-f', '-'], JSON.stringify(config));
  };
  const ruleOf = (config: { webhooks: Record<string, unknown>[] }) =>
    (config.webhooks[0] as { rules: Record<string, unknown>[] }).rules[0] ?? assert.fail('no rule');
  const caBundle = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');

  it('the injector may change its caBundle', async () => {
    assert.match(
      await replaceAs((config) => {
        for (const webhook of config.webhooks) (webhook.clientConfig as Record<string, unknown>).caBundle = caBundle;
      }),
      /replaced/,
    );
    assert.equal(((await read()).webhooks[0]?.clientConfig as { caBundle?: string }).caBundle, caBundle);
  });

  it('and nothing else: not its rules, failure policy, selectors, service or labels; and no other webhook configuration', async () => {
    const refused =
      /denied request: the injector may (change only the caBundle of its webhooks|not change its webhook configuration's labels)/;
    const changes: [string, (config: Manifest & { webhooks: Record<string, unknown>[] }) => void][] = [
      [
        'rules',
        (config) =>
          ((config.webhooks[0] as { rules: { resources: string[] }[] }).rules = [
            { ...ruleOf(config), resources: ['*'] },
          ]),
      ],
      ['failurePolicy', (config) => ((config.webhooks[0] as { failurePolicy: string }).failurePolicy = 'Ignore')],
      ['namespaceSelector', (config) => ((config.webhooks[0] as { namespaceSelector: object }).namespaceSelector = {})],
      ['matchConditions', (config) => delete (config.webhooks[0] as { matchConditions?: unknown }).matchConditions],
      [
        'service',
        (config) =>
          ((config.webhooks[0] as { clientConfig: { service: { name: string } } }).clientConfig.service.name =
            'elsewhere'),
      ],
      [
        'a second webhook',
        (config) => config.webhooks.push({ ...config.webhooks[0], name: 'more.kubeconfig-rotator.io' }),
      ],
      ['labels', (config) => (config.metadata.labels = { ...config.metadata.labels, extra: 'yes' })],
    ];
    for (const [what, change] of changes) assert.match(await replaceAs(change), refused, what);
    const other = uniqueName('kcr-other-webhook');
    const created = await kubectlAs(
      undefined,
      ['create', '-f', '-'],
      JSON.stringify({ ...(await read()), metadata: { name: other } }),
    );
    try {
      assert.match(created, /created/);
      const forbidden = await kubectlAs(account(injector), ['label', 'mutatingwebhookconfiguration', other, 'x=y']);
      assert.match(forbidden, /Forbidden/);
    } finally {
      await kubectlAs(undefined, ['delete', 'mutatingwebhookconfiguration', other, '--ignore-not-found']);
    }
  });

  it('while the injector is down (failurePolicy Fail), only pods asking for injection are held back in an opted-in namespace', async () => {
    const pod = (name: string, annotations: Record<string, string>) =>
      stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, annotations },
        spec: { containers: [{ name: 'c', image: 'agent:1' }] },
      });
    // The namespace's default ServiceAccount (which Pods need) comes from kube-controller-manager a moment after it.
    await eventually(
      async () => {
        assert.match(
          await kubectlAs(undefined, ['-n', podNamespace, 'create', '-f', '-'], pod('plain', {})),
          /created/,
        );
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    assert.match(
      await kubectlAs(
        undefined,
        ['-n', podNamespace, 'create', '-f', '-'],
        pod('asking', { 'kubeconfig-rotator.io/inject': 'east' }),
      ),
      /failed calling webhook "inject\.kubeconfig-rotator\.io"/,
    );
  });
});
