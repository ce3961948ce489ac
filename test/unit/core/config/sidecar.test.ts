import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sidecarConfigSchema } from '../../../../src/core/config/sidecar.ts';
import { formatProblems, parseAndValidate } from '../../../../src/core/config/validate.ts';
import { kubeconfigKey } from '../../../../src/core/secret-format/formats.ts';
import { ALIAS_BOMB } from '../../../support/hostile-yaml.ts';

const minimal = `
targets:
  - name: east
    bootstrapKubeconfig: /var/run/bootstrap/east/kubeconfig
    identity: { commonName: agent-east }
    sinks: { directory: { path: /var/run/kcr/east } }
`;

/** One target east with these fields (YAML lines at the target's indent), its name, bootstrap and sink fixed. */
const target = (fields: string) => `
targets:
  - name: east
    bootstrapKubeconfig: /var/run/bootstrap/east/kubeconfig
    ${fields}
    sinks: { directory: { path: /var/run/kcr/east } }
`;

function problems(text: string): string[] {
  const result = parseAndValidate(text, sidecarConfigSchema);
  assert.ok(!result.ok, 'expected the config to be refused');
  return result.problems.map((problem) => `${String(problem.line)}:${problem.path}: ${problem.message}`);
}

describe('sidecar configuration', () => {
  it('fills secure, documented defaults', () => {
    const result = parseAndValidate(minimal, sidecarConfigSchema);
    assert.ok(result.ok);
    const [target] = result.value.targets;
    assert.deepEqual(target, {
      name: 'east',
      bootstrapKubeconfig: '/var/run/bootstrap/east/kubeconfig',
      credential: 'certificate',
      identity: { commonName: 'agent-east', organizations: [] },
      signerName: 'kubernetes.io/kube-apiserver-client',
      keyAlgorithm: 'ecdsa-p256',
      expirationSeconds: 3600,
      rotation: { minFraction: 0.7, maxFraction: 0.9, minRemainingSeconds: 420 },
      approvalTimeoutSeconds: 900,
      sinks: { directory: { path: '/var/run/kcr/east', embed: false } },
      restart: [],
    });
    assert.equal(result.value.stateDir, '/var/lib/kubeconfig-rotator');
    assert.deepEqual(result.value.listen, { host: '0.0.0.0', port: 9571 });
  });

  it('the Secret sink key defaults to "config", what Admiralty reads', () => {
    const result = parseAndValidate(
      minimal.replace('{ directory: { path: /var/run/kcr/east } }', '{ secret: { namespace: ns, name: east } }'),
      sidecarConfigSchema,
    );
    assert.ok(result.ok);
    const sink = result.value.targets[0]?.sinks.secret;
    assert.deepEqual(sink, { namespace: 'ns', name: 'east', format: 'kubeconfig', labels: {}, annotations: {} });
    assert.equal(kubeconfigKey({ format: sink.format, targetName: 'east', key: sink.key }), 'config');
  });

  it('lists every problem with its field path and line', () => {
    const text = `targets:
  - name: East
    bootstrapKubeconfig: relative
    identity: { commonName: a, organizations: [b] }
    keyAlgorithm: rsa-1024
    expirationSeconds: 599
    rotation: { minFraction: 0.9, maxFraction: 0.7 }
    sinks: {}
listen: { port: 70000 }
extra: true
`;
    assert.deepEqual(problems(text), [
      '2:targets[0].name: must be a DNS label (a-z, 0-9, -)',
      '3:targets[0].bootstrapKubeconfig: must be an absolute path',
      '5:targets[0].keyAlgorithm: Invalid option: expected one of "ecdsa-p256"|"ecdsa-p384"|"rsa-2048"|"rsa-3072"|"rsa-4096"',
      '6:targets[0].expirationSeconds: Too small: expected number to be >=600',
      '7:targets[0].rotation.minFraction: minFraction must not exceed maxFraction',
      '8:targets[0].sinks: at least one sink (directory or secret) is required',
      '9:listen.port: Too big: expected number to be <=65535',
      '10:extra: unknown field',
    ]);
  });

  it('restart action: each workload by kind, namespace and name; a bad kind, name or a repeat named by field path', () => {
    const text = minimal.replace(
      '    sinks:',
      `    restart:
      - { kind: Deployment, namespace: argocd, name: argocd-server }
      - { kind: StatefulSet, namespace: argocd, name: argocd-application-controller }
      - { kind: Job, namespace: argocd, name: once }
      - { kind: Deployment, namespace: Argo, name: argocd-server }
      - { kind: Deployment, namespace: argocd, name: argocd-server }
      - { kind: DaemonSet, name: agent }
    sinks:`,
    );
    assert.deepEqual(problems(text), [
      '9:targets[0].restart[2].kind: Invalid option: expected one of "Deployment"|"StatefulSet"|"DaemonSet"',
      '10:targets[0].restart[3].namespace: must be a DNS label (a-z, 0-9, -)',
      '12:targets[0].restart[5].namespace: is required',
    ]);
    const valid = parseAndValidate(
      text
        .split('\n')
        .filter((line) => !/Job|Argo|DaemonSet/.test(line))
        .join('\n'),
      sidecarConfigSchema,
    );
    assert.ok(!valid.ok);
    assert.deepEqual(
      valid.problems.map((problem) => `${problem.path}: ${problem.message}`),
      ['targets[0].restart[2]: duplicates restart[0]'],
    );
  });

  it('each credential kind requires its own fields and refuses the others, named by field and line', () => {
    assert.deepEqual(problems(target('credential: token\n    identity: { commonName: a }\n    targetUser: u')), [
      '3:targets[0].serviceAccount: is required for a token target',
      '7:targets[0].targetUser: is for federated targets only',
      '6:targets[0].identity: is for certificate targets only: a token carries its ServiceAccount',
    ]);
    assert.deepEqual(problems(target('credential: federated\n    leaseSecret: l\n    keyAlgorithm: rsa-2048')), [
      "3:targets[0].audiences: is required for a federated target: the audience the target's authenticator expects",
      '6:targets[0].leaseSecret: is for token targets only',
      '7:targets[0].keyAlgorithm: is for certificate targets only',
    ]);
    assert.deepEqual(problems(target('identity: { commonName: a }\n    audiences: [x]\n    targetUser: u')), [
      '6:targets[0].audiences: is for token or federated targets only',
      '7:targets[0].targetUser: is for federated targets only',
    ]);
    // A federated target needs no ServiceAccount in its config: the pod's own is the default.
    assert.ok(parseAndValidate(target('credential: federated\n    audiences: [kcr:east]'), sidecarConfigSchema).ok);
  });

  it("a certificate target's bootstrap: federated needs its audience, each field only where it belongs", () => {
    const federated = parseAndValidate(
      target(
        'identity: { commonName: a }\n    bootstrap: { with: federated, audiences: [kcr:east], serviceAccount: { namespace: agents, name: admiralty } }',
      ),
      sidecarConfigSchema,
    );
    assert.ok(federated.ok);
    assert.deepEqual(federated.value.targets[0]?.bootstrap, {
      with: 'federated',
      audiences: ['kcr:east'],
      serviceAccount: { namespace: 'agents', name: 'admiralty' },
    });
    // Every problem at once, each with its field path.
    assert.deepEqual(
      problems(target('identity: { commonName: a }\n    bootstrap: { with: federated, expirationSeconds: 60 }')),
      [
        '6:targets[0].bootstrap.expirationSeconds: Too small: expected number to be >=600',
        "6:targets[0].bootstrap.audiences: is required with federated bootstrap: the audience the target's jwt authenticator expects",
      ],
    );
    assert.deepEqual(
      problems(
        target(
          'identity: { commonName: a }\n    bootstrap: { with: token, audiences: [x], serviceAccount: { namespace: a, name: b } }',
        ),
      ),
      [
        '6:targets[0].bootstrap.audiences: is for with: federated only',
        '6:targets[0].bootstrap.serviceAccount: is for with: federated only',
      ],
    );
    assert.deepEqual(problems(target('identity: { commonName: a }\n    bootstrap: { with: oidc }')), [
      '6:targets[0].bootstrap.with: Invalid option: expected one of "token"|"federated"',
    ]);
    assert.deepEqual(
      problems(target('credential: federated\n    audiences: [x]\n    bootstrap: { with: federated, audiences: [x] }')),
      [
        "7:targets[0].bootstrap: is for certificate targets only: a federated target's own credential needs no bootstrap",
      ],
    );
  });

  it('refuses a Secret sink namespace longer than a DNS label may be (63 characters)', () => {
    const namespace = 'n'.repeat(64);
    assert.deepEqual(
      problems(
        minimal.replace(
          '{ directory: { path: /var/run/kcr/east } }',
          `{ secret: { namespace: ${namespace}, name: east } }`,
        ),
      ),
      ['6:targets[0].sinks.secret.namespace: Too big: expected string to have <=63 characters'],
    );
    assert.ok(
      parseAndValidate(
        minimal.replace(
          '{ directory: { path: /var/run/kcr/east } }',
          `{ secret: { namespace: ${namespace.slice(1)}, name: east } }`,
        ),
        sidecarConfigSchema,
      ).ok,
    );
  });

  it('refuses two targets with one name or one output', () => {
    const twice = `${minimal}  - name: east
    bootstrapKubeconfig: /b
    identity: { commonName: other }
    sinks: { directory: { path: /var/run/kcr/east } }
`;
    assert.deepEqual(problems(twice), [
      '7:targets[1].name: duplicates targets[0].name',
      '10:targets[1].sinks.directory.path: is also the output of targets[0]',
    ]);
  });

  it('refuses a minimum remaining lifetime as long as the certificate', () => {
    assert.deepEqual(
      problems(
        minimal.replace(
          'identity:',
          'expirationSeconds: 600\n    rotation: { minRemainingSeconds: 600 }\n    identity:',
        ),
      ),
      ['6:targets[0].rotation.minRemainingSeconds: must be less than expirationSeconds'],
    );
  });

  it('refuses a missing target list and YAML that does not parse', () => {
    assert.deepEqual(problems('logLevel: info\n'), ['1:targets: is required']);
    assert.match(problems('targets: [\n')[0] ?? '', /^2:: invalid YAML/);
  });

  it('refuses a YAML alias bomb as a problem (the policy file shares this validator)', () => {
    assert.deepEqual(problems(ALIAS_BOMB), [
      'undefined:: invalid YAML: Excessive alias count indicates a resource exhaustion attack',
    ]);
  });

  it('formats problems as file:line:column: path: message', () => {
    assert.equal(
      formatProblems('/etc/kcr/config.yaml', [
        { path: 'targets[0].name', message: 'is required', line: 3, column: 5 },
        { path: '', message: 'invalid YAML: x' },
      ]),
      '/etc/kcr/config.yaml: 2 problems\n  /etc/kcr/config.yaml:3:5: targets[0].name: is required\n  /etc/kcr/config.yaml: invalid YAML: x',
    );
  });
});
