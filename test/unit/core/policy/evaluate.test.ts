import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildCertificationRequest } from '../../../../src/core/pki/csr.ts';
import { parseCertificationRequest } from '../../../../src/core/pki/csr-parse.ts';
import { generateKeyPair } from '../../../../src/core/pki/keys.ts';
import {
  conditionFor,
  eventFor,
  metricLabels,
  type Check,
  type Decision,
} from '../../../../src/core/policy/decision.ts';
import { completeReview, decideUnread, evaluate, type Evaluation } from '../../../../src/core/policy/evaluate.ts';
import { CREDENTIAL_ID_KEY } from '../../../../src/core/policy/renewal.ts';
import type { RequestFacts, Requester } from '../../../../src/core/policy/request-checks.ts';
import { parsePolicyFile, type PolicyFile } from '../../../../src/core/policy/schema.ts';
import {
  anyExtensionValue,
  ATTRIBUTE,
  emptyExtensions,
  EXTENDED_KEY_USAGE,
  EXTENSION,
  extendedKeyUsageValue,
  KEY_USAGE_BIT,
  keyPair,
  keyUsageValue,
  requestPem,
  subject,
  type RequestShape,
} from '../../../support/hostile-csr.ts';

const SIGNER = 'kubernetes.io/kube-apiserver-client';
const GROUP_A = 'system:bootstrappers:kcr:cluster-a';
const USER_B = 'system:bootstrap:bbbbbb';

function policyFile(yaml: string): PolicyFile {
  const parsed = parsePolicyFile(yaml);
  assert.ok(parsed.ok, parsed.ok ? '' : JSON.stringify(parsed.problems));
  return parsed.value;
}

const POLICIES = policyFile(`
policies:
  - name: cluster-a
    bootstrap: { groups: ['${GROUP_A}'] }
    identity: { commonNames: [agent-a, 'cluster-a-*'], organizations: [team-a] }
    maxExpirationSeconds: 3600
  - name: cluster-b
    bootstrap: { users: ['${USER_B}'] }
    identity: { commonNames: [agent-b], organizations: [team-b, 'shared-*'] }
`);

const BOOTSTRAP_A: Requester = {
  username: 'system:bootstrap:aaaaaa',
  groups: ['system:bootstrappers', GROUP_A, 'system:authenticated'],
};
const BOOTSTRAP_B: Requester = { username: USER_B, groups: ['system:bootstrappers', 'system:authenticated'] };
const STRANGER: Requester = {
  username: 'system:bootstrap:zzzzzz',
  groups: ['system:bootstrappers', 'system:authenticated'],
};
// As the apiserver records a requester that authenticated with a client certificate (Kubernetes 1.32+).
const CLIENT_CERTIFICATE = { [CREDENTIAL_ID_KEY]: [`X509SHA256=${'ab'.repeat(32)}`] };
const RENEWING_A: Requester = {
  username: 'agent-a',
  groups: ['team-a', 'system:authenticated'],
  extra: CLIENT_CERTIFICATE,
};

interface Case {
  readonly shape?: RequestShape;
  readonly pem?: string;
  readonly requester?: Requester;
  readonly usages?: readonly string[];
  readonly expirationSeconds?: number | null;
  readonly signerName?: string;
}

function facts(input: Case = {}): RequestFacts {
  const pem = input.pem ?? requestPem(input.shape ?? { subject: subject('agent-a', ['team-a']) });
  return {
    signerName: input.signerName ?? SIGNER,
    usages: input.usages ?? ['digital signature', 'client auth'],
    ...(input.expirationSeconds === null ? {} : { expirationSeconds: input.expirationSeconds ?? 3600 }),
    requester: input.requester ?? BOOTSTRAP_A,
    request: parseCertificationRequest(pem),
  };
}

function decided(evaluation: Evaluation): Decision {
  if (evaluation.result === 'review') assert.fail('no review expected');
  return evaluation;
}

function checksOf(decision: Evaluation): { check: Check; policy: string | undefined }[] {
  if (decision.result !== 'denied') assert.fail(`expected a denial, got ${JSON.stringify(decision)}`);
  return decision.findings.map((finding) => ({ check: finding.check, policy: finding.policy }));
}

describe('policy evaluation', () => {
  describe('approvals', () => {
    const approvals: [string, Case, { policy: string; path: 'firstCertificate' | 'renewal' }][] = [
      [
        'a bootstrap group member asking for an allowed CN and O gets a first certificate from that policy',
        {},
        { policy: 'cluster-a', path: 'firstCertificate' },
      ],
      [
        'a CN matching a pattern of the policy is approved',
        { shape: { subject: subject('cluster-a-scheduler', ['team-a']) } },
        { policy: 'cluster-a', path: 'firstCertificate' },
      ],
      [
        'a request with no O at all is approved',
        { shape: { subject: subject('agent-a') } },
        { policy: 'cluster-a', path: 'firstCertificate' },
      ],
      [
        'a bootstrap user named by the second policy is approved by the second policy',
        { requester: BOOTSTRAP_B, shape: { subject: subject('agent-b', ['team-b', 'shared-mesh']) } },
        { policy: 'cluster-b', path: 'firstCertificate' },
      ],
      [
        'a renewal by the same identity, in the requested group, is approved',
        { requester: RENEWING_A },
        { policy: 'cluster-a', path: 'renewal' },
      ],
      [
        'an RSA-2048 request with key encipherment is approved',
        {
          pem: buildCertificationRequest(
            { commonName: 'agent-a', organizations: ['team-a'] },
            generateKeyPair('rsa-2048'),
          ),
          usages: ['digital signature', 'key encipherment', 'client auth'],
        },
        { policy: 'cluster-a', path: 'firstCertificate' },
      ],
      [
        'a P-384 request is approved',
        { shape: { keys: keyPair('p384'), digest: 'sha384', subject: subject('agent-a') } },
        { policy: 'cluster-a', path: 'firstCertificate' },
      ],
      [
        'a lifetime exactly at the policy maximum is approved',
        { expirationSeconds: 3600 },
        { policy: 'cluster-a', path: 'firstCertificate' },
      ],
      [
        'usages of client auth alone are enough',
        { usages: ['client auth'] },
        { policy: 'cluster-a', path: 'firstCertificate' },
      ],
      [
        'key usage extensions that tools add, asking for what a client certificate is, are tolerated',
        {
          shape: {
            subject: subject('agent-a'),
            extensions: [
              {
                oid: EXTENSION.keyUsage,
                critical: true,
                value: keyUsageValue([KEY_USAGE_BIT.digitalSignature, KEY_USAGE_BIT.keyEncipherment]),
              },
              { oid: EXTENSION.extKeyUsage, value: extendedKeyUsageValue([EXTENDED_KEY_USAGE.clientAuth]) },
            ],
          },
        },
        { policy: 'cluster-a', path: 'firstCertificate' },
      ],
    ];
    for (const [name, input, expected] of approvals) {
      it(name, () => {
        const decision = decided(evaluate(facts(input), POLICIES));
        assert.equal(decision.result, 'approved', JSON.stringify(decision));
        assert.deepEqual(
          { policy: decision.policy, path: decision.path, dryRun: decision.dryRun },
          { ...expected, dryRun: false },
        );
      });
    }

    it('an approval names the policy, the path, the identity and the requester in its condition', () => {
      const decision = decided(evaluate(facts(), POLICIES));
      assert.equal(decision.result, 'approved');
      assert.deepEqual(conditionFor(decision, BOOTSTRAP_A.username), {
        type: 'Approved',
        reason: 'PolicyApproved',
        message:
          'policy cluster-a allows a first certificate for "agent-a" (groups "team-a") requested by "system:bootstrap:aaaaaa"',
      });
      assert.deepEqual(metricLabels(decision), { policy: 'cluster-a', result: 'approved', reason: 'firstCertificate' });
    });
  });

  describe('denials name every failing check', () => {
    const rsa1024 = keyPair('rsa1024');
    const denials: [string, Case, [Check, string | undefined][]][] = [
      [
        'a CN of another source cluster',
        { shape: { subject: subject('agent-b', ['team-a']) } },
        [['identity.commonName', 'cluster-a']],
      ],
      [
        'an O the policy does not allow',
        { shape: { subject: subject('agent-a', ['team-a', 'team-b']) } },
        [['identity.organizations', 'cluster-a']],
      ],
      [
        'O=system:masters',
        { shape: { subject: subject('agent-a', ['system:masters']) } },
        [
          ['identity.system', undefined],
          ['identity.organizations', 'cluster-a'],
        ],
      ],
      [
        'any system: group',
        { shape: { subject: subject('agent-a', ['system:nodes']) } },
        [
          ['identity.system', undefined],
          ['identity.organizations', 'cluster-a'],
        ],
      ],
      [
        'a system: user',
        { shape: { subject: subject('system:kube-controller-manager', ['team-a']) } },
        [
          ['identity.system', undefined],
          ['identity.commonName', 'cluster-a'],
        ],
      ],
      [
        'a DNS subjectAltName',
        { shape: { subject: subject('agent-a'), subjectAltNames: [{ dns: 'kubernetes.default' }] } },
        [['request.subjectAltNames', undefined]],
      ],
      [
        'an IP subjectAltName',
        { shape: { subject: subject('agent-a'), subjectAltNames: [{ ip: [10, 0, 0, 1] }] } },
        [['request.subjectAltNames', undefined]],
      ],
      [
        'an email subjectAltName',
        { shape: { subject: subject('agent-a'), subjectAltNames: [{ email: 'a@example.com' }] } },
        [['request.subjectAltNames', undefined]],
      ],
      [
        'a URI subjectAltName',
        { shape: { subject: subject('agent-a'), subjectAltNames: [{ uri: 'spiffe://cluster/agent' }] } },
        [['request.subjectAltNames', undefined]],
      ],
      [
        'a registeredID subjectAltName',
        { shape: { subject: subject('agent-a'), subjectAltNames: [{ registeredId: '1.2.3.4' }] } },
        [['request.subjectAltNames', undefined]],
      ],
      [
        'an empty subjectAltName extension',
        { shape: { subject: subject('agent-a'), subjectAltNames: [] } },
        [['request.subjectAltNames', undefined]],
      ],
      [
        'the server auth usage',
        { usages: ['digital signature', 'client auth', 'server auth'] },
        [['spec.usages', undefined]],
      ],
      ['no client auth usage', { usages: ['digital signature', 'key encipherment'] }, [['spec.usages', undefined]]],
      ['a usage listed twice', { usages: ['client auth', 'client auth'] }, [['spec.usages', undefined]]],
      ['a lifetime above the policy maximum', { expirationSeconds: 3601 }, [['spec.expirationSeconds', 'cluster-a']]],
      ['no lifetime at all', { expirationSeconds: null }, [['spec.expirationSeconds', undefined]]],
      ['an RSA-1024 key', { shape: { keys: rsa1024, subject: subject('agent-a') } }, [['request.key', undefined]]],
      [
        'a secp256k1 key',
        { shape: { keys: keyPair('secp256k1'), subject: subject('agent-a') } },
        [['request.key', undefined]],
      ],
      ['a P-521 key', { shape: { keys: keyPair('p521'), subject: subject('agent-a') } }, [['request.key', undefined]]],
      [
        'an Ed25519 key',
        { shape: { keys: keyPair('ed25519'), subject: subject('agent-a') } },
        [['request.key', undefined]],
      ],
      [
        'a signature by another key',
        { shape: { subject: subject('agent-a'), signingKey: keyPair('p256').privateKey } },
        [['request.signature', undefined]],
      ],
      [
        'a SHA-1 signature',
        { shape: { subject: subject('agent-a'), digest: 'sha1' } },
        [['request.signature', undefined]],
      ],
      [
        'a second PEM block',
        { pem: requestPem({ subject: subject('agent-a') }) + requestPem({ subject: subject('agent-b') }) },
        [['request.pem', undefined]],
      ],
      [
        'trailing garbage after the PEM block',
        { pem: `${requestPem({ subject: subject('agent-a') })}garbage\n` },
        [['request.pem', undefined]],
      ],
      [
        'an oversized request',
        {
          pem: requestPem({
            subject: subject(
              'agent-a',
              Array.from({ length: 1000 }, (_, i) => `team-${String(i)}`),
            ),
          }),
        },
        [['request.size', undefined]],
      ],
      [
        'a truncated DER structure',
        { pem: `-----BEGIN CERTIFICATE REQUEST-----\nMIIBAAIBAA==\n-----END CERTIFICATE REQUEST-----\n` },
        [['request.der', undefined]],
      ],
      [
        'an OU in the subject',
        { shape: { subject: [...subject('agent-a'), [{ oid: ATTRIBUTE.organizationalUnit, value: 'unit' }]] } },
        [['request.subject', undefined]],
      ],
      [
        'two common names',
        { shape: { subject: [...subject('agent-a'), [{ oid: ATTRIBUTE.commonName, value: 'agent-a' }]] } },
        [['request.subject', undefined]],
      ],
      [
        'no common name',
        { shape: { subject: [[{ oid: ATTRIBUTE.organizationName, value: 'team-a' }]] } },
        [['request.subject', undefined]],
      ],
      [
        'a multi-valued RDN hiding an O beside the CN',
        {
          shape: {
            subject: [
              [
                { oid: ATTRIBUTE.commonName, value: 'agent-a' },
                { oid: ATTRIBUTE.organizationName, value: 'team-a' },
              ],
            ],
          },
        },
        [['request.subject', undefined]],
      ],
      [
        'a control character in the CN',
        { shape: { subject: subject('agent-a\nadmin') } },
        [
          ['request.subject', undefined],
          ['identity.commonName', 'cluster-a'],
        ],
      ],
      [
        'a byte-order mark leading the CN (Go keeps it)',
        { shape: { subject: subject('\ufeffagent-a', ['team-a']) } },
        [
          ['request.subject', undefined],
          ['identity.commonName', 'cluster-a'],
        ],
      ],
      [
        'a byte-order mark leading an O (Go keeps it)',
        { shape: { subject: subject('agent-a', ['\ufeffteam-a']) } },
        [
          ['request.subject', undefined],
          ['identity.organizations', 'cluster-a'],
        ],
      ],
      [
        'a zero-width space in a CN the policy pattern allows',
        { shape: { subject: subject('cluster-a-\u200bx') } },
        [['request.subject', undefined]],
      ],
      [
        'a bidi override in the CN',
        { shape: { subject: subject('cluster-a-\u202ex') } },
        [['request.subject', undefined]],
      ],
      [
        'a BMPString CN',
        { shape: { subject: [[{ oid: ATTRIBUTE.commonName, value: 'agent-a', type: 'bmp' }]] } },
        [['request.subject', undefined]],
      ],
      [
        'a T61String O',
        {
          shape: {
            subject: [
              [{ oid: ATTRIBUTE.organizationName, value: 'team-a', type: 't61' }],
              [{ oid: ATTRIBUTE.commonName, value: 'agent-a' }],
            ],
          },
        },
        [['request.subject', undefined]],
      ],
      [
        'an RSA public exponent of 3',
        { shape: { keys: keyPair('rsa2048-e3'), subject: subject('agent-a') } },
        [['request.key', undefined]],
      ],
      [
        'an RSA public exponent of 65539',
        { shape: { keys: keyPair('rsa2048-e65539'), subject: subject('agent-a') } },
        [['request.key', undefined]],
      ],
      ...(
        [
          [
            'extendedKeyUsage serverAuth',
            EXTENSION.extKeyUsage,
            extendedKeyUsageValue([EXTENDED_KEY_USAGE.serverAuth]),
          ],
          [
            'extendedKeyUsage codeSigning',
            EXTENSION.extKeyUsage,
            extendedKeyUsageValue([EXTENDED_KEY_USAGE.codeSigning]),
          ],
          ['keyUsage keyCertSign', EXTENSION.keyUsage, keyUsageValue([KEY_USAGE_BIT.keyCertSign])],
        ] as const
      ).map(([name, oid, value]): [string, Case, [Check, string | undefined][]] => [
        `a request asking for ${name}`,
        { shape: { subject: subject('agent-a', ['team-a']), extensions: [{ oid, value }] } },
        [['request.extensions', undefined]],
      ]),
      [
        'a challengePassword attribute',
        { shape: { subject: subject('agent-a'), attributes: [{ oid: ATTRIBUTE.challengePassword, value: 'secret' }] } },
        [['request.attributes', undefined]],
      ],
      [
        'a basicConstraints extension',
        {
          shape: {
            subject: subject('agent-a'),
            extensions: [{ oid: EXTENSION.basicConstraints, value: anyExtensionValue() }],
          },
        },
        [['request.extensions', undefined]],
      ],
      [
        'a renewal for another CN than the requester',
        { requester: RENEWING_A, shape: { subject: subject('cluster-a-other', ['team-a']) } },
        [['renewal.commonName', 'cluster-a']],
      ],
      [
        'a renewal adding a group the requester is not in',
        { requester: { ...RENEWING_A, groups: ['system:authenticated'] } },
        [['renewal.organizations', 'cluster-a']],
      ],
    ];
    for (const [name, input, expected] of denials) {
      it(`denies ${name}`, () => {
        assert.deepEqual(
          checksOf(evaluate(facts(input), POLICIES)),
          expected.map(([check, policy]) => ({ check, policy })),
        );
      });
    }

    it('names the invisible characters of a CN or O by code point, since a message cannot show them', () => {
      const decision = evaluate(facts({ shape: { subject: subject('cluster-a-\u202ex\u200b\u202e') } }), POLICIES);
      if (decision.result !== 'denied') assert.fail(JSON.stringify(decision));
      assert.match(decision.findings[0]?.message ?? '', /contains invisible format characters \(U\+202E, U\+200B\)$/);
    });

    it('denies a CN that is a system: name even when a policy pattern allows it', () => {
      const permissive = policyFile(`
policies:
  - name: anything
    bootstrap: { groups: ['${GROUP_A}'] }
    identity: { commonNames: ['*'], organizations: ['*'] }
`);
      for (const identity of [subject('system:admin'), subject('agent', ['system:masters'])]) {
        assert.deepEqual(checksOf(evaluate(facts({ shape: { subject: identity } }), permissive)), [
          { check: 'identity.system', policy: undefined },
        ]);
      }
    });

    it('lists every failing check at once, shared checks first, in a stable order', () => {
      const input = facts({
        shape: {
          keys: rsa1024,
          subject: [...subject('agent-b', ['system:masters', 'team-x']), [{ oid: ATTRIBUTE.country, value: 'DE' }]],
          subjectAltNames: [{ dns: 'evil' }],
        },
        usages: ['server auth'],
        expirationSeconds: 86_400,
      });
      const first = evaluate(input, POLICIES);
      assert.deepEqual(checksOf(first), [
        { check: 'request.key', policy: undefined },
        { check: 'request.subject', policy: undefined },
        { check: 'request.subjectAltNames', policy: undefined },
        { check: 'spec.usages', policy: undefined },
        { check: 'spec.usages', policy: undefined },
        { check: 'identity.system', policy: undefined },
        { check: 'spec.expirationSeconds', policy: 'cluster-a' },
        { check: 'identity.commonName', policy: 'cluster-a' },
        { check: 'identity.organizations', policy: 'cluster-a' },
      ]);
      assert.deepEqual(evaluate(input, POLICIES), first, 'the same request is judged the same way');
      assert.equal(metricLabels(decided(first)).reason, 'request.key');
    });

    it('a denial condition carries every finding, untrusted names quoted, and its event only the check names', () => {
      const decision = decided(
        evaluate(
          facts({
            shape: { subject: subject('agent-b\u001b[31m', ['team-a']) },
            usages: ['server auth', 'client auth'],
          }),
          POLICIES,
        ),
      );
      assert.equal(decision.result, 'denied');
      const condition = conditionFor(decision, BOOTSTRAP_A.username);
      assert.equal(condition.type, 'Denied');
      assert.equal(condition.reason, 'PolicyDenied');
      assert.ok(condition.message.includes('spec.usages: "server auth" is not allowed'), condition.message);
      assert.ok(
        condition.message.includes(
          'cluster-a: identity.commonName: "agent-b\\u001b[31m" is not an identity this policy allows',
        ),
        condition.message,
      );
      assert.ok(!condition.message.includes('\u001b'), 'no raw control characters');
      assert.deepEqual(eventFor(decision), {
        type: 'Warning',
        reason: 'Denied',
        message: 'denied: failed request.subject, spec.usages, identity.commonName',
      });
    });

    it('a policy that applies to the requester is the one named, even when another would allow the identity', () => {
      const decision = decided(evaluate(facts({ shape: { subject: subject('agent-b', ['team-b']) } }), POLICIES));
      assert.equal(decision.result, 'denied');
      assert.equal(decision.policy, 'cluster-a');
    });
  });

  describe('requests no policy applies to', () => {
    it('a bootstrap requester named by no policy is left unprocessed, whatever the request holds', () => {
      for (const input of [
        facts({ requester: STRANGER }),
        facts({ requester: STRANGER, usages: ['server auth'], shape: { subject: subject('system:admin') } }),
      ]) {
        assert.deepEqual(evaluate(input, POLICIES), { result: 'unprocessed', reason: 'noPolicy' });
      }
    });

    it('with denyUnmatched, a requester named by no policy is denied and the reason names the check', () => {
      const decision = evaluate(facts({ requester: STRANGER }), { ...POLICIES, denyUnmatched: true });
      assert.deepEqual(decision, {
        result: 'denied',
        findings: [{ check: 'policy.unmatched', message: 'no policy applies to requester "system:bootstrap:zzzzzz"' }],
        dryRun: false,
      });
      assert.deepEqual(metricLabels(decided(decision)), { policy: '', result: 'denied', reason: 'policy.unmatched' });
    });

    it('another signer is ignored, even with denyUnmatched', () => {
      assert.deepEqual(evaluate(facts({ signerName: 'example.com/other' }), { ...POLICIES, denyUnmatched: true }), {
        result: 'unprocessed',
        reason: 'otherSigner',
      });
    });

    it('a system: requester is never taken for a renewing identity, even by a catch-all pattern', () => {
      const permissive = policyFile(`
policies:
  - name: anything
    identity: { commonNames: ['*'] }
`);
      const requester = { username: 'system:kube-controller-manager', groups: ['system:authenticated'] };
      assert.deepEqual(
        evaluate(facts({ requester, shape: { subject: subject('system:kube-controller-manager') } }), permissive),
        { result: 'unprocessed', reason: 'noPolicy' },
      );
    });

    describe('a renewal must be proven by a client certificate', () => {
      const renewing = (extra?: Requester['extra']): Requester => ({
        username: 'agent-a',
        groups: ['team-a', 'system:authenticated'],
        ...(extra === undefined ? {} : { extra }),
      });
      const credentialFindings = (requester: Requester, file: PolicyFile = POLICIES) => {
        const decision = decided(evaluate(facts({ requester }), file));
        if (decision.result !== 'denied') assert.fail(`expected a denial, got ${JSON.stringify(decision)}`);
        return decision.findings.map((finding) => `${finding.check}: ${finding.message}`);
      };

      it('a token of the allowed username (a ServiceAccount, OIDC or impersonated user) is denied', () => {
        assert.deepEqual(credentialFindings(renewing({ [CREDENTIAL_ID_KEY]: ['JTI=7f6d1c2e'] })), [
          'renewal.credential: the requester authenticated with a JTI credential, not a client certificate',
        ]);
      });

      it('no recorded credential (an older apiserver, another authenticator) is denied by default', () => {
        assert.deepEqual(credentialFindings(renewing()), [
          'renewal.credential: the apiserver recorded no authentication.kubernetes.io/credential-id, so nothing shows the requester used a client certificate (renewal: trustUsername accepts the username alone)',
        ]);
        assert.deepEqual(credentialFindings(renewing({ [CREDENTIAL_ID_KEY]: [] })).length, 1);
      });

      it('anything but exactly one X509SHA256=<64 hex digits> is not a certificate', () => {
        const id = `X509SHA256=${'ab'.repeat(32)}`;
        for (const ids of [[id, id], [`${id}0`], [id.toUpperCase()], ['X509SHA256=']])
          assert.equal(credentialFindings(renewing({ [CREDENTIAL_ID_KEY]: ids })).length, 1, JSON.stringify(ids));
      });

      it('renewal: trustUsername accepts an unrecorded credential, but never a recorded token', () => {
        const trusting: PolicyFile = {
          ...POLICIES,
          policies: POLICIES.policies.map((policy) => ({ ...policy, renewal: 'trustUsername' as const })),
        };
        assert.deepEqual(decided(evaluate(facts({ requester: renewing() }), trusting)), {
          result: 'approved',
          policy: 'cluster-a',
          path: 'renewal',
          dryRun: false,
          identity: { commonName: 'agent-a', organizations: ['team-a'] },
        });
        assert.deepEqual(
          credentialFindings(renewing({ [CREDENTIAL_ID_KEY]: ['JTI=1'] }), trusting).map((line) => line.split(':')[0]),
          ['renewal.credential'],
        );
      });
    });

    describe('a renewal keeps to the strictest maxExpirationSeconds of the policies that allow the identity', () => {
      const overlapping = policyFile(`
policies:
  - name: short-lived
    bootstrap: { groups: ['${GROUP_A}'] }
    identity: { commonNames: [agent-a], organizations: [team-a] }
    renewal: false
    maxExpirationSeconds: 3600
  - name: broad
    identity: { commonNames: ['agent-*'], organizations: ['team-*'] }
    maxExpirationSeconds: 86400
`);

      it('an identity first issued under a short-lived policy cannot renew for longer under a broader one', () => {
        const decision = decided(evaluate(facts({ requester: RENEWING_A, expirationSeconds: 7200 }), overlapping));
        if (decision.result !== 'denied') assert.fail(JSON.stringify(decision));
        assert.deepEqual(
          decision.findings.map((finding) => [finding.policy, finding.check, finding.message]),
          [
            [
              'broad',
              'spec.expirationSeconds',
              '7200 is above the maximum of 3600 of policy short-lived, which also allows this identity: a renewal keeps to the strictest',
            ],
          ],
        );
      });

      it('within the strictest bound the renewal is approved', () => {
        assert.equal(
          decided(evaluate(facts({ requester: RENEWING_A, expirationSeconds: 3600 }), overlapping)).result,
          'approved',
        );
      });

      it('a policy that does not allow the identity (another O) does not bound it', () => {
        const renewingB: Requester = { ...RENEWING_A, username: 'agent-b', groups: ['team-b'] };
        const request = { shape: { subject: subject('agent-b', ['team-b']) }, expirationSeconds: 7200 };
        assert.equal(decided(evaluate(facts({ ...request, requester: renewingB }), overlapping)).result, 'approved');
      });

      it('a first certificate is bounded by its own policy only', () => {
        const firstUnderBroad = policyFile(`
policies:
  - name: short-lived
    identity: { commonNames: [agent-a], organizations: [team-a] }
    maxExpirationSeconds: 3600
  - name: broad
    bootstrap: { groups: ['${GROUP_A}'] }
    identity: { commonNames: ['agent-*'], organizations: ['team-*'] }
`);
        assert.equal(decided(evaluate(facts({ expirationSeconds: 7200 }), firstUnderBroad)).result, 'approved');
      });
    });

    it('an identity cannot renew under a policy with renewal off', () => {
      const noRenewal: PolicyFile = {
        ...POLICIES,
        policies: POLICIES.policies.map((policy) => ({ ...policy, renewal: false })),
      };
      assert.deepEqual(evaluate(facts({ requester: RENEWING_A }), noRenewal), {
        result: 'unprocessed',
        reason: 'noPolicy',
      });
    });
  });

  describe('deciding before the request is read (issue 22)', () => {
    const files: Record<string, PolicyFile> = {
      policies: POLICIES,
      denyUnmatched: { ...POLICIES, denyUnmatched: true },
      'cluster-b as a dry run': {
        ...POLICIES,
        policies: POLICIES.policies.map((policy) => ({ ...policy, dryRun: policy.name === 'cluster-b' })),
      },
      'renewal off': { ...POLICIES, policies: POLICIES.policies.map((policy) => ({ ...policy, renewal: false })) },
      'catch-all renewal': policyFile(`policies: [{ name: anything, identity: { commonNames: ['*'] } }]`),
      'no policies': policyFile('policies: []'),
    };
    const requesters: Record<string, Requester> = {
      'bootstrap group A': BOOTSTRAP_A,
      'bootstrap user B': BOOTSTRAP_B,
      stranger: STRANGER,
      'renewing agent-a': RENEWING_A,
      'agent-c, named by no pattern': { username: 'agent-c', groups: ['system:authenticated'] },
      'a system: user': { username: 'system:kube-controller-manager', groups: ['system:authenticated'] },
    };
    const requests = {
      valid: requestPem({ subject: subject('agent-a', ['team-a']) }),
      '1,400 extensions': requestPem({ extensions: emptyExtensions(1_400) }),
      junk: 'not a request at all',
    };
    const dropRequest = (decision: Evaluation) =>
      decision.result === 'unprocessed' || (decision.result === 'denied' && decision.policy === undefined);

    for (const [fileName, file] of Object.entries(files))
      for (const [requesterName, requester] of Object.entries(requesters))
        it(`${fileName}, ${requesterName}: decided unread exactly when no policy could apply, as evaluate decides`, () => {
          for (const signerName of [SIGNER, 'example.com/other']) {
            const unread = decideUnread(file, signerName, requester);
            for (const pem of Object.values(requests)) {
              const evaluation = evaluate(facts({ pem, requester, signerName }), file);
              if (unread === undefined)
                assert.ok(!dropRequest(evaluation), `a policy applies: ${JSON.stringify(evaluation)}`);
              else assert.deepEqual(unread, evaluation, 'the same decision whatever the request holds');
            }
          }
        });

    it('names which requesters a policy could apply to: by bootstrap user or group, or by a renewing username', () => {
      assert.equal(decideUnread(POLICIES, SIGNER, BOOTSTRAP_A), undefined);
      assert.equal(decideUnread(POLICIES, SIGNER, BOOTSTRAP_B), undefined);
      assert.equal(decideUnread(POLICIES, SIGNER, RENEWING_A), undefined);
      assert.deepEqual(decideUnread(POLICIES, SIGNER, STRANGER), { result: 'unprocessed', reason: 'noPolicy' });
      assert.deepEqual(decideUnread(POLICIES, 'example.com/other', BOOTSTRAP_A), {
        result: 'unprocessed',
        reason: 'otherSigner',
      });
    });
  });

  describe('dry run', () => {
    const dryRunB: PolicyFile = {
      ...POLICIES,
      policies: POLICIES.policies.map((policy) => ({ ...policy, dryRun: policy.name === 'cluster-b' })),
    };

    it('a dry-run policy decides when no live policy applies, and says so', () => {
      const approved = decided(
        evaluate(facts({ requester: BOOTSTRAP_B, shape: { subject: subject('agent-b') } }), dryRunB),
      );
      assert.deepEqual(approved, {
        result: 'approved',
        policy: 'cluster-b',
        path: 'firstCertificate',
        dryRun: true,
        identity: { commonName: 'agent-b', organizations: [] },
      });
      assert.equal(eventFor(approved).reason, 'DryRunApproved');
      const denied = decided(
        evaluate(facts({ requester: BOOTSTRAP_B, shape: { subject: subject('agent-x') } }), dryRunB),
      );
      assert.equal(denied.result, 'denied');
      assert.equal(denied.dryRun, true);
      assert.equal(eventFor(denied).message, 'dry run: would deny: failed identity.commonName');
    });

    it('a live policy takes precedence over a dry-run one', () => {
      const both: PolicyFile = {
        ...POLICIES,
        policies: [{ ...(POLICIES.policies[0] ?? assert.fail()), name: 'trial', dryRun: true }, ...POLICIES.policies],
      };
      const decision = decided(evaluate(facts(), both));
      assert.equal(decision.result, 'approved');
      assert.deepEqual([decision.policy, decision.dryRun], ['cluster-a', false]);
    });

    it('a dry-run policy is not a match for denyUnmatched: the request is left to the dry run', () => {
      const decision = decided(
        evaluate(facts({ requester: BOOTSTRAP_B, shape: { subject: subject('agent-b') } }), {
          ...dryRunB,
          denyUnmatched: true,
        }),
      );
      assert.deepEqual([decision.result, 'dryRun' in decision && decision.dryRun], ['approved', true]);
    });
  });

  describe('SubjectAccessReview', () => {
    const reviewed = policyFile(`
policies:
  - name: reviewed
    bootstrap: { groups: ['${GROUP_A}'] }
    identity: { commonNames: [agent-a], organizations: [team-a] }
    subjectAccessReview: true
  - name: custom
    bootstrap: { groups: ['${GROUP_A}'] }
    identity: { commonNames: [agent-a], organizations: [team-a] }
    subjectAccessReview: { verb: use, group: policy.example.com, resource: approverpolicies, subresource: '', name: special }
`);

    it('a passing policy that wants a review returns what to ask, for each candidate in file order', () => {
      const evaluation = evaluate(facts(), reviewed);
      assert.equal(evaluation.result, 'review');
      assert.deepEqual(
        evaluation.candidates.map((candidate) => [candidate.policy, candidate.attributes]),
        [
          [
            'reviewed',
            {
              verb: 'create',
              group: 'certificates.k8s.io',
              resource: 'certificatesigningrequests',
              subresource: 'kubeconfig-rotator',
              name: 'reviewed',
            },
          ],
          [
            'custom',
            {
              verb: 'use',
              group: 'policy.example.com',
              resource: 'approverpolicies',
              subresource: '',
              name: 'special',
            },
          ],
        ],
      );
    });

    it('the first candidate the review allows approves', () => {
      const evaluation = evaluate(facts(), reviewed);
      assert.equal(evaluation.result, 'review');
      assert.deepEqual(completeReview(evaluation, [false, true]), {
        result: 'approved',
        policy: 'custom',
        path: 'firstCertificate',
        dryRun: false,
        identity: { commonName: 'agent-a', organizations: ['team-a'] },
      });
    });

    it('when every review refuses, the CSR is denied and each refusal names its check', () => {
      const evaluation = evaluate(facts(), reviewed);
      assert.equal(evaluation.result, 'review');
      const decision = completeReview(evaluation, [false, false]);
      assert.equal(decision.result, 'denied');
      assert.deepEqual(decision.findings, [
        {
          check: 'subjectAccessReview',
          policy: 'reviewed',
          message:
            'the requester may not create certificatesigningrequests/kubeconfig-rotator.certificates.k8s.io "reviewed"',
        },
        {
          check: 'subjectAccessReview',
          policy: 'custom',
          message: 'the requester may not use approverpolicies.policy.example.com "special"',
        },
      ]);
      assert.equal(decision.policy, 'reviewed');
    });

    it('a request failing the checks is denied without asking for a review', () => {
      assert.deepEqual(checksOf(evaluate(facts({ usages: ['server auth', 'client auth'] }), reviewed)), [
        { check: 'spec.usages', policy: undefined },
      ]);
    });

    it('a passing policy that needs no review approves without one', () => {
      const mixed: PolicyFile = {
        ...reviewed,
        policies: [...reviewed.policies, { ...(POLICIES.policies[0] ?? assert.fail()), name: 'plain' }],
      };
      const decision = decided(evaluate(facts(), mixed));
      assert.equal(decision.result, 'approved');
      assert.equal(decision.policy, 'plain');
    });
  });

  describe('federated bootstrap identities (a source ServiceAccount token the target maps to a user)', () => {
    const federated = policyFile(`
policies:
  - name: west
    bootstrap: { federatedUsers: ['source-west:system:serviceaccount:agents:*'] }
    identity: { commonNames: [agent-west] }
  - name: east
    bootstrap: { federatedUsers: ['source-east:system:serviceaccount:agents:admiralty'] }
    identity: { commonNames: [agent-east] }
`);
    const mapped = (user: string): Requester => ({
      username: user,
      groups: [`${user.slice(0, user.indexOf(':') + 1)}system:serviceaccounts`, 'system:authenticated'],
    });
    const west = mapped('source-west:system:serviceaccount:agents:admiralty');
    const east = mapped('source-east:system:serviceaccount:agents:admiralty');
    const westIdentity = { shape: { subject: subject('agent-west') } };

    it("a user matching the source's pattern gets a first certificate of that source's identity", () => {
      const decision = decided(evaluate(facts({ ...westIdentity, requester: west }), federated));
      if (decision.result !== 'approved') assert.fail(`expected an approval, got ${JSON.stringify(decision)}`);
      assert.deepEqual([decision.policy, decision.path], ['west', 'firstCertificate']);
      assert.equal(decideUnread(federated, SIGNER, west), undefined);
    });

    it("another source's ServiceAccount asking for this source's identity is denied, with the reason", () => {
      const decision = evaluate(facts({ ...westIdentity, requester: east }), federated);
      assert.deepEqual(checksOf(decision), [{ check: 'identity.commonName', policy: 'east' }]);
      assert.equal(
        decision.result === 'denied' ? decision.findings[0]?.message : undefined,
        '"agent-west" is not an identity this policy allows',
      );
    });

    it("a source's user that no policy names is left pending, or denied naming it with denyUnmatched", () => {
      const north = mapped('source-north:system:serviceaccount:agents:admiralty');
      assert.deepEqual(decideUnread(federated, SIGNER, north), { result: 'unprocessed', reason: 'noPolicy' });
      // The pattern is per source: west's pattern does not admit west's prefix under another namespace.
      const otherNamespace = mapped('source-west:system:serviceaccount:payments:admiralty');
      assert.deepEqual(decideUnread(federated, SIGNER, otherNamespace), { result: 'unprocessed', reason: 'noPolicy' });
      const strict = { ...federated, denyUnmatched: true };
      assert.deepEqual(decided(evaluate(facts({ ...westIdentity, requester: north }), strict)), {
        result: 'denied',
        findings: [
          {
            check: 'policy.unmatched',
            message: 'no policy applies to requester "source-north:system:serviceaccount:agents:admiralty"',
          },
        ],
        dryRun: false,
      });
    });
  });
});
