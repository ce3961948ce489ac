import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { injectorConfigSchema, type InjectorConfig } from '../../../../src/core/config/injector.ts';
import { sidecarConfigSchema } from '../../../../src/core/config/sidecar.ts';
import { ANNOTATIONS, planInjection, SIDECAR_NAME, type PodLike } from '../../../../src/core/injector/plan.ts';
import { applyPatch } from '../../../support/json-patch.ts';

/** An injector config's input with these targets (and other fields), its TLS and sidecar image fixed. */
const configInput = (fields: Record<string, unknown>) => ({
  tls: { mode: 'files', certFile: '/tls/tls.crt', keyFile: '/tls/tls.key' },
  sidecar: { image: 'kcr:1' },
  ...fields,
});

const config: InjectorConfig = injectorConfigSchema.parse(
  configInput({
    targets: [
      {
        name: 'east',
        bootstrapSecret: { name: 'kubeconfig-rotator-bootstrap-east' },
        identity: { commonName: 'agent-east' },
      },
      {
        name: 'north',
        bootstrapSecret: { name: 'kubeconfig-rotator-bootstrap-north', key: 'config' },
        identity: { commonName: 'agent-north', organizations: ['agents'] },
        embed: true,
      },
    ],
    profiles: { all: ['east', 'north'] },
  }),
);

function pod(
  annotations: Record<string, string> | undefined,
  spec: PodLike['spec'] = { containers: [{ name: 'agent', securityContext: { runAsUser: 65532 } }] },
): PodLike {
  return { metadata: annotations === undefined ? {} : { annotations }, spec };
}

interface Injected {
  metadata: { annotations: Record<string, string> };
  spec: {
    initContainers: Record<string, unknown>[];
    containers: {
      name: string;
      env?: { name: string; value?: string }[];
      volumeMounts?: { name: string; mountPath: string }[];
    }[];
    volumes: { name: string }[];
  };
}

function inject(input: PodLike): Injected {
  const plan = planInjection(input, config);
  assert.equal(plan.kind, 'inject', JSON.stringify(plan));
  return applyPatch(input, plan.patch) as Injected;
}

describe('injection plan', () => {
  it('leaves a pod without the annotation alone', () => {
    assert.deepEqual(planInjection(pod(undefined), config), {
      kind: 'skip',
      reason: 'no kubeconfig-rotator.io/inject annotation',
    });
  });

  it('adds the native sidecar first, its volumes, and the kubeconfig mount and env to the agent', () => {
    const result = inject(pod({ [ANNOTATIONS.inject]: 'east' }));
    const [sidecar] = result.spec.initContainers;
    assert.equal(sidecar?.name, SIDECAR_NAME);
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.deepEqual(sidecar.startupProbe, {
      httpGet: { path: '/readyz', port: 9571 },
      periodSeconds: 2,
      failureThreshold: 150,
    });
    assert.deepEqual(
      (sidecar.securityContext as Record<string, unknown>).runAsUser,
      65532,
      'runs as the agent, to read its key',
    );
    assert.deepEqual(
      sidecar.securityContext,
      {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
        runAsUser: 65532,
      },
      'confined by default, whatever the agent pod sets',
    );
    assert.deepEqual(
      result.spec.volumes.map((volume) => volume.name),
      [
        'kubeconfig-rotator-config',
        'kubeconfig-rotator-state',
        'kubeconfig-rotator-out',
        'kubeconfig-rotator-bootstrap-east',
      ],
    );
    assert.deepEqual(result.spec.containers[0]?.env, [
      { name: 'KUBECONFIG', value: '/var/run/kubeconfig-rotator/out/east/kubeconfig' },
    ]);
    assert.deepEqual(result.spec.containers[0].volumeMounts, [
      { name: 'kubeconfig-rotator-out', mountPath: '/var/run/kubeconfig-rotator/out', readOnly: true },
    ]);
    assert.equal(result.metadata.annotations[ANNOTATIONS.injected], 'east');
  });

  it('carries a sidecar config the sidecar itself accepts, in an annotation mounted by the downward API', () => {
    const result = inject(pod({ [ANNOTATIONS.inject]: 'all' }));
    const parsed = sidecarConfigSchema.safeParse(parse(result.metadata.annotations[ANNOTATIONS.config] ?? ''));
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
    assert.deepEqual(
      parsed.data.targets.map((target) => [target.name, target.bootstrapKubeconfig, target.sinks.directory]),
      [
        [
          'east',
          '/var/run/kubeconfig-rotator/bootstrap/east/kubeconfig',
          { path: '/var/run/kubeconfig-rotator/out/east', embed: false },
        ],
        [
          'north',
          '/var/run/kubeconfig-rotator/bootstrap/north/config',
          { path: '/var/run/kubeconfig-rotator/out/north', embed: true },
        ],
      ],
    );
    assert.equal(
      result.spec.containers[0]?.env?.[0]?.value,
      '/var/run/kubeconfig-rotator/out/east/kubeconfig:/var/run/kubeconfig-rotator/out/north/kubeconfig',
    );
  });

  it("federated bootstrap: the sidecar's config carries it, and the sidecar gets the pod's ServiceAccount and name from the downward API", () => {
    const federated: InjectorConfig = injectorConfigSchema.parse(
      configInput({
        targets: [
          {
            name: 'east',
            bootstrapSecret: { name: 'kubeconfig-rotator-bootstrap-east' },
            identity: { commonName: 'agent-east' },
            bootstrap: { with: 'federated', audiences: ['kubeconfig-rotator:east'] },
          },
        ],
      }),
    );
    const input = pod({ [ANNOTATIONS.inject]: 'east' });
    const plan = planInjection(input, federated);
    if (plan.kind !== 'inject') assert.fail(JSON.stringify(plan));
    const result = applyPatch(input, plan.patch) as Injected;
    const parsed = sidecarConfigSchema.safeParse(parse(result.metadata.annotations[ANNOTATIONS.config] ?? ''));
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
    assert.deepEqual(parsed.data.targets[0]?.bootstrap, { with: 'federated', audiences: ['kubeconfig-rotator:east'] });
    const sidecar = result.spec.initContainers[0] as { env: { name: string; valueFrom?: unknown }[] };
    assert.deepEqual(Object.fromEntries(sidecar.env.map((variable) => [variable.name, variable.valueFrom])), {
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      POD_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      POD_UID: { fieldRef: { fieldPath: 'metadata.uid' } },
      POD_SERVICE_ACCOUNT: { fieldRef: { fieldPath: 'spec.serviceAccountName' } },
    });
    // A bootstrap the sidecar would refuse at start is refused in the injector's config, by field path.
    const bad = injectorConfigSchema.safeParse(
      configInput({
        targets: [
          {
            name: 'east',
            bootstrapSecret: { name: 'b' },
            identity: { commonName: 'agent-east' },
            bootstrap: { with: 'federated' },
          },
        ],
      }),
    );
    assert.deepEqual(
      bad.error?.issues.map((issue) => [issue.path.join('.'), issue.message]),
      [
        [
          'targets.0.bootstrap.audiences',
          "is required with federated bootstrap: the audience the target's jwt authenticator expects",
        ],
      ],
    );
  });

  it('reference-secret: the sidecar also publishes a Secret naming the agent-side files by path', () => {
    const result = inject(
      pod({
        [ANNOTATIONS.inject]: 'east',
        [ANNOTATIONS.mountPath]: '/kcr',
        [ANNOTATIONS.referenceSecret]: 'admiralty/east-kubeconfig',
      }),
    );
    const parsed = sidecarConfigSchema.safeParse(parse(result.metadata.annotations[ANNOTATIONS.config] ?? ''));
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
    assert.deepEqual(parsed.data.targets[0]?.sinks.secret, {
      namespace: 'admiralty',
      name: 'east-kubeconfig',
      format: 'kubeconfig',
      reference: { directory: '/kcr/east' },
      labels: {},
      annotations: {},
    });
    for (const [annotations, message] of [
      [{ [ANNOTATIONS.inject]: 'east', [ANNOTATIONS.referenceSecret]: 'no-namespace' }, /must be NAMESPACE\/NAME/],
      [
        { [ANNOTATIONS.inject]: 'all', [ANNOTATIONS.referenceSecret]: 'a/b' },
        /needs exactly one target, the pod asks for 2/,
      ],
    ] as const) {
      const plan = planInjection(pod(annotations), config);
      assert.equal(plan.kind, 'reject');
      assert.match(plan.message, message);
    }
  });

  it('honours the mount path, env name and container annotations, and never overwrites an existing variable', () => {
    const result = inject(
      pod(
        {
          [ANNOTATIONS.inject]: 'east',
          [ANNOTATIONS.mountPath]: '/etc/kube',
          [ANNOTATIONS.kubeconfigEnv]: 'TARGET_KUBECONFIG',
          [ANNOTATIONS.containers]: 'b',
        },
        {
          containers: [{ name: 'a' }, { name: 'b', env: [{ name: 'X' }] }],
          initContainers: [{ name: 'setup' }],
          volumes: [{ name: 'data' }],
        },
      ),
    );
    assert.equal(result.spec.containers[0]?.env, undefined, 'container a was not chosen');
    assert.deepEqual(result.spec.containers[1]?.env, [
      { name: 'X' },
      { name: 'TARGET_KUBECONFIG', value: '/etc/kube/east/kubeconfig' },
    ]);
    assert.deepEqual(
      result.spec.initContainers.map((container) => container.name),
      [SIDECAR_NAME, 'setup'],
    );
    const plan = planInjection(
      pod({ [ANNOTATIONS.inject]: 'east' }, { containers: [{ name: 'a', env: [{ name: 'KUBECONFIG' }] }] }),
      config,
    );
    assert.equal(plan.kind, 'inject');
    assert.deepEqual(plan.warnings, ['container "a" already sets KUBECONFIG; it was left as it is']);
  });

  it('is idempotent: an injected pod is left alone', () => {
    const once = inject(pod({ [ANNOTATIONS.inject]: 'east' }));
    assert.deepEqual(planInjection(once, config), { kind: 'skip', reason: 'already injected' });
  });

  it('a dry run changes nothing and says what it would do', () => {
    assert.deepEqual(planInjection(pod({ [ANNOTATIONS.inject]: 'east', [ANNOTATIONS.dryRun]: 'true' }), config), {
      kind: 'dry-run',
      warnings: [
        'dry run: would add the kubeconfig-rotator sidecar for east and mount /var/run/kubeconfig-rotator/out in agent with KUBECONFIG=/var/run/kubeconfig-rotator/out/east/kubeconfig',
      ],
    });
  });

  it('rejects bad annotations and conflicts with one message naming each problem', () => {
    const plan = planInjection(
      pod(
        {
          [ANNOTATIONS.inject]: 'east,nope',
          [ANNOTATIONS.kubeconfigEnv]: '1BAD',
          [ANNOTATIONS.mountPath]: 'relative',
          [ANNOTATIONS.containers]: 'ghost',
          [ANNOTATIONS.dryRun]: 'maybe',
        },
        {
          containers: [{ name: 'agent', ports: [{ containerPort: 9571 }] }],
          volumes: [{ name: 'kubeconfig-rotator-out' }],
        },
      ),
      config,
    );
    assert.deepEqual(plan, {
      kind: 'reject',
      message:
        'kubeconfig-rotator injection refused: kubeconfig-rotator.io/inject: unknown target or profile "nope" (targets: east, north; profiles: all); ' +
        'kubeconfig-rotator.io/kubeconfig-env: "1BAD" is not an environment variable name (or "" for none); ' +
        'kubeconfig-rotator.io/mount-path: "relative" must be an absolute path without ".."; ' +
        'kubeconfig-rotator.io/containers: the pod has no container "ghost"; ' +
        'kubeconfig-rotator.io/dry-run: must be "true" or "false"; ' +
        'the pod already has a volume named "kubeconfig-rotator-out", which the injector adds; ' +
        'container "agent" uses port 9571, which the sidecar listens on (change the injector\'s sidecar.port, the chart\'s config.port)',
    });
    assert.equal(planInjection(pod({ [ANNOTATIONS.inject]: ' , ' }), config).kind, 'reject');
  });

  it('survives random pods: either a clear rejection, or a patch that applies and yields unique names', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const maybe = <T>(value: T): T | undefined => (random() < 0.5 ? value : undefined);
    let injected = 0;
    for (let i = 0; i < 5000; i++) {
      const names = ['agent', 'web', 'side', 'a/b'];
      const containers = Array.from({ length: 1 + Math.floor(random() * 3) }, (_, index) => ({
        name: `${pick(names)}${String(index)}`,
        ...(maybe({
          env: Array.from({ length: Math.floor(random() * 3) }, () => ({ name: pick(['KUBECONFIG', 'A', 'B']) })),
        }) ?? {}),
        ...(maybe({ volumeMounts: [{ name: 'data', mountPath: '/data' }] }) ?? {}),
        ...(random() < 0.2 ? { ports: [{ containerPort: pick([80, 9571, 8080]) }] } : {}),
      }));
      const annotations =
        random() < 0.1
          ? undefined
          : {
              // Mostly valid requests, so most cases reach the patch; the rest must be refused cleanly.
              [ANNOTATIONS.inject]: pick(['east', 'north', 'all', 'east,north', 'east,,north', 'east', 'all', 'x', '']),
              ...(random() < 0.2 ? { [ANNOTATIONS.containers]: pick(['agent0', 'web1', 'nope']) } : {}),
              ...(maybe({ [ANNOTATIONS.kubeconfigEnv]: pick(['KUBECONFIG', '', 'OTHER', 'X-Y']) }) ?? {}),
            };
      const input = pod(annotations, {
        containers,
        ...(maybe({ initContainers: [{ name: pick(['init', 'init', 'init', 'kubeconfig-rotator']) }] }) ?? {}),
        ...(maybe({ volumes: [{ name: pick(['data', 'data', 'data', 'kubeconfig-rotator-state']) }] }) ?? {}),
      });
      const plan = planInjection(input, config);
      if (plan.kind === 'reject') assert.match(plan.message, /^kubeconfig-rotator injection refused: /);
      if (plan.kind !== 'inject') continue;
      injected++;
      const result = applyPatch(input, plan.patch) as Injected;
      const unique = (values: string[]) => new Set(values).size === values.length;
      assert.ok(unique(result.spec.volumes.map((volume) => volume.name)), 'volume names are unique');
      assert.ok(
        unique([...result.spec.initContainers, ...result.spec.containers].map((container) => String(container.name))),
        'container names are unique',
      );
      assert.equal(result.spec.initContainers[0]?.name, SIDECAR_NAME);
      // Server-side apply keys env by name and volumeMounts by mountPath, and refuses duplicates.
      const sidecar = result.spec.initContainers[0] as {
        env: { name: string }[];
        volumeMounts: { mountPath: string }[];
      };
      assert.ok(unique(sidecar.env.map((variable) => variable.name)), "the sidecar's env names are unique");
      assert.ok(unique(sidecar.volumeMounts.map((mount) => mount.mountPath)), "the sidecar's mount paths are unique");
      assert.equal(planInjection(result, config).kind, 'skip', 'a second pass changes nothing');
    }
    assert.ok(injected > 1500, `only ${String(injected)} of 5000 were injected`);
  });
});
