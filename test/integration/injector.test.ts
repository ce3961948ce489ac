// The injector against the real apiserver: the test source cluster calls it over loopback (webhook
// clientConfig.url). Pods created through the API are stored injected, left alone or refused; the webhook's
// own certificate rotates while the apiserver keeps calling it; random Pods are patched into Pods the
// apiserver accepts; with the injector down, failurePolicy decides.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { AdmissionregistrationV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { sidecarConfigSchema } from '../../src/core/config/sidecar.ts';
import { kubeStatus } from '../../src/io/kube/errors.ts';
import { ANNOTATIONS, SIDECAR_NAME } from '../../src/core/injector/plan.ts';
import { ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { CliProcess } from '../../scripts/testbed/cli-process.ts';
import { freePorts } from '../../scripts/testbed/processes.ts';
import { testCluster } from '../support/clusters.ts';
import { eventually, statusCode, uniqueName } from '../support/kube.ts';
import { scratchDir } from '../support/sidecar.ts';

const execute = promisify(execFile);
const source = testCluster('source');
const admin = source.admin();
const core = admin.makeApiClient(CoreV1Api);
const admission = admin.makeApiClient(AdmissionregistrationV1Api);
const scratch = scratchDir('injector');
const run = uniqueName('inj');
const namespace = run;
const webhookName = `kcr-injector-${run}`;
let port = 0;
let configPath = '';
let injector: CliProcess | undefined;

function startInjector(): CliProcess {
  injector = new CliProcess(['injector', '--config', configPath, '--kubeconfig', source.state.kubeconfig], {
    label: 'injector',
    logFile: join(scratch.path, `${uniqueName('injector')}.log`),
  });
  return injector;
}

async function setFailurePolicy(policy: 'Fail' | 'Ignore'): Promise<void> {
  const configuration = await admission.readMutatingWebhookConfiguration({ name: webhookName });
  for (const webhook of configuration.webhooks ?? []) webhook.failurePolicy = policy;
  await admission.replaceMutatingWebhookConfiguration({ name: webhookName, body: configuration });
}

/** client-node returns class instances; compare their data. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value)) as unknown;

const agentPod = (annotations?: Record<string, string>, spec?: Partial<V1Pod['spec']>): V1Pod => ({
  metadata: { generateName: 'agent-', ...(annotations === undefined ? {} : { annotations }) },
  spec: { containers: [{ name: 'agent', image: 'example/agent:1' }], ...spec },
});

before(async () => {
  [port] = (await freePorts(1)) as [number];
  await core.createNamespace({
    body: { metadata: { name: namespace, labels: { 'kubeconfig-rotator.test/run': run } } },
  });
  configPath = join(scratch.path, 'injector.yaml');
  writeFileSync(
    configPath,
    stringify({
      listen: { host: '127.0.0.1', port },
      probes: { host: '127.0.0.1', port: 0 },
      tls: {
        mode: 'self-managed',
        secret: { namespace, name: 'kubeconfig-rotator-injector-ca' },
        webhookConfiguration: webhookName,
        ipAddresses: ['127.0.0.1'],
        // Short, so the rotation test sees several renewals.
        servingLifetimeSeconds: 15,
      },
      sidecar: { image: 'ghcr.io/kubeconfig-rotator/kubeconfig-rotator:0.1.0' },
      targets: [
        {
          name: 'east',
          bootstrapSecret: { name: 'kubeconfig-rotator-bootstrap-east' },
          identity: { commonName: 'agent-east' },
        },
        {
          name: 'north',
          bootstrapSecret: { name: 'kubeconfig-rotator-bootstrap-north' },
          identity: { commonName: 'agent-north' },
        },
      ],
      profiles: { all: ['east', 'north'] },
    }),
  );
  // Only this test's namespace is sent to this webhook; its caBundle is filled in by the injector.
  await admission.createMutatingWebhookConfiguration({
    body: {
      metadata: { name: webhookName },
      webhooks: [
        {
          name: 'inject.kubeconfig-rotator.io',
          clientConfig: { url: `https://127.0.0.1:${String(port)}/mutate` },
          rules: [
            { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' },
          ],
          namespaceSelector: { matchLabels: { 'kubeconfig-rotator.test/run': run } },
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 5,
        },
      ],
    },
  });
  await startInjector().waitForLog((line) => line.msg === 'injector started');
});

after(async () => {
  await injector?.stop();
  await admission.deleteMutatingWebhookConfiguration({ name: webhookName });
  await core.deleteNamespace({ name: namespace });
  scratch.dispose();
});

/** Creates a pod once the webhook answers (its caBundle may take a moment to be published). */
const create = (pod: V1Pod, dryRun?: 'All') =>
  eventually(() => core.createNamespacedPod({ namespace, body: pod, ...(dryRun === undefined ? {} : { dryRun }) }), {
    timeoutMs: 15_000,
    intervalMs: 200,
  });

describe('the injector, called by the apiserver', () => {
  it('stores an annotated Pod with the native sidecar, its volumes, and the kubeconfig for the agent', async () => {
    const stored = await create(
      agentPod({ [ANNOTATIONS.inject]: 'all' }, { securityContext: { runAsUser: 65532, runAsNonRoot: true } }),
    );
    const [sidecar, ...others] = stored.spec?.initContainers ?? [];
    assert.equal(sidecar?.name, SIDECAR_NAME);
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.equal(sidecar.startupProbe?.httpGet?.path, '/readyz');
    assert.equal(sidecar.securityContext?.runAsUser, 65532);
    assert.equal(others.length, 0);
    assert.deepEqual(plain(stored.spec?.containers[0]?.env), [
      {
        name: 'KUBECONFIG',
        value: '/var/run/kubeconfig-rotator/out/east/kubeconfig:/var/run/kubeconfig-rotator/out/north/kubeconfig',
      },
    ]);
    assert.deepEqual(
      plain(stored.spec?.containers[0]?.volumeMounts?.find((mount) => mount.name === 'kubeconfig-rotator-out')),
      { name: 'kubeconfig-rotator-out', mountPath: '/var/run/kubeconfig-rotator/out', readOnly: true },
    );
    const config = sidecarConfigSchema.safeParse(parse(stored.metadata?.annotations?.[ANNOTATIONS.config] ?? ''));
    assert.ok(config.success, 'the annotation holds a valid sidecar config');
    assert.equal(stored.metadata?.annotations?.[ANNOTATIONS.injected], 'east,north');
  });

  it('leaves a Pod without the annotation untouched', async () => {
    const stored = await create(agentPod());
    assert.equal(stored.spec?.initContainers, undefined);
    assert.equal(stored.spec?.containers[0]?.env, undefined);
    assert.equal(stored.metadata?.annotations, undefined);
  });

  it('refuses a Pod with a bad annotation, with a message that says what is wrong', async () => {
    await create(agentPod()); // the webhook is up
    await assert.rejects(
      core.createNamespacedPod({ namespace, body: agentPod({ [ANNOTATIONS.inject]: 'nope' }) }),
      (error) => {
        assert.equal(statusCode(error), 400);
        assert.match(
          kubeStatus(error)?.message ?? '',
          /admission webhook "inject\.kubeconfig-rotator\.io" denied the request: kubeconfig-rotator injection refused: kubeconfig-rotator\.io\/inject: unknown target or profile "nope" \(targets: east, north; profiles: all\)/,
        );
        return true;
      },
    );
  });

  it('a dry-run annotation leaves the Pod alone and warns what it would do', async () => {
    const file = join(scratch.path, 'dry-run.yaml');
    writeFileSync(
      file,
      stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: uniqueName('dry'),
          annotations: { [ANNOTATIONS.inject]: 'east', [ANNOTATIONS.dryRun]: 'true' },
        },
        spec: agentPod().spec,
      }),
    );
    const kubectl = join(await ensureControlPlane(), 'kubectl');
    const { stderr } = await execute(kubectl, [
      '--kubeconfig',
      source.state.kubeconfig,
      'create',
      '-n',
      namespace,
      '-f',
      file,
      '-o',
      'name',
    ]);
    assert.match(
      stderr,
      /Warning: dry run: would add the kubeconfig-rotator sidecar for east and mount \/var\/run\/kubeconfig-rotator\/out in agent/,
    );
  });

  it('an injected Pod can be applied and re-applied server-side (Helm 4, Argo CD, Flux): no duplicate list keys in the live object', async () => {
    const file = join(scratch.path, 'server-side.yaml');
    const name = uniqueName('ssa');
    const pod = (labels: Record<string, string>) =>
      stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels, annotations: { [ANNOTATIONS.inject]: 'all' } },
        spec: agentPod().spec,
      });
    const kubectl = join(await ensureControlPlane(), 'kubectl');
    const apply = (...flags: string[]) =>
      execute(kubectl, [
        '--kubeconfig',
        source.state.kubeconfig,
        'apply',
        '--server-side',
        ...flags,
        '-n',
        namespace,
        '-f',
        file,
        '-o',
        'yaml',
      ]);
    writeFileSync(file, pod({ revision: '1' }));
    const created = parse((await eventually(() => apply(), { timeoutMs: 15_000, intervalMs: 200 })).stdout) as V1Pod;
    assert.equal(created.spec?.initContainers?.[0]?.name, SIDECAR_NAME, 'the webhook injected the sidecar');
    // The apiserver (1.36) stores a webhook's duplicate keys and merges around them, but a client that applies
    // the object it reads back (or a tool that diffs by key) is refused: the stored sidecar has none.
    const names = (created.spec.initContainers[0].env ?? []).map((variable) => variable.name);
    assert.deepEqual(names, [...new Set(names)], "the stored sidecar's env names are unique");
    // The second apply merges into the live, injected object: server-side apply reads its lists by key.
    writeFileSync(file, pod({ revision: '2' }));
    const updated = parse((await apply('--dry-run=server')).stdout) as V1Pod;
    assert.equal(updated.metadata?.labels?.revision, '2');
  });

  it('random Pods (init containers, volumes, env, several containers) are patched into Pods the apiserver accepts', async () => {
    let seed = 11;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const count = (max: number) => Math.floor(random() * (max + 1));
    let accepted = 0;
    for (let i = 0; i < 60; i++) {
      const containers = Array.from({ length: 1 + count(2) }, (_, index) => ({
        name: `c${String(index)}`,
        image: 'example/app:1',
        ...(random() < 0.5
          ? {
              env: Array.from({ length: count(3) }, (__, n) => ({
                name: n === 0 && random() < 0.3 ? 'KUBECONFIG' : `VAR_${String(n)}`,
                value: 'x',
              })),
            }
          : {}),
        ...(random() < 0.5 ? { volumeMounts: [{ name: 'data', mountPath: '/data' }] } : {}),
      }));
      const initContainers =
        random() < 0.5
          ? Array.from({ length: 1 + count(1) }, (_, index) => ({
              name: `init${String(index)}`,
              image: 'example/init:1',
            }))
          : undefined;
      const pod = agentPod(
        {
          [ANNOTATIONS.inject]: random() < 0.5 ? 'east' : 'all',
          ...(random() < 0.3 ? { [ANNOTATIONS.containers]: 'c0' } : {}),
          ...(random() < 0.2 ? { other: 'annotation' } : {}),
        },
        {
          containers,
          ...(initContainers === undefined ? {} : { initContainers }),
          volumes: [{ name: 'data', emptyDir: {} }],
        },
      );
      const stored = await create(pod, 'All');
      assert.equal(stored.spec?.initContainers?.[0]?.name, SIDECAR_NAME);
      assert.equal(stored.spec.initContainers.length - 1, initContainers?.length ?? 0);
      accepted++;
    }
    assert.equal(accepted, 60);
  });

  it('rotates its serving certificate while the apiserver keeps calling it, with no failed call', async () => {
    const live = injector ?? assert.fail('no injector');
    const issuedBefore = live.count((line) => line.msg === 'serving certificate issued');
    const renewals = () => live.count((line) => line.msg === 'serving certificate issued') - issuedBefore;
    let calls = 0;
    let failure: unknown;
    // Serving certificates live 15 s and are renewed at 10 s: calls go on until two renewals have happened
    // under them (about 20 s), and stop at the first call that fails.
    await eventually(
      async () => {
        try {
          const stored = await core.createNamespacedPod({
            namespace,
            body: agentPod({ [ANNOTATIONS.inject]: 'east' }),
            dryRun: 'All',
          });
          assert.equal(stored.spec?.initContainers?.[0]?.name, SIDECAR_NAME);
        } catch (error) {
          failure = error;
          return true;
        }
        calls++;
        return renewals() >= 2 && calls > 50;
      },
      { timeoutMs: 60_000, intervalMs: 100, description: 'two serving-certificate renewals under calls' },
    );
    if (failure !== undefined) throw new Error(`call ${String(calls + 1)} failed`, { cause: failure });
    assert.ok(renewals() >= 2, `${String(renewals())} renewals`);
    assert.ok(calls > 50, `${String(calls)} calls`);
  });

  it('when it is down, failurePolicy Ignore lets Pods through and Fail stops them', async () => {
    await injector?.stop();
    await setFailurePolicy('Ignore');
    const admitted = await create(agentPod({ [ANNOTATIONS.inject]: 'east' }));
    assert.equal(admitted.spec?.initContainers, undefined, 'admitted without the sidecar');
    await setFailurePolicy('Fail');
    // Admitted until the apiserver has the new policy; then refused.
    const refusal: unknown = await eventually(
      () =>
        core.createNamespacedPod({ namespace, body: agentPod({ [ANNOTATIONS.inject]: 'east' }), dryRun: 'All' }).then(
          () => false,
          (error: unknown) => error,
        ),
      { timeoutMs: 10_000, description: 'a refusal under failurePolicy Fail' },
    );
    assert.match(kubeStatus(refusal)?.message ?? '', /failed calling webhook "inject\.kubeconfig-rotator\.io"/);
    // Back up, it picks up the CA it left in its Secret and serves again.
    await startInjector().waitForLog((line) => line.msg === 'injector started');
    const again = await create(agentPod({ [ANNOTATIONS.inject]: 'east' }), 'All');
    assert.equal(again.spec?.initContainers?.[0]?.name, SIDECAR_NAME);
  });
});
