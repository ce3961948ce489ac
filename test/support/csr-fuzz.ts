// Generators of random, near-valid and mutated CSRs and specs, shared by the fuzz test of the parser and the
// evaluator and the differential test against Kubernetes' own reading of a request.
import assert from 'node:assert/strict';
import { parseCertificationRequest, type ParsedCertificationRequest } from '../../src/core/pki/csr-parse.ts';
import { CREDENTIAL_ID_KEY } from '../../src/core/policy/renewal.ts';
import type { RequestFacts, Requester } from '../../src/core/policy/request-checks.ts';
import { parsePolicyFile, type PolicyFile } from '../../src/core/policy/schema.ts';
import {
  ATTRIBUTE,
  EXTENDED_KEY_USAGE,
  EXTENSION,
  KEY_USAGE_BIT,
  anyExtensionValue,
  extendedKeyUsageValue,
  keyPair,
  keyUsageValue,
  requestDer,
  requestPem,
  type ExtensionShape,
  type StringType,
  type GeneralName,
  type KeyKind,
  type NameAttribute,
  type RawKeyPair,
  type RequestShape,
} from './hostile-csr.ts';

/** mulberry32: small, fast and good enough to drive a fuzzer reproducibly. */
export function prng(seed: number) {
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
export type Random = ReturnType<typeof prng>;

export const POLICIES: PolicyFile = (() => {
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

export const NAMES = [
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
  // Names that look like allowed ones: a byte-order mark, zero-width and bidi control characters (Unicode Cf).
  '\ufeffagent-a',
  '\ufeffteam-a',
  'cluster-a-\u200bx',
  'shared-\u202emesh',
  'x\u2060-b',
  // A character outside the Basic Multilingual Plane: UTF-16 surrogates in a BMPString, which Go refuses.
  'cluster-a-\u{1f600}',
];
// Every string type a subject value can have; UTF8String most often, as real requests have it.
const STRING_TYPES: readonly (StringType | undefined)[] = [
  undefined,
  undefined,
  undefined,
  'printable',
  'ia5',
  'numeric',
  't61',
  'bmp',
  'universal',
];
export const GROUPS = [
  'system:bootstrappers',
  'system:bootstrappers:kcr:a',
  'system:bootstrappers:kcr:r',
  'system:bootstrappers:kcr:t',
  'system:authenticated',
  'team-a',
  'shared-mesh',
  'system:masters',
];
export const USERS = [
  'system:bootstrap:aaaaaa',
  'system:bootstrap:bbbbbb',
  'agent-a',
  'cluster-a-x',
  'x-b',
  'r-1',
  'system:serviceaccount:ns:sa',
  'nobody',
];
export const USAGES = [
  'client auth',
  'digital signature',
  'key encipherment',
  'server auth',
  'code signing',
  'any',
  'signing',
];
export const KEY_KINDS: KeyKind[] = [
  'p256',
  'p256',
  'p256',
  'p384',
  'rsa2048',
  'rsa2048-e3',
  'rsa2048-e65539',
  'rsa1024',
  'ed25519',
  'p521',
  'secp256k1',
];

export function keyPool(): Map<KeyKind, RawKeyPair[]> {
  const pool = new Map<KeyKind, RawKeyPair[]>();
  for (const kind of new Set(KEY_KINDS))
    pool.set(
      kind,
      Array.from({ length: kind.startsWith('rsa') ? 2 : 4 }, () => keyPair(kind)),
    );
  return pool;
}

/** A CN or O with a name drawn from NAMES, written as a random string type now and then. */
export function randomNameAttribute(random: Random, oid: string): NameAttribute {
  const type = random.chance(0.15) ? random.pick(STRING_TYPES) : undefined;
  return { oid, value: random.pick(NAMES), ...(type === undefined ? {} : { type }) };
}

export function randomSubject(random: Random): NameAttribute[][] {
  const rdns: NameAttribute[][] = [];
  const count = random.int(5);
  for (let i = 0; i < count; i++) rdns.push([randomNameAttribute(random, ATTRIBUTE.organizationName)]);
  if (!random.chance(0.05)) rdns.push([randomNameAttribute(random, ATTRIBUTE.commonName)]);
  if (random.chance(0.05)) rdns.push([randomNameAttribute(random, ATTRIBUTE.commonName)]);
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

export function randomShape(random: Random, pool: Map<KeyKind, RawKeyPair[]>): RequestShape {
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
    ...(random.chance(0.12) ? { extensions: [randomExtension(random)] } : {}),
    ...(random.chance(0.04) ? { attributes: [{ oid: ATTRIBUTE.challengePassword, value: 'pw' }] } : {}),
    ...(random.chance(0.02) ? { version: random.int(3) } : {}),
  };
}

/** A generated case parsed as the approver parses it, with a requester drawn when the case brings none. */
export function parsedCase(
  random: Random,
  pool: Map<KeyKind, RawKeyPair[]>,
  seeds: readonly Buffer[],
): { readonly kind: Kind; readonly input: string | Uint8Array; readonly facts: RequestFacts } {
  const generated = randomCase(random, pool, seeds);
  const request = parseCertificationRequest(generated.input);
  const requester = generated.requester ?? randomRequester(random, request.ok ? request.request : undefined);
  return { kind: generated.kind, input: generated.input, facts: { ...generated.facts, request, requester } };
}

/** keyUsage and extendedKeyUsage asking for assorted usages (or malformed), or an extension never allowed. */
function randomExtension(random: Random): ExtensionShape {
  const critical = random.chance(0.5);
  switch (random.int(4)) {
    case 0:
      return {
        oid: EXTENSION.keyUsage,
        critical,
        value: keyUsageValue(Object.values(KEY_USAGE_BIT).filter(() => random.chance(0.4))),
      };
    case 1:
      return {
        oid: EXTENSION.extKeyUsage,
        critical,
        value: extendedKeyUsageValue(Object.values(EXTENDED_KEY_USAGE).filter(() => random.chance(0.4))),
      };
    default:
      return {
        oid: random.pick([EXTENSION.keyUsage, EXTENSION.extKeyUsage, EXTENSION.basicConstraints, '1.2.3.4.5']),
        critical,
        value: anyExtensionValue(),
      };
  }
}

/** Well-formed, correctly signed requests with assorted subjects and keys: the material for mutations. */
export function mutationSeeds(random: Random, pool: Map<KeyKind, RawKeyPair[]>): Buffer[] {
  return Array.from({ length: 16 }, () =>
    requestDer({ subject: randomSubject(random), keys: random.pick(pool.get(random.pick(KEY_KINDS)) ?? []) }),
  );
}

/** Byte-level damage to a valid DER request: flips, overwrites, insertions, deletions, truncation, splices. */
export function mutateBytes(random: Random, bytes: Buffer, other: Buffer): Buffer {
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

export function mutateText(random: Random, pem: string): string {
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

export function toPemText(der: Buffer): string {
  return `-----BEGIN CERTIFICATE REQUEST-----\n${(der.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

export const CLIENT_CERTIFICATE_ID = `X509SHA256=${'0123456789abcdef'.repeat(4)}`;

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

export type Kind = 'near-valid' | 'structured' | 'mutated-der' | 'mutated-pem' | 'random-bytes';

export interface GeneratedCase {
  readonly kind: Kind;
  readonly input: string | Uint8Array;
  readonly facts: Omit<RequestFacts, 'request' | 'requester'>;
  /** Set by near-valid cases; otherwise drawn after parsing. */
  readonly requester?: Requester;
}

// Identities each policy would allow, and who may ask for them: the raw material of near-valid cases.
export const VALID = [
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
export function nearValid(random: Random, pool: Map<KeyKind, RawKeyPair[]>): GeneratedCase {
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
            [randomNameAttribute(random, random.pick([ATTRIBUTE.commonName, ATTRIBUTE.organizationName]))],
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

export function randomCase(random: Random, pool: Map<KeyKind, RawKeyPair[]>, seeds: readonly Buffer[]): GeneratedCase {
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
