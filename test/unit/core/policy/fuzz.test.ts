// Fuzzing the parser and the evaluator together with random and mutated requests and random CSR specs.
// Nothing may throw or hang, a decision must be the same when asked twice, and nothing may be approved
// that an independent restatement of the policy rules (below) does not allow.
// `npm run fuzz` runs 100,000 cases; `npm test` runs FUZZ_CASES (default 3,000). FUZZ_SEED repeats a run.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseCertificationRequest, type ParsedCertificationRequest } from '../../../../src/core/pki/csr-parse.ts';
import { CHECKS, sortFindings, type Approved, type Decision } from '../../../../src/core/policy/decision.ts';
import { completeReview, evaluate } from '../../../../src/core/policy/evaluate.ts';
import { CREDENTIAL_ID_KEY } from '../../../../src/core/policy/renewal.ts';
import type { RequestFacts, Requester } from '../../../../src/core/policy/request-checks.ts';
import { parsePolicyFile, type Policy, type PolicyFile } from '../../../../src/core/policy/schema.ts';
import {
  ATTRIBUTE,
  EXTENSION,
  anyExtensionValue,
  keyPair,
  requestDer,
  requestPem,
  type GeneralName,
  type KeyKind,
  type NameAttribute,
  type RawKeyPair,
  type RequestShape,
} from '../../../support/hostile-csr.ts';

/** mulberry32: small, fast and good enough to drive a fuzzer reproducibly. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => {
    if (items.length === 0) assert.fail('empty choice');
    return items[int(items.length)] as T;
  };
  const chance = (p: number) => next() < p;
  return { next, int, pick, chance };
}
type Random = ReturnType<typeof prng>;

const POLICIES: PolicyFile = (() => {
  const parsed = parsePolicyFile(`
policies:
  - name: cluster-a
    bootstrap: { groups: ['system:bootstrappers:kcr:a'] }
    identity: { commonNames: [agent-a, 'cluster-a-*'], organizations: [team-a, 'shared-*'] }
    maxExpirationSeconds: 3600
  - name: cluster-b
    bootstrap: { users: ['system:bootstrap:bbbbbb'] }
    identity: { commonNames: ['*-b'], organizations: [] }
    renewal: false
  - name: reviewed
    bootstrap: { groups: ['system:bootstrappers:kcr:r'] }
    identity: { commonNames: ['r-*'] }
    subjectAccessReview: true
  - name: trial
    dryRun: true
    bootstrap: { groups: ['system:bootstrappers:kcr:t'] }
    identity: { commonNames: ['*'], organizations: ['*'] }
`);
  assert.ok(parsed.ok);
  return parsed.value;
})();

const NAMES = [
  'agent-a',
  'cluster-a-x',
  'cluster-a-',
  'x-b',
  '-b',
  'r-1',
  'agent-b',
  'system:masters',
  'system:admin',
  'system:node:n1',
  'team-a',
  'shared-mesh',
  'shared-',
  'team-b',
  '',
  ' ',
  'a\nb',
  'ä-b',
  '*',
  'cluster-a-\u0000',
  'r-',
];
const GROUPS = [
  'system:bootstrappers',
  'system:bootstrappers:kcr:a',
  'system:bootstrappers:kcr:r',
  'system:bootstrappers:kcr:t',
  'system:authenticated',
  'team-a',
  'shared-mesh',
  'system:masters',
];
const USERS = [
  'system:bootstrap:aaaaaa',
  'system:bootstrap:bbbbbb',
  'agent-a',
  'cluster-a-x',
  'x-b',
  'r-1',
  'system:serviceaccount:ns:sa',
  'nobody',
];
const USAGES = [
  'client auth',
  'digital signature',
  'key encipherment',
  'server auth',
  'code signing',
  'any',
  'signing',
];
const KEY_KINDS: KeyKind[] = ['p256', 'p256', 'p256', 'p384', 'rsa2048', 'rsa1024', 'ed25519', 'p521', 'secp256k1'];

function keyPool(): Map<KeyKind, RawKeyPair[]> {
  const pool = new Map<KeyKind, RawKeyPair[]>();
  for (const kind of new Set(KEY_KINDS))
    pool.set(
      kind,
      Array.from({ length: kind.startsWith('rsa') ? 2 : 4 }, () => keyPair(kind)),
    );
  return pool;
}

function randomSubject(random: Random): NameAttribute[][] {
  const rdns: NameAttribute[][] = [];
  const count = random.int(5);
  for (let i = 0; i < count; i++) rdns.push([{ oid: ATTRIBUTE.organizationName, value: random.pick(NAMES) }]);
  if (!random.chance(0.05)) rdns.push([{ oid: ATTRIBUTE.commonName, value: random.pick(NAMES) }]);
  if (random.chance(0.05)) rdns.push([{ oid: ATTRIBUTE.commonName, value: random.pick(NAMES) }]);
  if (random.chance(0.05))
    rdns.push([
      {
        oid: random.pick([
          ATTRIBUTE.organizationalUnit,
          ATTRIBUTE.country,
          ATTRIBUTE.serialNumber,
          ATTRIBUTE.emailAddress,
        ]),
        value: 'x',
      },
    ]);
  if (random.chance(0.05) && rdns.length > 1) rdns.push([...(rdns.pop() ?? []), ...(rdns.pop() ?? [])]);
  return rdns;
}

function randomShape(random: Random, pool: Map<KeyKind, RawKeyPair[]>): RequestShape {
  const keys = random.pick(pool.get(random.pick(KEY_KINDS)) ?? []);
  const names: GeneralName[] = [
    { dns: 'a.example' },
    { ip: [10, 0, 0, 1] },
    { email: 'a@b.c' },
    { uri: 'spiffe://x' },
    { registeredId: '1.2.3' },
  ];
  return {
    subject: randomSubject(random),
    keys,
    ...(random.chance(0.05) ? { signingKey: random.pick(pool.get('p256') ?? []).privateKey } : {}),
    ...(random.chance(0.05) && keys.publicKey.asymmetricKeyType !== 'ed25519'
      ? { digest: random.pick(['sha1', 'sha384'] as const) }
      : {}),
    ...(random.chance(0.08) ? { subjectAltNames: names.filter(() => random.chance(0.4)) } : {}),
    ...(random.chance(0.08)
      ? {
          extensions: [
            {
              oid: random.pick([EXTENSION.keyUsage, EXTENSION.extKeyUsage, EXTENSION.basicConstraints, '1.2.3.4.5']),
              critical: random.chance(0.5),
              value: anyExtensionValue(),
            },
          ],
        }
      : {}),
    ...(random.chance(0.04) ? { attributes: [{ oid: ATTRIBUTE.challengePassword, value: 'pw' }] } : {}),
    ...(random.chance(0.02) ? { version: random.int(3) } : {}),
  };
}

/** Byte-level damage to a valid DER request: flips, overwrites, insertions, deletions, truncation, splices. */
function mutateBytes(random: Random, bytes: Buffer, other: Buffer): Buffer {
  let out = Buffer.from(bytes);
  const rounds = 1 + random.int(4);
  for (let round = 0; round < rounds; round++) {
    const at = random.int(Math.max(1, out.length));
    switch (random.int(6)) {
      case 0:
        out[at] = (out[at] ?? 0) ^ (1 << random.int(8));
        break;
      case 1:
        out[at] = random.pick([0x00, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0xff, 0x30, 0x31, 0x06, 0xa0]);
        break;
      case 2:
        out = Buffer.concat([
          out.subarray(0, at),
          Buffer.from(Array.from({ length: 1 + random.int(8) }, () => random.int(256))),
          out.subarray(at),
        ]);
        break;
      case 3:
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + random.int(8))]);
        break;
      case 4:
        out = out.subarray(0, at);
        break;
      default:
        out = Buffer.concat([out.subarray(0, at), other.subarray(random.int(other.length))]);
    }
  }
  return out;
}

function mutateText(random: Random, pem: string): string {
  const lines = pem.split('\n');
  switch (random.int(6)) {
    case 0:
      return pem + pem;
    case 1:
      return `${pem}${random.pick(['garbage', '-----END CERTIFICATE REQUEST-----', '\u0000', 'ä'])}\n`;
    case 2:
      return lines.filter((_, index) => index !== 1 + random.int(Math.max(1, lines.length - 2))).join('\n');
    case 3:
      return pem.replace(
        random.pick(['CERTIFICATE REQUEST', 'BEGIN', 'END']),
        random.pick(['CERTIFICATE', 'NEW CERTIFICATE REQUEST', 'PRIVATE KEY', '']),
      );
    case 4:
      return pem.replace(/[A-Za-z0-9+/]/, random.pick(['!', '=', ' ', '\t', '.']));
    default:
      return `Proc-Type: 4,ENCRYPTED\n${pem}`;
  }
}

function toPemText(der: Buffer): string {
  return `-----BEGIN CERTIFICATE REQUEST-----\n${(der.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

const CLIENT_CERTIFICATE_ID = `X509SHA256=${'0123456789abcdef'.repeat(4)}`;

/** What the apiserver records of a renewing requester's credential: mostly a certificate, sometimes not. */
function renewalExtra(random: Random): Pick<Requester, 'extra'> {
  const credential = random.pick([[CLIENT_CERTIFICATE_ID], [CLIENT_CERTIFICATE_ID], ['JTI=abc'], [], undefined]);
  return credential === undefined ? {} : { extra: { [CREDENTIAL_ID_KEY]: credential } };
}

function randomRequester(random: Random, request: ParsedCertificationRequest | undefined): Requester {
  // Often the requester renewing the very identity it asks for, to reach the renewal rules.
  if (request !== undefined && random.chance(0.2)) {
    const groups = [...request.subject.organizations.filter(() => random.chance(0.9)), 'system:authenticated'];
    return { username: request.subject.commonNames[0] ?? '', groups, ...renewalExtra(random) };
  }
  return { username: random.pick(USERS), groups: GROUPS.filter(() => random.chance(0.3)) };
}

type Kind = 'near-valid' | 'structured' | 'mutated-der' | 'mutated-pem' | 'random-bytes';

interface GeneratedCase {
  readonly kind: Kind;
  readonly input: string | Uint8Array;
  readonly facts: Omit<RequestFacts, 'request' | 'requester'>;
  /** Set by near-valid cases; otherwise drawn after parsing. */
  readonly requester?: Requester;
}

// Identities each policy would allow, and who may ask for them: the raw material of near-valid cases.
const VALID = [
  {
    commonNames: ['agent-a', 'cluster-a-x', 'cluster-a-'],
    organizations: ['team-a', 'shared-mesh', 'shared-'],
    bootstrap: { username: 'system:bootstrap:aaaaaa', groups: ['system:bootstrappers', 'system:bootstrappers:kcr:a'] },
  },
  {
    commonNames: ['x-b', '-b', 'agent-b'],
    organizations: [],
    bootstrap: { username: 'system:bootstrap:bbbbbb', groups: ['system:bootstrappers'] },
  },
  {
    commonNames: ['r-1', 'r-'],
    organizations: [],
    bootstrap: { username: 'system:bootstrap:rrrrrr', groups: ['system:bootstrappers:kcr:r'] },
  },
  {
    commonNames: ['anything', 'ä'],
    organizations: ['any'],
    bootstrap: { username: 'system:bootstrap:tttttt', groups: ['system:bootstrappers:kcr:t'] },
  },
];

/** A request and spec one policy allows, then zero to two small departures from it. */
function nearValid(random: Random, pool: Map<KeyKind, RawKeyPair[]>): GeneratedCase {
  const valid = random.pick(VALID);
  const commonName = random.pick(valid.commonNames);
  const organizations = valid.organizations.filter(() => random.chance(0.5));
  const renewal = random.chance(0.3);
  let shape: RequestShape = {
    subject: [
      ...organizations.map((o) => [{ oid: ATTRIBUTE.organizationName, value: o }]),
      [{ oid: ATTRIBUTE.commonName, value: commonName }],
    ],
    keys: random.pick(pool.get(random.pick(['p256', 'p384', 'rsa2048'] as const)) ?? []),
  };
  let requester: Requester = renewal
    ? { username: commonName, groups: [...organizations, 'system:authenticated'], ...renewalExtra(random) }
    : valid.bootstrap;
  let usages = random.chance(0.5) ? ['client auth'] : ['digital signature', 'key encipherment', 'client auth'];
  let expirationSeconds: number | undefined = random.pick([600, 3600]);
  for (let departures = random.int(3); departures > 0; departures--) {
    const other = randomShape(random, pool);
    switch (random.int(8)) {
      case 0:
        shape = { ...shape, keys: other.keys ?? shape.keys ?? assert.fail() };
        break;
      case 1:
        shape = { ...shape, subject: other.subject ?? [] };
        break;
      case 2:
        shape = { ...other, subject: shape.subject ?? [], keys: shape.keys ?? assert.fail() };
        break;
      case 3:
        requester = random.chance(0.5)
          ? { username: random.pick(USERS), groups: requester.groups }
          : { ...requester, groups: GROUPS.filter(() => random.chance(0.3)) };
        break;
      case 4:
        usages = USAGES.filter(() => random.chance(0.4));
        break;
      case 5:
        expirationSeconds = random.pick([undefined, 599, 3601, 86_400, 86_401]);
        break;
      case 6:
        shape = {
          ...shape,
          subject: [
            ...(shape.subject ?? []),
            [{ oid: random.pick([ATTRIBUTE.commonName, ATTRIBUTE.organizationName]), value: random.pick(NAMES) }],
          ],
        };
        break;
      default:
        shape = { ...shape, signingKey: random.pick(pool.get('p256') ?? []).privateKey };
    }
  }
  return {
    kind: 'near-valid',
    input: requestPem(shape),
    requester,
    facts: {
      signerName: POLICIES.signerName,
      usages,
      ...(expirationSeconds === undefined ? {} : { expirationSeconds }),
    },
  };
}

function randomCase(random: Random, pool: Map<KeyKind, RawKeyPair[]>, seeds: readonly Buffer[]): GeneratedCase {
  const roll = random.next();
  if (roll < 0.35) return nearValid(random, pool);
  let kind: Kind;
  let input: string | Uint8Array;
  if (roll < 0.6) {
    kind = 'structured';
    input = requestPem(randomShape(random, pool));
  } else if (roll < 0.8) {
    kind = 'mutated-der';
    input = toPemText(mutateBytes(random, random.pick(seeds), random.pick(seeds)));
  } else if (roll < 0.92) {
    kind = 'mutated-pem';
    input = mutateText(random, toPemText(random.pick(seeds)));
  } else {
    kind = 'random-bytes';
    input = Buffer.from(Array.from({ length: random.int(random.chance(0.2) ? 20_000 : 600) }, () => random.int(256)));
  }
  const usages = random.chance(0.7) ? ['digital signature', 'client auth'] : USAGES.filter(() => random.chance(0.3));
  const expirationSeconds = random.chance(0.7) ? 3600 : random.pick([undefined, 0, 599, 600, 3601, 86_400, 86_401, -1]);
  return {
    kind,
    input,
    facts: {
      signerName: random.chance(0.97) ? POLICIES.signerName : 'example.com/other',
      usages,
      ...(expirationSeconds === undefined ? {} : { expirationSeconds }),
    },
  };
}

// --- The oracle: what an approval requires, restated independently of src/core/policy. ---

function globToRegExp(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
    's',
  );
}

function allowedBy(patterns: readonly string[], value: string): boolean {
  return patterns.some((pattern) => globToRegExp(pattern).test(value));
}

function violations(approved: Approved, facts: RequestFacts, policy: Policy): string[] {
  const problems: string[] = [];
  const fail = (what: string) => problems.push(what);
  if (!facts.request.ok) return ['an unparseable request was approved'];
  const request = facts.request.request;
  const key = request.publicKey;
  if (!(
    (key.type === 'rsa' && key.bits >= 2048) ||
    (key.type === 'ec' && (key.curve === 'P-256' || key.curve === 'P-384'))
  ))
    fail(`key ${JSON.stringify(key)}`);
  if (request.subjectAltNames !== undefined) fail('subjectAltNames');
  if (
    request.extensions.some(
      (extension) => ![EXTENSION.keyUsage, EXTENSION.extKeyUsage].includes(extension.oid as '2.5.29.15'),
    )
  )
    fail('extensions');
  if (request.otherAttributes.length > 0) fail('attributes');
  const { commonNames, organizations, otherAttributes, multiValuedRdns } = request.subject;
  if (commonNames.length !== 1 || otherAttributes.length > 0 || multiValuedRdns > 0) fail('subject shape');
  const commonName = commonNames[0] ?? '';
  for (const name of [commonName, ...organizations]) {
    if (name.startsWith('system:')) fail(`system name ${name}`);
    if (
      name.trim() === '' ||
      [...name].some(
        (char) =>
          (char.codePointAt(0) ?? 0) < 0x20 ||
          ((char.codePointAt(0) ?? 0) >= 0x7f && (char.codePointAt(0) ?? 0) <= 0x9f),
      )
    )
      fail(`bad name ${JSON.stringify(name)}`);
  }
  if (
    !facts.usages.includes('client auth') ||
    facts.usages.some((usage) => !['client auth', 'digital signature', 'key encipherment'].includes(usage)) ||
    new Set(facts.usages).size !== facts.usages.length
  )
    fail('usages');
  if (
    facts.expirationSeconds === undefined ||
    facts.expirationSeconds < 600 ||
    facts.expirationSeconds > policy.maxExpirationSeconds
  )
    fail('expirationSeconds');
  if (facts.signerName !== POLICIES.signerName) fail('signer');
  if (
    !allowedBy(policy.identity.commonNames, commonName) ||
    !organizations.every((o) => allowedBy(policy.identity.organizations, o))
  )
    fail('identity');
  const { username, groups } = facts.requester;
  const bootstrap =
    policy.bootstrap.users.includes(username) || groups.some((group) => policy.bootstrap.groups.includes(group));
  const renewal =
    policy.renewal &&
    !username.startsWith('system:') &&
    allowedBy(policy.identity.commonNames, username) &&
    commonName === username &&
    organizations.every((o) => groups.includes(o)) &&
    facts.requester.extra?.[CREDENTIAL_ID_KEY]?.join() === CLIENT_CERTIFICATE_ID &&
    POLICIES.policies.every(
      (other) =>
        !allowedBy(other.identity.commonNames, commonName) ||
        !organizations.every((o) => allowedBy(other.identity.organizations, o)) ||
        (facts.expirationSeconds ?? Infinity) <= other.maxExpirationSeconds,
    );
  if (!bootstrap && !renewal) fail('requester');
  if (approved.dryRun !== policy.dryRun) fail('dry run');
  return problems;
}

describe('fuzzing the parser and the evaluator', () => {
  const cases = Number(process.env.FUZZ_CASES ?? 3_000);
  const seed = Number(process.env.FUZZ_SEED ?? randomInt(2 ** 31));

  it(
    `${String(cases)} random and mutated requests: no crash, no hang, nothing approved that the policy does not allow`,
    { timeout: 120_000 + cases * 10 },
    (t) => {
      t.diagnostic(`seed ${String(seed)} (FUZZ_SEED=${String(seed)} repeats this run)`);
      const random = prng(seed);
      const pool = keyPool();
      // Well-formed, correctly signed requests with assorted subjects and keys: the material for mutations.
      const seeds = Array.from({ length: 16 }, () =>
        requestDer({ subject: randomSubject(random), keys: random.pick(pool.get(random.pick(KEY_KINDS)) ?? []) }),
      );
      const kinds = new Map<string, number>();
      const results = new Map<string, number>();
      const started = performance.now();
      for (let i = 0; i < cases; i++) {
        const generated = randomCase(random, pool, seeds);
        const request = parseCertificationRequest(generated.input);
        const facts: RequestFacts = {
          ...generated.facts,
          request,
          requester: generated.requester ?? randomRequester(random, request.ok ? request.request : undefined),
        };
        const context = () => `case ${String(i)} (${generated.kind}, seed ${String(seed)})`;
        const evaluation = evaluate(facts, POLICIES);
        assert.deepEqual(evaluate(facts, POLICIES), evaluation, `${context()}: the same facts, another decision`);
        const decision: Decision =
          evaluation.result === 'review'
            ? completeReview(
                evaluation,
                evaluation.candidates.map(() => random.chance(0.5)),
              )
            : evaluation;
        if (decision.result === 'approved') {
          const policy =
            POLICIES.policies.find((entry) => entry.name === decision.policy) ??
            assert.fail(`${context()}: unknown policy`);
          assert.deepEqual(
            violations(decision, facts, policy),
            [],
            `${context()}: approved by ${decision.policy} although it must not be`,
          );
        }
        if (decision.result === 'denied') {
          assert.ok(decision.findings.length > 0, `${context()}: a denial without a reason`);
          assert.ok(
            decision.findings.every((finding) => CHECKS.includes(finding.check)),
            context(),
          );
          assert.deepEqual(
            sortFindings(
              decision.findings,
              POLICIES.policies.map((policy) => policy.name),
            ),
            decision.findings,
            `${context()}: findings out of order`,
          );
        }
        kinds.set(generated.kind, (kinds.get(generated.kind) ?? 0) + 1);
        const label = `${decision.result}${'dryRun' in decision && decision.dryRun ? ' (dry run)' : ''}${request.ok ? '' : ` [${request.stage}]`}`;
        results.set(label, (results.get(label) ?? 0) + 1);
      }
      const seconds = (performance.now() - started) / 1000;
      t.diagnostic(`${String(cases)} cases in ${seconds.toFixed(1)} s (${(cases / seconds).toFixed(0)}/s)`);
      t.diagnostic(`inputs: ${JSON.stringify(Object.fromEntries(kinds))}`);
      t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries([...results].sort()))}`);
      // The oracle must have had work to do: approvals happen, and the parser refused at every stage.
      assert.ok(
        (results.get('approved') ?? 0) > 0,
        'no approval at all: the generator is too hostile for the oracle to be tested',
      );
      if (cases >= 3_000)
        for (const stage of ['size', 'pem', 'der', 'signature'])
          assert.ok(
            [...results.keys()].some((label) => label.includes(`[${stage}]`)),
            `no refusal at stage ${stage}`,
          );
    },
  );
});
