// The Helm charts: lint, render with default and example values, schema errors, alert rules under
// promtool, and the native-sidecar named templates in another chart, accepted by a real apiserver.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { approverRbac } from '../../src/approver/rbac.ts';
import { CoreV1Api } from '@kubernetes/client-node';
import { injectorConfigSchema } from '../../src/core/config/injector.ts';
import { sidecarConfig } from '../../src/core/injector/plan.ts';
import { sidecarConfigSchema } from '../../src/core/config/sidecar.ts';
import { kubeconfigKey } from '../../src/core/secret-format/formats.ts';
import { parsePolicyFile } from '../../src/core/policy/schema.ts';
import { ensureControlPlane, REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { ensureMonitoringCrds, ensureNamespaces } from '../support/chart-prerequisites.ts';
import { testCluster, type TestCluster } from '../support/clusters.ts';
import { uniqueName } from '../support/kube.ts';
import { readmeInstall } from '../support/readme.ts';
import { scratchDir } from '../support/sidecar.ts';

const execute = promisify(execFile);
const scratch = scratchDir('charts');
let helm = '';
let kubectl = '';

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  [field: string]: unknown;
}

const CHARTS = ['kubeconfig-rotator-sidecar', 'kubeconfig-rotator-approver'];
const chartDir = (chart: string) => join(REPO_ROOT, 'charts', chart);
const examples = (chart: string) =>
  readdirSync(join(chartDir(chart), 'examples'))
    .filter((file) => file.endsWith('.yaml'))
    .map((file) => join(chartDir(chart), 'examples', file));

async function run(
  command: string,
  args: string[],
  options: { cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execute(command, args, options);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** What `helm install` applies: without the `helm test` hooks (test/pods/helm-test.test.ts runs those for real). */
async function template(chart: string, args: string[] = []): Promise<Manifest[]> {
  const result = await run(helm, ['template', 'rel', chart, '--namespace', 'kcr', '--skip-tests', ...args]);
  assert.equal(result.code, 0, result.stderr);
  return parseAllDocuments(result.stdout)
    .map((document) => document.toJS() as Manifest | null)
    .filter((manifest): manifest is Manifest => manifest !== null);
}

/**
 * A container's own security context, which must hold even where the pod-level one is not ours (the native
 * sidecar in another chart's pods, injected sidecars): seccomp included.
 */
function assertSecureContainer(securityContext: Record<string, unknown> | undefined): void {
  assert.ok(securityContext !== undefined, 'the container has a securityContext');
  assert.equal(securityContext.readOnlyRootFilesystem, true);
  assert.equal(securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(securityContext.capabilities, { drop: ['ALL'] });
  assert.deepEqual(securityContext.seccompProfile, { type: 'RuntimeDefault' });
}

before(async () => {
  const bin = await ensureControlPlane();
  helm = join(bin, 'helm');
  kubectl = join(bin, 'kubectl');
});

after(async () => {
  for (const [cluster, name] of createdNamespaces)
    await cluster
      .admin()
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name })
      .catch(() => undefined);
  scratch.dispose();
});

let agentChart: Promise<string> | undefined;
/** The fixture chart that uses the sidecar chart's named templates, with its dependency built (once). */
function exampleAgentChart(): Promise<string> {
  agentChart ??= (async () => {
    const agent = join(scratch.path, 'example-agent');
    cpSync(join(REPO_ROOT, 'test', 'fixtures', 'charts', 'example-agent'), agent, { recursive: true });
    const chartFile = join(agent, 'Chart.yaml');
    const dependency = `file://${chartDir('kubeconfig-rotator-sidecar')}`;
    writeFileSync(chartFile, readFileSync(chartFile, 'utf8').replace('file://REPLACED_BY_THE_TEST', dependency));
    const built = await run(helm, ['dependency', 'build', agent]);
    assert.equal(built.code, 0, built.stderr);
    return agent;
  })();
  return agentChart;
}

/** The README's values file, as its install section writes it. */
function readmeValues(file: string): string[] {
  const path = join(scratch.path, `readme-${file}`);
  writeFileSync(path, readmeInstall().files[file] ?? assert.fail(`README.md writes no ${file}`));
  return ['-f', path];
}

interface ValueSet {
  readonly what: string;
  readonly chart: () => Promise<string>;
  readonly args: () => string[];
}

/** Every way the charts are documented to be installed: each example, the README's values, the fixture chart. */
const VALUE_SETS: readonly ValueSet[] = [
  ...CHARTS.flatMap((chart) =>
    examples(chart).map((file) => ({
      what: `${chart} ${basename(file)}`,
      chart: () => Promise.resolve(chartDir(chart)),
      args: () => ['-f', file],
    })),
  ),
  {
    what: 'kubeconfig-rotator-approver, README.md approver-values.yaml',
    chart: () => Promise.resolve(chartDir('kubeconfig-rotator-approver')),
    args: () => readmeValues('approver-values.yaml'),
  },
  {
    what: 'kubeconfig-rotator-sidecar, README.md sidecar-values.yaml',
    chart: () => Promise.resolve(chartDir('kubeconfig-rotator-sidecar')),
    args: () => readmeValues('sidecar-values.yaml'),
  },
  { what: 'test/fixtures/charts/example-agent', chart: exampleAgentChart, args: () => [] },
];

/** The unique namespaces this file created, deleted at the end. */
const createdNamespaces: [TestCluster, string][] = [];

for (const chart of CHARTS) {
  describe(`chart ${chart}`, () => {
    it('passes helm lint with default and example values', async () => {
      for (const values of [[], ...examples(chart).map((file) => ['-f', file])]) {
        const result = await run(helm, ['lint', '--strict', chartDir(chart), ...values]);
        assert.equal(result.code, 0, `${values.join(' ')}: ${result.stdout}${result.stderr}`);
      }
    });

    it('renders with default and example values, with secure defaults on every container and init container', async () => {
      for (const values of [[], ...examples(chart).map((file) => ['-f', file])]) {
        const manifests = await template(chartDir(chart), values);
        for (const manifest of manifests.filter((one) => one.kind === 'Deployment')) {
          const pod = (
            manifest.spec?.template as {
              spec: {
                securityContext: Record<string, unknown>;
                containers: { securityContext: Record<string, unknown> }[];
                initContainers?: { securityContext: Record<string, unknown> }[];
              };
            }
          ).spec;
          assert.equal(pod.securityContext.runAsNonRoot, true);
          assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
          for (const container of [...pod.containers, ...(pod.initContainers ?? [])])
            assertSecureContainer(container.securityContext);
        }
      }
    });

    it('alert rules pass promtool test rules', async () => {
      const manifests = await template(chartDir(chart), [
        '--set',
        'prometheusRule.enabled=true',
        '--set',
        'serviceMonitor.enabled=true',
      ]);
      const rule = manifests.find((manifest) => manifest.kind === 'PrometheusRule');
      assert.ok(rule !== undefined, 'a PrometheusRule is rendered');
      const dir = join(scratch.path, `alerts-${chart}`);
      cpSync(join(REPO_ROOT, 'test', 'alerts'), dir, { recursive: true });
      const role = chart.replace('kubeconfig-rotator-', '');
      writeFileSync(join(dir, `${role}-rules.yaml`), stringify({ groups: rule.spec?.groups }));
      const result = await run('promtool', ['test', 'rules', `${role}.test.yaml`], { cwd: dir });
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /SUCCESS/);
    });
  });
}

// Values people expect of a well-kept chart, set all at once, each asserted where it must land.
const POD_VALUES = {
  extraArgs: ['--extra-flag=1'],
  extraEnv: [{ name: 'EXTRA', value: 'extra-value' }],
  podAnnotations: { 'example.com/annotated': 'annotation-value' },
  podLabels: { 'example.com/labelled': 'label-value' },
  priorityClassName: 'high-priority',
  topologySpreadConstraints: [
    { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' },
  ],
  strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
};

interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    priorityClassName?: string;
    topologySpreadConstraints?: unknown[];
    containers: { name: string; args: string[]; env: { name: string; value?: string }[] }[];
  };
}

describe('both charts: extraArgs, extraEnv, podAnnotations, podLabels, priorityClassName, topologySpreadConstraints, strategy', () => {
  const cases = [
    {
      chart: 'kubeconfig-rotator-sidecar',
      example: 'admiralty-standalone.yaml',
      deployment: 'rel-kubeconfig-rotator-sidecar',
      container: 'kubeconfig-rotator',
      ownArgs: ['sidecar', '--config'],
    },
    {
      chart: 'kubeconfig-rotator-approver',
      example: 'admiralty.yaml',
      deployment: 'rel-kubeconfig-rotator-approver',
      container: 'approver',
      ownArgs: ['approver'],
    },
  ];
  for (const { chart, example, deployment, container, ownArgs } of cases) {
    it(`${chart}: each value lands in its Deployment, its pod template or its container`, async () => {
      const values = join(scratch.path, `${chart}-pod-values.yaml`);
      writeFileSync(values, stringify(POD_VALUES));
      const dir = chartDir(chart);
      const manifests = await template(dir, ['-f', join(dir, 'examples', example), '-f', values]);
      const found = manifests.find(
        (manifest) => manifest.kind === 'Deployment' && manifest.metadata.name === deployment,
      );
      assert.ok(found?.spec !== undefined, `Deployment ${deployment} is rendered`);
      assert.deepEqual(found.spec.strategy, POD_VALUES.strategy);
      const pod = found.spec.template as PodTemplate;
      assert.equal(pod.metadata.labels['example.com/labelled'], 'label-value');
      assert.equal(pod.metadata.annotations?.['example.com/annotated'], 'annotation-value');
      assert.equal(pod.spec.priorityClassName, 'high-priority');
      assert.deepEqual(pod.spec.topologySpreadConstraints, POD_VALUES.topologySpreadConstraints);
      const main = pod.spec.containers.find((one) => one.name === container);
      assert.ok(main !== undefined, `container ${container}`);
      assert.deepEqual(main.args.slice(0, ownArgs.length), ownArgs, 'its own arguments first');
      assert.equal(main.args.at(-1), '--extra-flag=1', 'the extra arguments last');
      assert.deepEqual(main.env.at(-1), { name: 'EXTRA', value: 'extra-value' });
      assert.ok(
        main.env.some((variable) => variable.name === 'POD_NAMESPACE'),
        'its own variables kept',
      );
    });
  }
});

describe('chart kubeconfig-rotator-sidecar values', () => {
  const chart = chartDir('kubeconfig-rotator-sidecar');

  it('the schema rejects bad values, naming each', async () => {
    const result = await run(helm, [
      'template',
      'rel',
      chart,
      '--set',
      'mode=bogus',
      '--set',
      'targets[0].name=East',
      '--set',
      'targets[0].expirationSeconds=60',
      '--set',
      'targets[1].name=west',
      '--set',
      'targets[1].credential=token',
      '--set',
      'targets[2].name=north',
      '--set',
      'targets[2].credential=token',
      '--set',
      'targets[2].identity.commonName=agent',
    ]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /at '\/mode': value must be one of 'standalone', 'sidecar'/);
    assert.match(result.stderr, /at '\/targets\/0\/name': 'East' does not match pattern/);
    assert.match(result.stderr, /at '\/targets\/0\/expirationSeconds': minimum: got 60, want 600/);
    // Each credential kind's own required fields with the common ones, only the kind the target chose:
    // identity for a certificate (the default), serviceAccount for a token.
    assert.match(result.stderr, /at '\/targets\/0': missing properties 'identity', 'sinks', 'bootstrapSecret'/);
    assert.match(result.stderr, /at '\/targets\/1': missing properties 'serviceAccount', 'sinks', 'bootstrapSecret'/);
    assert.doesNotMatch(result.stderr, /at '\/targets\/1': missing propert[^\n]*'identity'/);
    // A field of another kind is refused (the sidecar names it in its own words at start).
    assert.match(result.stderr, /at '\/targets\/2\/identity': 'not' failed/);
  });

  it('renders a token target as the sidecar reads it, its Argo CD Secret writable in the argocd namespace', async () => {
    const manifests = await template(chart, ['-f', join(chart, 'examples', 'argocd-eks-token.yaml')]);
    const configMap = manifests.find((manifest) => manifest.kind === 'ConfigMap');
    const config = sidecarConfigSchema.parse(
      parseAllDocuments(String((configMap?.data as Record<string, string>)['config.yaml']))[0]?.toJS(),
    );
    const [only] = config.targets;
    assert.equal(only?.credential, 'token');
    assert.deepEqual(only.serviceAccount, { namespace: 'kubeconfig-rotator', name: 'kcr-mgmt' });
    assert.equal(only.identity, undefined);
    assert.equal(only.sinks.secret?.format, 'argocd');
    const secretsRole = manifests.find(
      (manifest) => manifest.kind === 'Role' && manifest.metadata.name.endsWith('-secrets'),
    );
    assert.equal(secretsRole?.metadata.namespace, 'argocd');
  });

  it("a federated target: its config as the sidecar reads it, and create on its ServiceAccount's tokens only (the pod's own by default)", async () => {
    const manifests = await template(chart, [
      '--set',
      'targets[0].name=east',
      '--set',
      'targets[0].bootstrapSecret.name=kcr-bootstrap-east',
      '--set',
      'targets[0].credential=federated',
      '--set',
      'targets[0].audiences[0]=kubeconfig-rotator:east',
      '--set',
      'targets[0].sinks.secret.name=east-kubeconfig',
      '--set',
      'targets[1].name=north',
      '--set',
      'targets[1].bootstrapSecret.name=kcr-bootstrap-north',
      '--set',
      'targets[1].credential=federated',
      '--set',
      'targets[1].audiences[0]=kubeconfig-rotator:north',
      '--set',
      'targets[1].serviceAccount.namespace=agents',
      '--set',
      'targets[1].serviceAccount.name=admiralty',
      '--set',
      'targets[1].sinks.secret.name=north-kubeconfig',
    ]);
    const configMap = manifests.find((manifest) => manifest.kind === 'ConfigMap');
    const config = sidecarConfigSchema.parse(
      parseAllDocuments(String((configMap?.data as Record<string, string>)['config.yaml']))[0]?.toJS(),
    );
    assert.deepEqual(
      config.targets.map((target) => target.credential),
      ['federated', 'federated'],
    );
    const roles = manifests
      .filter((manifest) => manifest.kind === 'Role' && manifest.metadata.name.endsWith('-federated'))
      .map((role) => [role.metadata.namespace, (role as unknown as { rules: unknown[] }).rules]);
    assert.deepEqual(roles, [
      [
        'agents',
        [{ apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['admiralty'], verbs: ['create'] }],
      ],
      [
        'kcr',
        [
          {
            apiGroups: [''],
            resources: ['serviceaccounts/token'],
            resourceNames: ['rel-kubeconfig-rotator-sidecar'],
            verbs: ['create'],
          },
        ],
      ],
    ]);
  });

  it("a certificate target with federated bootstrap: its config as the sidecar reads it, and create on its ServiceAccount's tokens only (the pod's own by default); none for token bootstrap", async () => {
    const manifests = await template(chart, [
      '--set-json',
      'targets=[{"name":"east","bootstrapSecret":{"name":"kcr-bootstrap-east"},"identity":{"commonName":"agent"},"bootstrap":{"with":"federated","audiences":["kubeconfig-rotator:east"]},"sinks":{"secret":{"name":"east-kubeconfig"}}},{"name":"north","bootstrapSecret":{"name":"kcr-bootstrap-north"},"identity":{"commonName":"agent"},"bootstrap":{"with":"federated","audiences":["kubeconfig-rotator:north"],"serviceAccount":{"namespace":"agents","name":"admiralty"}},"sinks":{"secret":{"name":"north-kubeconfig"}}},{"name":"south","bootstrapSecret":{"name":"kcr-bootstrap-south"},"identity":{"commonName":"agent"},"bootstrap":{"with":"token"},"sinks":{"secret":{"name":"south-kubeconfig"}}}]',
    ]);
    const configMap = manifests.find((manifest) => manifest.kind === 'ConfigMap');
    const config = sidecarConfigSchema.parse(
      parseAllDocuments(String((configMap?.data as Record<string, string>)['config.yaml']))[0]?.toJS(),
    );
    assert.deepEqual(
      config.targets.map((target) => [target.credential, target.bootstrap?.with]),
      [
        ['certificate', 'federated'],
        ['certificate', 'federated'],
        ['certificate', 'token'],
      ],
    );
    const token = (names: string[]) => [
      { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: names, verbs: ['create'] },
    ];
    const roles = manifests
      .filter((manifest) => manifest.kind === 'Role' && manifest.metadata.name.endsWith('-federated'))
      .map((role) => [role.metadata.namespace, (role as unknown as { rules: unknown[] }).rules]);
    assert.deepEqual(roles, [
      ['agents', token(['admiralty'])],
      ['kcr', token(['rel-kubeconfig-rotator-sidecar'])],
    ]);
  });

  it("renders each target's config with its bootstrap Secret mounted and Secret sinks in the release namespace by default", async () => {
    const manifests = await template(chart, ['-f', join(chart, 'examples', 'admiralty-standalone.yaml')]);
    const configMap = manifests.find((manifest) => manifest.kind === 'ConfigMap');
    const config = parseAllDocuments(String((configMap?.data as Record<string, string>)['config.yaml']))[0]?.toJS() as {
      targets: { name: string; bootstrapKubeconfig: string; sinks: { secret: Record<string, string> } }[];
    };
    assert.deepEqual(
      config.targets.map((target) => [target.name, target.bootstrapKubeconfig, target.sinks.secret]),
      [
        [
          'east',
          '/var/run/kubeconfig-rotator/bootstrap/east/kubeconfig',
          { name: 'east-kubeconfig', namespace: 'admiralty' },
        ],
        [
          'north',
          '/var/run/kubeconfig-rotator/bootstrap/north/kubeconfig',
          { name: 'north-kubeconfig', namespace: 'admiralty' },
        ],
      ],
    );
    // The chart leaves the key to the program: as the sidecar reads the config, it is Admiralty's "config".
    const parsed = sidecarConfigSchema.parse(config);
    assert.deepEqual(
      parsed.targets.map((target) =>
        target.sinks.secret === undefined
          ? undefined
          : kubeconfigKey({ ...target.sinks.secret, targetName: target.name }),
      ),
      ['config', 'config'],
    );
    const secretsRole = manifests.find(
      (manifest) => manifest.kind === 'Role' && manifest.metadata.name.endsWith('-secrets'),
    );
    assert.equal(secretsRole?.metadata.namespace, 'admiralty');
    assert.deepEqual((secretsRole.rules as { resourceNames?: string[] }[])[0]?.resourceNames, [
      'east-kubeconfig',
      'north-kubeconfig',
    ]);
  });

  it('restart action: workloads in the config (namespace defaulting to the release), patch granted on exactly those names, none for injected pods', async () => {
    const targets = [
      {
        name: 'east',
        bootstrapSecret: { name: 'bootstrap-east' },
        identity: { commonName: 'east-user' },
        sinks: { secret: { name: 'east-kubeconfig' } },
        restart: [
          { kind: 'Deployment', name: 'agent' },
          { kind: 'StatefulSet', namespace: 'argocd', name: 'argocd-application-controller' },
        ],
      },
      {
        name: 'north',
        bootstrapSecret: { name: 'bootstrap-north' },
        identity: { commonName: 'north-user' },
        sinks: { secret: { name: 'north-kubeconfig' } },
        restart: [
          { kind: 'Deployment', name: 'agent' },
          { kind: 'Deployment', namespace: 'argocd', name: 'argocd-server' },
        ],
      },
    ];
    const manifests = await template(chart, [
      '--namespace',
      'fleet',
      '--set-json',
      `targets=${JSON.stringify(targets)}`,
      '--set',
      'injector.enabled=true',
    ]);
    const configMap = manifests.find(
      (manifest) => manifest.kind === 'ConfigMap' && manifest.metadata.name === 'rel-kubeconfig-rotator-sidecar',
    );
    const config = sidecarConfigSchema.parse(
      parseAllDocuments(String((configMap?.data as Record<string, string>)['config.yaml']))[0]?.toJS(),
    );
    assert.deepEqual(
      config.targets.map((target) => target.restart),
      [
        [
          { kind: 'Deployment', namespace: 'fleet', name: 'agent' },
          { kind: 'StatefulSet', namespace: 'argocd', name: 'argocd-application-controller' },
        ],
        [
          { kind: 'Deployment', namespace: 'fleet', name: 'agent' },
          { kind: 'Deployment', namespace: 'argocd', name: 'argocd-server' },
        ],
      ],
    );
    const roles = manifests.filter(
      (manifest) => manifest.kind === 'Role' && manifest.metadata.name === 'rel-kubeconfig-rotator-sidecar-restart',
    );
    assert.deepEqual(
      roles.map((role) => [role.metadata.namespace, role.rules]),
      [
        [
          'argocd',
          [
            { apiGroups: ['apps'], resources: ['deployments'], resourceNames: ['argocd-server'], verbs: ['patch'] },
            {
              apiGroups: ['apps'],
              resources: ['statefulsets'],
              resourceNames: ['argocd-application-controller'],
              verbs: ['patch'],
            },
          ],
        ],
        ['fleet', [{ apiGroups: ['apps'], resources: ['deployments'], resourceNames: ['agent'], verbs: ['patch'] }]],
      ],
    );
    const bindings = manifests.filter(
      (manifest) =>
        manifest.kind === 'RoleBinding' && manifest.metadata.name === 'rel-kubeconfig-rotator-sidecar-restart',
    );
    assert.deepEqual(
      bindings.map((binding) => [binding.metadata.namespace, binding.subjects]),
      [
        ['argocd', [{ kind: 'ServiceAccount', name: 'rel-kubeconfig-rotator-sidecar', namespace: 'fleet' }]],
        ['fleet', [{ kind: 'ServiceAccount', name: 'rel-kubeconfig-rotator-sidecar', namespace: 'fleet' }]],
      ],
    );
    const injectorMap = manifests.find(
      (manifest) =>
        manifest.kind === 'ConfigMap' && manifest.metadata.name === 'rel-kubeconfig-rotator-sidecar-injector',
    );
    const injector = injectorConfigSchema.parse(
      parseAllDocuments(String((injectorMap?.data as Record<string, string>)['injector.yaml']))[0]?.toJS(),
    );
    assert.deepEqual(
      injector.targets.map((target) => 'restart' in target),
      [false, false],
    );
  });

  it("the injector: a config the injector itself accepts, a webhook that never sees the injector's own pods, RBAC limited to its CA Secret and webhook", async () => {
    for (const mode of ['self-managed', 'cert-manager']) {
      const manifests = await template(chart, [
        '-f',
        join(chart, 'examples', 'injector.yaml'),
        '--set',
        `injector.certificates.mode=${mode}`,
      ]);
      const configMap = manifests.find(
        (manifest) =>
          manifest.kind === 'ConfigMap' && manifest.metadata.name === 'rel-kubeconfig-rotator-sidecar-injector',
      );
      const config = injectorConfigSchema.safeParse(
        parseAllDocuments(String((configMap?.data as Record<string, string>)['injector.yaml']))[0]?.toJS(),
      );
      assert.ok(config.success, JSON.stringify(config.error?.issues));
      assert.equal(config.data.tls.mode, mode === 'self-managed' ? 'self-managed' : 'files');
      assert.deepEqual(
        config.data.targets.map((target) => [target.name, target.embed]),
        [
          ['east', false],
          ['north', true],
        ],
      );
      assertSecureContainer(config.data.sidecar.securityContext);
      const webhook = manifests.find((manifest) => manifest.kind === 'MutatingWebhookConfiguration') as
        { webhooks: { objectSelector: { matchExpressions: unknown[] }; failurePolicy: string }[] } | undefined;
      assert.deepEqual(webhook?.webhooks[0]?.objectSelector.matchExpressions, [
        { key: 'app.kubernetes.io/component', operator: 'NotIn', values: ['injector'] },
      ]);
      assert.equal(webhook.webhooks[0].failurePolicy, 'Fail');
      const sorted = (rules: unknown[]) => rules.map((rule) => JSON.stringify(rule)).sort();
      const rules = manifests
        .filter(
          (manifest) =>
            (manifest.kind === 'Role' || manifest.kind === 'ClusterRole') &&
            manifest.metadata.name === 'rel-kubeconfig-rotator-sidecar-injector',
        )
        .flatMap((role) => role.rules as unknown[]);
      assert.deepEqual(
        sorted(rules),
        sorted(
          mode === 'cert-manager'
            ? []
            : [
                {
                  apiGroups: [''],
                  resources: ['secrets'],
                  resourceNames: ['rel-kubeconfig-rotator-sidecar-injector-ca'],
                  verbs: ['get', 'update'],
                },
                { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
                {
                  apiGroups: ['admissionregistration.k8s.io'],
                  resources: ['mutatingwebhookconfigurations'],
                  resourceNames: ['rel-kubeconfig-rotator-sidecar-injector'],
                  verbs: ['get', 'update'],
                },
              ],
        ),
      );
      assert.equal(
        manifests.some((manifest) => manifest.kind === 'Certificate'),
        mode === 'cert-manager',
      );
    }
  });

  it("standalone with the injector: the sidecar's Deployment, Service and ServiceMonitor select its own pods and Service, never the injector's", async () => {
    const manifests = await template(chart, [
      '-f',
      join(chart, 'examples', 'admiralty-standalone.yaml'),
      '--set',
      'injector.enabled=true',
    ]);
    const find = (kind: string, name: string) => {
      const found = manifests.find((manifest) => manifest.kind === kind && manifest.metadata.name === name);
      assert.ok(found !== undefined, `${kind}/${name} is rendered`);
      return found as Manifest & { metadata: { labels: Record<string, string> } };
    };
    const podLabels = (deployment: Manifest) =>
      (deployment.spec?.template as { metadata: { labels: Record<string, string> } }).metadata.labels;
    const selects = (selector: Record<string, string>, labels: Record<string, string>) =>
      Object.entries(selector).every(([key, value]) => labels[key] === value);
    const sidecar = find('Deployment', 'rel-kubeconfig-rotator-sidecar');
    const injector = find('Deployment', 'rel-kubeconfig-rotator-sidecar-injector');
    const sidecarService = find('Service', 'rel-kubeconfig-rotator-sidecar');
    const injectorService = find('Service', 'rel-kubeconfig-rotator-sidecar-injector');
    const monitor = find('ServiceMonitor', 'rel-kubeconfig-rotator-sidecar');
    const selectors = {
      'sidecar Deployment': (sidecar.spec?.selector as { matchLabels: Record<string, string> }).matchLabels,
      'sidecar Service': sidecarService.spec?.selector as Record<string, string>,
    };
    for (const [what, selector] of Object.entries(selectors)) {
      assert.ok(selects(selector, podLabels(sidecar)), `the ${what} selects the sidecar's pods`);
      assert.ok(
        !selects(selector, podLabels(injector)),
        `the ${what} (${JSON.stringify(selector)}) does not select the injector's pods (${JSON.stringify(podLabels(injector))})`,
      );
    }
    const monitorSelector = (monitor.spec?.selector as { matchLabels: Record<string, string> }).matchLabels;
    assert.ok(
      selects(monitorSelector, sidecarService.metadata.labels),
      "the ServiceMonitor selects the sidecar's Service",
    );
    assert.ok(
      !selects(monitorSelector, injectorService.metadata.labels),
      `the ServiceMonitor (${JSON.stringify(monitorSelector)}) does not select the injector's Service`,
    );
    const injectorSelector = (injector.spec?.selector as { matchLabels: Record<string, string> }).matchLabels;
    assert.ok(
      !selects(injectorSelector, podLabels(sidecar)),
      "the injector's Deployment does not select the sidecar's pods",
    );
    assert.ok(
      !selects(injectorService.spec?.selector as Record<string, string>, podLabels(sidecar)),
      "the injector's Service does not select the sidecar's pods",
    );
  });

  it("adds the native sidecar to another chart's pods through its named templates, and the apiserver accepts the result", async () => {
    const agent = await exampleAgentChart();
    const namespace = uniqueName('kcr-agent');
    const manifests = await template(agent, ['--namespace', namespace]);
    const deployment = manifests.find((manifest) => manifest.kind === 'Deployment');
    const pod = (
      deployment?.spec?.template as {
        spec: Record<
          string,
          {
            name: string;
            restartPolicy?: string;
            startupProbe?: Record<string, unknown>;
            volumeMounts?: { name: string; readOnly?: boolean }[];
          }[]
        >;
      }
    ).spec;
    const [sidecar] = pod.initContainers ?? [];
    assert.equal(sidecar?.restartPolicy, 'Always');
    assertSecureContainer((sidecar as { securityContext?: Record<string, unknown> }).securityContext);
    assert.deepEqual(sidecar.startupProbe, {
      httpGet: { path: '/readyz', port: 'http-metrics' },
      periodSeconds: 2,
      failureThreshold: 150,
    });
    assert.deepEqual(pod.containers?.[0]?.volumeMounts, [
      { name: 'kubeconfig-rotator-out', mountPath: '/var/run/kubeconfig-rotator/out', readOnly: true },
    ]);
    assert.deepEqual(
      (pod.volumes as unknown as { name: string }[]).map((volume) => volume.name),
      [
        'kubeconfig-rotator-config',
        'kubeconfig-rotator-state',
        'kubeconfig-rotator-out',
        'kubeconfig-rotator-bootstrap-east',
      ],
    );
    const source = testCluster('source');
    const rendered = join(scratch.path, 'agent.yaml');
    writeFileSync(rendered, manifests.map((manifest) => stringify(manifest)).join('---\n'));
    assert.equal(
      (await run(kubectl, ['--kubeconfig', source.state.kubeconfig, 'create', 'namespace', namespace])).code,
      0,
    );
    // Server-side apply, as Helm 4, Argo CD and Flux apply: it refuses duplicate list keys (an env name twice).
    const accepted = await run(kubectl, [
      '--kubeconfig',
      source.state.kubeconfig,
      'apply',
      '--server-side',
      '--dry-run=server',
      '-n',
      namespace,
      '-f',
      rendered,
    ]);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.match(accepted.stdout, /deployment\.apps\/example-agent serverside-applied \(server dry run\)/);
  });
});

describe('chart kubeconfig-rotator-approver values', () => {
  const chart = chartDir('kubeconfig-rotator-approver');
  const example = ['-f', join(chart, 'examples', 'admiralty.yaml')];

  it('renders a policy file the approver itself accepts, one policy per source with its bootstrap group', async () => {
    const manifests = await template(chart, example);
    const configMap = manifests.find((manifest) => manifest.kind === 'ConfigMap');
    const parsed = parsePolicyFile(String((configMap?.data as Record<string, string>)['policy.yaml']));
    assert.ok(parsed.ok, parsed.ok ? '' : JSON.stringify(parsed.problems));
    assert.deepEqual(
      parsed.value.policies.map((policy) => [
        policy.name,
        policy.bootstrap.groups,
        policy.identity.commonNames,
        policy.subjectAccessReview,
      ]),
      [
        ['west', ['system:bootstrappers:kubeconfig-rotator:west'], ['admiralty-source-west'], false],
        ['north', ['system:bootstrappers:kubeconfig-rotator:north'], ['admiralty-source-north'], true],
      ],
    );
  });

  it('gives the approver exactly the RBAC the program declares it needs', async () => {
    const manifests = await template(chart, example);
    const expected = approverRbac({
      name: 'x',
      signerName: 'kubernetes.io/kube-apiserver-client',
      namespace: 'kcr',
      // The chart's --lease-name: the release's full name.
      leaseName: 'rel-kubeconfig-rotator-approver',
      serviceAccount: 'x',
    });
    const clusterRole = manifests.find(
      (manifest) => manifest.kind === 'ClusterRole' && manifest.metadata.name === 'rel-kubeconfig-rotator-approver',
    );
    assert.deepEqual(clusterRole?.rules, expected.clusterRole.rules);
    const roles = manifests
      .filter((manifest) => manifest.kind === 'Role')
      .map((role) => [role.metadata.namespace, role.rules]);
    assert.deepEqual(roles, [
      [expected.events.role.metadata.namespace, expected.events.role.rules],
      [expected.lease.role.metadata.namespace, expected.lease.role.rules],
    ]);
  });

  it("grants each source's bootstrap group CSR requests only, and its identity renewal and the chosen roles", async () => {
    const manifests = await template(chart, example);
    const bindings = manifests
      .filter(
        (manifest) =>
          (manifest.kind === 'ClusterRoleBinding' || manifest.kind === 'RoleBinding') &&
          (manifest.metadata as { labels?: Record<string, string> }).labels?.['kubeconfig-rotator.io/source'] ===
            'west',
      )
      .map((binding) => [
        binding.kind,
        binding.metadata.namespace ?? '',
        (binding.roleRef as { name: string }).name,
        (binding.subjects as { kind: string; name: string }[]).map((subject) => `${subject.kind}:${subject.name}`),
      ]);
    assert.deepEqual(bindings, [
      [
        'ClusterRoleBinding',
        '',
        'rel-kubeconfig-rotator-approver-csr-requester',
        ['Group:system:bootstrappers:kubeconfig-rotator:west'],
      ],
      ['ClusterRoleBinding', '', 'rel-kubeconfig-rotator-approver-csr-requester', ['User:admiralty-source-west']],
      ['ClusterRoleBinding', '', 'view', ['User:admiralty-source-west']],
      ['RoleBinding', 'team-a', 'edit', ['User:admiralty-source-west']],
    ]);
    const requester = manifests.find(
      (manifest) => manifest.metadata.name === 'rel-kubeconfig-rotator-approver-csr-requester',
    );
    assert.deepEqual(requester?.rules, [
      {
        apiGroups: ['certificates.k8s.io'],
        resources: ['certificatesigningrequests'],
        verbs: ['create', 'get', 'list', 'watch'],
      },
    ]);
  });

  it("renders no RBAC at all with rbac.create=false, neither the approver's nor any source's", async () => {
    const manifests = await template(chart, [...example, '--set', 'rbac.create=false']);
    assert.ok(
      manifests.some((manifest) => manifest.kind === 'Deployment'),
      'the approver itself is still rendered',
    );
    const rbacKinds = new Set(['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);
    assert.deepEqual(
      manifests
        .filter((manifest) => rbacKinds.has(manifest.kind))
        .map((manifest) => `${manifest.kind}/${manifest.metadata.name}`),
      [],
    );
  });

  it('refuses bad values with clear messages: schema errors, and system: identities at render time', async () => {
    const bad = await run(helm, [
      'template',
      'rel',
      chart,
      '--set',
      'replicaCount=0',
      '--set',
      'sources[0].name=West',
      '--set',
      'sources[0].identity.commonNames[0]=a',
      '--set',
      'workers=1000',
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /at '\/replicaCount': minimum: got 0, want 1/);
    assert.match(bad.stderr, /at '\/sources\/0\/name': 'West' does not match pattern/);
    assert.match(bad.stderr, /at '\/workers': maximum: got 1,000, want 100/);
    const system = await run(helm, [
      'template',
      'rel',
      chart,
      '--set',
      'sources[0].name=west',
      '--set',
      'sources[0].identity.commonNames[0]=a',
      '--set',
      'sources[0].identity.organizations[0]=system:masters',
    ]);
    assert.notEqual(system.code, 0);
    assert.match(
      system.stderr,
      /sources\[0\]\.identity\.organizations: "system:masters" starts with "system:": system identities are never approved/,
    );
  });
});

const configOf = (manifests: Manifest[], key: string): unknown[] =>
  manifests
    .filter((manifest) => manifest.kind === 'ConfigMap' && (manifest.data as Record<string, string>)[key] !== undefined)
    .map((manifest) => parseAllDocuments((manifest.data as Record<string, string>)[key] ?? '')[0]?.toJS() as unknown);

describe('every documented install: each example, the README values, the fixture chart', () => {
  it("renders configurations the programs themselves accept: the sidecar's, the injector's, the injected sidecars' and the approver's", async () => {
    for (const set of VALUE_SETS) {
      const manifests = await template(await set.chart(), set.args());
      const sidecars = configOf(manifests, 'config.yaml');
      const injectors = configOf(manifests, 'injector.yaml');
      const policies = configOf(manifests, 'policy.yaml');
      assert.ok(sidecars.length + policies.length > 0, `${set.what}: a configuration is rendered`);
      for (const config of sidecars) {
        const parsed = sidecarConfigSchema.safeParse(config);
        assert.ok(parsed.success, `${set.what}: config.yaml: ${JSON.stringify(parsed.error?.issues)}`);
      }
      for (const config of injectors) {
        const parsed = injectorConfigSchema.safeParse(config);
        assert.ok(parsed.success, `${set.what}: injector.yaml: ${JSON.stringify(parsed.error?.issues)}`);
        // What a pod asking for every target gets, as the injected sidecar reads it.
        const injected = sidecarConfigSchema.safeParse(
          parseAllDocuments(sidecarConfig(parsed.data.targets, parsed.data))[0]?.toJS(),
        );
        assert.ok(injected.success, `${set.what}: injected config: ${JSON.stringify(injected.error?.issues)}`);
      }
      for (const policy of policies) {
        const parsed = parsePolicyFile(stringify(policy));
        assert.ok(parsed.ok, `${set.what}: policy.yaml: ${parsed.ok ? '' : JSON.stringify(parsed.problems)}`);
      }
    }
  });

  it('the apiserver takes every rendered chart by server-side apply (dry run), as Helm 4, Argo CD and Flux apply', async () => {
    const clusters = { source: testCluster('source'), target: testCluster('target') };
    await ensureMonitoringCrds([clusters.source, clusters.target]);
    for (const set of VALUE_SETS) {
      const cluster = set.what.includes('approver') ? clusters.target : clusters.source;
      const namespace = uniqueName('kcr-ssa');
      const manifests = await template(await set.chart(), [...set.args(), '--namespace', namespace]);
      const namespaces = manifests.flatMap((manifest) => manifest.metadata.namespace ?? []);
      await ensureNamespaces(cluster, [namespace, ...namespaces]);
      createdNamespaces.push([cluster, namespace]);
      const rendered = join(scratch.path, `${namespace}.yaml`);
      writeFileSync(rendered, manifests.map((manifest) => stringify(manifest)).join('---\n'));
      const applied = await run(kubectl, [
        '--kubeconfig',
        cluster.state.kubeconfig,
        'apply',
        '--server-side',
        '--dry-run=server',
        '-f',
        rendered,
      ]);
      assert.equal(applied.code, 0, `${set.what}: ${applied.stderr}`);
    }
  });
});

describe("the sidecar's probe and metrics port", () => {
  it('is 9571 in every mode (not 8080, which agents often take): standalone, native sidecar and injected', async () => {
    const chart = chartDir('kubeconfig-rotator-sidecar');
    for (const example of ['admiralty-standalone.yaml', 'sidecar-mode.yaml', 'injector.yaml']) {
      const manifests = await template(chart, ['-f', join(chart, 'examples', example)]);
      for (const config of configOf(manifests, 'config.yaml'))
        assert.equal(sidecarConfigSchema.parse(config).listen.port, 9571, `${example}: config.yaml`);
      for (const config of configOf(manifests, 'injector.yaml'))
        assert.equal(injectorConfigSchema.parse(config).sidecar.port, 9571, `${example}: injector.yaml`);
    }
    const agent = await template(await exampleAgentChart());
    const pod = (
      agent.find((manifest) => manifest.kind === 'Deployment')?.spec?.template as {
        spec: { initContainers: { ports: { containerPort: number }[] }[] };
      }
    ).spec;
    assert.deepEqual(
      pod.initContainers[0]?.ports.map((port) => port.containerPort),
      [9571],
    );
  });
});

describe('the approver chart refuses at render time what would not run', () => {
  const chart = chartDir('kubeconfig-rotator-approver');
  const example = ['-f', join(chart, 'examples', 'admiralty.yaml')];

  it('renewal: true (the default) on a cluster before 1.32, where the approver refuses to start', async () => {
    const old = await run(helm, ['template', 'rel', chart, ...example, '--kube-version', '1.31.4']);
    assert.notEqual(old.code, 0);
    assert.match(
      old.stderr,
      /sources\[0\] \(west\)\.renewal: true \(the default\) needs Kubernetes 1\.32 or later.*this cluster is v1\.31\.4.*renewal: trustUsername/,
    );
    const weaker = await run(helm, [
      'template',
      'rel',
      chart,
      ...example,
      '--kube-version',
      '1.29.0',
      '--set',
      'sources[0].renewal=trustUsername',
      '--set',
      'sources[1].renewal=false',
    ]);
    assert.equal(weaker.code, 0, weaker.stderr);
    const current = await run(helm, ['template', 'rel', chart, ...example, '--kube-version', '1.32.0']);
    assert.equal(current.code, 0, current.stderr);
  });

  it('prometheusRule without serviceMonitor (its "approver down" alert would fire forever), unless a job is named', async () => {
    const alone = await run(helm, [
      'template',
      'rel',
      chart,
      '--set',
      'prometheusRule.enabled=true',
      '--set',
      'serviceMonitor.enabled=false',
    ]);
    assert.notEqual(alone.code, 0);
    assert.match(alone.stderr, /prometheusRule\.enabled needs serviceMonitor\.enabled/);
    const withJob = await run(helm, [
      'template',
      'rel',
      chart,
      '--set',
      'prometheusRule.enabled=true',
      '--set',
      'prometheusRule.job=approver',
    ]);
    assert.equal(withJob.code, 0, withJob.stderr);
  });
});

describe('the injector chart', () => {
  const chart = chartDir('kubeconfig-rotator-sidecar');
  const injector = ['-f', join(chart, 'examples', 'injector.yaml')];

  it("grants Events to the injected pods' ServiceAccounts, in their namespaces, and their reference Secrets", async () => {
    const manifests = await template(chart, [
      ...injector,
      '--set-json',
      'injector.agentServiceAccounts=[{"namespace":"admiralty","name":"admiralty","referenceSecrets":["east-kubeconfig"]},{"namespace":"agents","name":"a"},{"namespace":"agents","name":"b"}]',
    ]);
    const name = 'rel-kubeconfig-rotator-sidecar-injected-events';
    const role = manifests.find((manifest) => manifest.kind === 'ClusterRole' && manifest.metadata.name === name);
    assert.deepEqual(role?.rules, [{ apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] }]);
    assert.deepEqual(
      manifests
        .filter((manifest) => manifest.kind === 'RoleBinding' && manifest.metadata.name === name)
        .map((binding) => [binding.metadata.namespace, binding.subjects]),
      [
        ['admiralty', [{ kind: 'ServiceAccount', name: 'admiralty', namespace: 'admiralty' }]],
        [
          'agents',
          [
            { kind: 'ServiceAccount', name: 'a', namespace: 'agents' },
            { kind: 'ServiceAccount', name: 'b', namespace: 'agents' },
          ],
        ],
      ],
    );
    const reference = 'rel-kubeconfig-rotator-sidecar-reference-admiralty';
    assert.deepEqual(
      manifests
        .filter((manifest) => manifest.metadata.name === reference)
        .map((object) => [object.kind, object.metadata.namespace, object.rules ?? object.subjects]),
      [
        [
          'Role',
          'admiralty',
          [
            {
              apiGroups: [''],
              resources: ['secrets'],
              resourceNames: ['east-kubeconfig'],
              verbs: ['get', 'list', 'watch', 'update'],
            },
            { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
          ],
        ],
        ['RoleBinding', 'admiralty', [{ kind: 'ServiceAccount', name: 'admiralty', namespace: 'admiralty' }]],
      ],
    );
  });

  it("grants the injected pods' ServiceAccounts tokens of themselves only when a target bootstraps (or is) federated with the pod's own", async () => {
    const accounts = ['--set-json', 'injector.agentServiceAccounts=[{"namespace":"admiralty","name":"admiralty"}]'];
    const ownToken = (manifests: Awaited<ReturnType<typeof template>>) =>
      manifests
        .filter((manifest) => manifest.metadata.name === 'rel-kubeconfig-rotator-sidecar-own-token-admiralty')
        .map((object) => [object.kind, object.metadata.namespace, object.rules ?? object.subjects]);
    assert.deepEqual(ownToken(await template(chart, [...injector, ...accounts])), []);
    const federated = await template(chart, [
      ...injector,
      ...accounts,
      '--set-json',
      'targets[0].bootstrap={"with":"federated","audiences":["kubeconfig-rotator:east"]}',
    ]);
    assert.deepEqual(ownToken(federated), [
      [
        'Role',
        'admiralty',
        [{ apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['admiralty'], verbs: ['create'] }],
      ],
      ['RoleBinding', 'admiralty', [{ kind: 'ServiceAccount', name: 'admiralty', namespace: 'admiralty' }]],
    ]);
  });

  it("NOTES tell an injector install how pods ask for the sidecar and where its bootstrap Secrets go, not the native sidecar's includes", async () => {
    const source = testCluster('source').state.kubeconfig;
    const result = await run(helm, [
      'install',
      'rel',
      chart,
      '--dry-run=client',
      '--kubeconfig',
      source,
      '-n',
      'kcr',
      ...injector,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const notes = result.stdout.slice(result.stdout.indexOf('NOTES:'));
    assert.match(notes, /kubeconfig-rotator\.io\/inject: east,north \(or the profile all\)/);
    assert.match(
      notes,
      /bootstrap Secret kubeconfig-rotator-bootstrap-east|bootstrap Secret <the agent's namespace>\/kubeconfig-rotator-bootstrap-east/,
    );
    assert.match(notes, /must be in the POD's namespace/);
    assert.match(notes, /Events: granted to admiralty\/admiralty\./);
    assert.doesNotMatch(notes, /initContainers:|kubeconfig-rotator-sidecar\.initContainer/);
    assert.match(notes, /publishes \/var\/run\/kubeconfig-rotator\/out\/east\/kubeconfig/);
  });
});
