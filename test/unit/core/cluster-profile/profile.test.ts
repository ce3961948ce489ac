// The ClusterProfile status computation: conditions a person understands, transition times kept while a
// status holds, the access providers of the contract with execplugin, and fields of others kept.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  accessOf,
  CLUSTER_MANAGER_LABEL,
  desiredStatus,
  newClusterProfile,
  notOurs,
  specUpdate,
  statusDiffers,
  type ClusterProfile,
  type Condition,
  type Observation,
} from '../../../../src/core/cluster-profile/profile.ts';
import { EXEC_EXTENSION } from '../../../../src/core/exec-credential/extension.ts';

const ref = { namespace: 'fleet', name: 'east', displayName: 'East' };
const T0 = Date.parse('2026-01-01T00:00:00Z');
const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

const secretSink = {
  namespace: 'fleet',
  name: 'east-kubeconfig',
  format: 'kubeconfig' as const,
  labels: {},
  annotations: {},
};

function observation(overrides: Partial<Observation> = {}): Observation {
  return {
    server: 'https://east.example:6443',
    health: { state: 'ready' },
    version: 'v1.36.3',
    credential: { published: true, issued: true, detail: 'CN=agent serial 1 valid until 2026-01-01T01:00:00.000Z' },
    cluster: { server: 'https://east.example:6443', caPem: CA },
    access: accessOf({ name: 'east', sinks: { secret: secretSink } }),
    ...overrides,
  };
}

const condition = (profile: { status?: { conditions?: readonly Condition[] } }, type: string) =>
  profile.status?.conditions?.find((each) => each.type === type) ?? assert.fail(`no ${type} condition`);

/** The profile as the API would hold it after writing `status` (no resourceVersion games here). */
const withStatus = (profile: ClusterProfile, status: ClusterProfile['status']): ClusterProfile => ({
  ...profile,
  ...(status === undefined ? {} : { status }),
});

describe('ClusterProfile status', () => {
  const created = { ...newClusterProfile(ref), metadata: { ...newClusterProfile(ref).metadata, generation: 1 } };

  it('a new ClusterProfile names kubeconfig-rotator as its cluster manager, in spec and label', () => {
    assert.deepEqual(newClusterProfile(ref), {
      apiVersion: 'multicluster.x-k8s.io/v1alpha1',
      kind: 'ClusterProfile',
      metadata: { name: 'east', namespace: 'fleet', labels: { [CLUSTER_MANAGER_LABEL]: 'kubeconfig-rotator' } },
      spec: { displayName: 'East', clusterManager: { name: 'kubeconfig-rotator' } },
    });
    assert.equal(notOurs(created), undefined);
  });

  it("another cluster manager's ClusterProfile is refused, saying whose it is and what to do", () => {
    const theirs = { ...created, spec: { clusterManager: { name: 'open-cluster-management' } } };
    assert.match(
      notOurs(theirs) ?? assert.fail('not refused'),
      /^ClusterProfile fleet\/east belongs to the cluster manager "open-cluster-management", not kubeconfig-rotator: it is left untouched/,
    );
  });

  it('a healthy target with a published credential: both conditions True, version and both providers', () => {
    const status = desiredStatus(created, observation(), T0);
    assert.deepEqual(status.conditions, [
      {
        type: 'ControlPlaneHealthy',
        status: 'True',
        reason: 'APIServerReady',
        message: 'the API server at https://east.example:6443 answers /readyz: ok',
        lastTransitionTime: '2026-01-01T00:00:00Z',
        observedGeneration: 1,
      },
      {
        type: 'Joined',
        status: 'True',
        reason: 'CredentialPublished',
        message: 'a credential is published: CN=agent serial 1 valid until 2026-01-01T01:00:00.000Z',
        lastTransitionTime: '2026-01-01T00:00:00Z',
        observedGeneration: 1,
      },
    ]);
    assert.deepEqual(status.version, { kubernetes: 'v1.36.3' });
    const ca = Buffer.from(CA).toString('base64');
    assert.deepEqual(status.accessProviders, [
      {
        name: 'kubeconfig-rotator',
        cluster: {
          server: 'https://east.example:6443',
          'certificate-authority-data': ca,
          extensions: [
            {
              name: EXEC_EXTENSION,
              extension: { secret: { namespace: 'fleet', name: 'east-kubeconfig' }, target: 'east' },
            },
          ],
        },
      },
      {
        name: 'kubeconfig-secretreader',
        cluster: {
          server: 'https://east.example:6443',
          'certificate-authority-data': ca,
          extensions: [
            { name: EXEC_EXTENSION, extension: { name: 'east-kubeconfig', key: 'config', namespace: 'fleet' } },
          ],
        },
      },
    ]);
  });

  it('an unreachable target: ControlPlaneHealthy False with the cause; lastTransitionTime moves only on a change', () => {
    const healthy = withStatus(created, desiredStatus(created, observation(), T0));
    const down = desiredStatus(
      healthy,
      observation({
        health: { state: 'unreachable', detail: 'connect ECONNREFUSED 127.0.0.1:6443' },
        version: undefined,
      }),
      T0 + 60_000,
    );
    assert.deepEqual(
      { ...condition({ status: down }, 'ControlPlaneHealthy') },
      {
        type: 'ControlPlaneHealthy',
        status: 'False',
        reason: 'APIServerUnreachable',
        message: 'the API server at https://east.example:6443 does not answer: connect ECONNREFUSED 127.0.0.1:6443',
        lastTransitionTime: '2026-01-01T00:01:00Z',
        observedGeneration: 1,
      },
    );
    // The last known version stays; Joined did not change, nor did its time.
    assert.deepEqual(down.version, { kubernetes: 'v1.36.3' });
    assert.equal(condition({ status: down }, 'Joined').lastTransitionTime, '2026-01-01T00:00:00Z');
    // Down again a minute later with another message: same status, same transition time, new message.
    const still = desiredStatus(
      withStatus(healthy, down),
      observation({ health: { state: 'unreachable', detail: 'timed out' } }),
      T0 + 120_000,
    );
    assert.equal(condition({ status: still }, 'ControlPlaneHealthy').lastTransitionTime, '2026-01-01T00:01:00Z');
    assert.match(condition({ status: still }, 'ControlPlaneHealthy').message, /timed out$/);
  });

  it('not ready (HTTP 500), unknown (403) and not checked yet each say so', () => {
    const of = (health: Observation['health']) =>
      condition({ status: desiredStatus(created, observation({ health }), T0) }, 'ControlPlaneHealthy');
    assert.deepEqual(
      [of({ state: 'not-ready', code: 500 }), of({ state: 'unknown', detail: 'HTTP 403' }), of(undefined)].map(
        (each) => [each.status, each.reason],
      ),
      [
        ['False', 'APIServerNotReady'],
        ['Unknown', 'ReadyzNotReadable'],
        ['Unknown', 'NotCheckedYet'],
      ],
    );
  });

  it('Joined is False before the first credential and when the published one is no longer usable', () => {
    const of = (credential: Observation['credential']) =>
      condition({ status: desiredStatus(created, observation({ credential }), T0) }, 'Joined');
    const first = of({ published: false, issued: false, detail: 'no certificate yet' });
    assert.deepEqual([first.status, first.reason], ['False', 'NoCredentialYet']);
    assert.match(first.message, /no credential has been obtained for the target yet: no certificate yet/);
    const expired = of({ published: false, issued: true, detail: 'certificate expired at 2026-01-01T00:00:00.000Z' });
    assert.deepEqual([expired.status, expired.reason], ['False', 'CredentialNotUsable']);
  });

  it("keeps others' conditions, properties and access providers, and writes nothing when nothing changed", () => {
    const foreign: Condition = {
      type: 'example.com/Audited',
      status: 'True',
      reason: 'Audited',
      message: 'by someone else',
      lastTransitionTime: '2025-12-01T00:00:00Z',
    };
    const theirs = { name: 'oidc', cluster: { server: 'https://east.example:6443' } };
    const profile = withStatus(created, {
      conditions: [foreign],
      properties: [{ name: 'region', value: 'eu-west-1' }],
      accessProviders: [theirs],
    });
    const status = desiredStatus(profile, observation(), T0);
    assert.deepEqual(status.conditions?.[0], foreign);
    assert.deepEqual(status.properties, [{ name: 'region', value: 'eu-west-1' }]);
    assert.deepEqual(
      status.accessProviders?.map((entry) => entry.name),
      ['oidc', 'kubeconfig-rotator', 'kubeconfig-secretreader'],
    );
    assert.ok(statusDiffers(profile.status, status));
    // Computed again later from the same observation: identical, so not written.
    const again = desiredStatus(withStatus(profile, status), observation(), T0 + 30_000);
    assert.ok(!statusDiffers(status, again));
    // Key order is not a change (the API returns its own order).
    assert.ok(!statusDiffers(status, Object.fromEntries(Object.entries(again).reverse())));
  });

  it('without a known server and CA no access provider is written', () => {
    const status = desiredStatus(created, observation({ cluster: undefined, server: undefined }), T0);
    assert.equal(status.accessProviders, undefined);
    assert.match(condition({ status }, 'ControlPlaneHealthy').message, /^the target's API server answers/);
  });

  it('spec: displayName and the manager label are restored; nothing to do when they are right', () => {
    assert.equal(specUpdate(created, ref), undefined);
    const renamed = specUpdate(created, { ...ref, displayName: 'East (eu-west-1)' });
    assert.equal(renamed?.spec.displayName, 'East (eu-west-1)');
    const unlabelled = specUpdate({ ...created, metadata: { ...created.metadata, labels: { team: 'a' } } }, ref);
    assert.deepEqual(unlabelled?.metadata.labels, { team: 'a', [CLUSTER_MANAGER_LABEL]: 'kubeconfig-rotator' });
  });
});

describe('ClusterProfile access providers from the sinks', () => {
  const directory = { path: '/var/run/kcr/east', embed: false };

  it('a directory sink only: our plugin reads the directory; no secretreader entry', () => {
    assert.deepEqual(accessOf({ name: 'east', sinks: { directory } }), {
      ours: { directory: '/var/run/kcr/east', target: 'east' },
      secretreader: undefined,
    });
  });

  it('a reference-mode Secret holds no credential: our plugin reads the directory, no secretreader entry', () => {
    const sinks = { directory, secret: { ...secretSink, reference: {} } };
    assert.deepEqual(accessOf({ name: 'east', sinks }), {
      ours: { directory: '/var/run/kcr/east', target: 'east' },
      secretreader: undefined,
    });
  });

  it("the secretreader entry names the Secret's kubeconfig key; other formats get our entry only", () => {
    assert.deepEqual(accessOf({ name: 'east', sinks: { secret: { ...secretSink, key: 'kubeconfig' } } }).secretreader, {
      name: 'east-kubeconfig',
      key: 'kubeconfig',
      namespace: 'fleet',
    });
    const argocd = accessOf({ name: 'east', sinks: { secret: { ...secretSink, format: 'argocd' } } });
    assert.deepEqual(argocd, {
      ours: { secret: { namespace: 'fleet', name: 'east-kubeconfig' }, target: 'east' },
      secretreader: undefined,
    });
  });
});
