// The checks every policy shares: the request's form, key, subject and extensions, the CSR's usages and
// lifetime, and the ban on system identities. Each failing check is one finding; all of them run.
import type { ParseResult, ParsedCertificationRequest } from '../pki/csr-parse.ts';
import type { Finding, RequestedIdentity } from './decision.ts';
import { MIN_EXPIRATION_SECONDS } from './schema.ts';
import { isSystemName, quote } from './names.ts';

export interface Requester {
  readonly username: string;
  readonly groups: readonly string[];
  readonly uid?: string;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

/** What the evaluator knows about one CSR: its spec and its parsed (or refused) request. */
export interface RequestFacts {
  readonly signerName: string;
  readonly usages: readonly string[];
  readonly expirationSeconds?: number;
  readonly requester: Requester;
  readonly request: ParseResult;
}

const REQUIRED_USAGE = 'client auth';
// What kube-apiserver-client signing accepts beside client auth; anything else would be refused or misused.
const ALLOWED_USAGES = new Set([REQUIRED_USAGE, 'digital signature', 'key encipherment']);
const ALLOWED_CURVES = new Set(['P-256', 'P-384']);
const MIN_RSA_BITS = 2048;
// What every key generator uses (ours included); small exponents such as 3 are what attacks on RSA exploit.
const RSA_EXPONENT = 65_537;
// Signers copy only the subject and subjectAltName from a request, so key usage extensions that tools add are
// harmless; subjectAltName has its own check. What they ask for must still be what a client certificate is.
const TOLERATED_EXTENSIONS = new Set(['2.5.29.15', '2.5.29.37', '2.5.29.17']);
const ALLOWED_KEY_USAGES = new Set(['digitalSignature', 'keyEncipherment']);
const CLIENT_AUTH_EKU = '1.3.6.1.5.5.7.3.2';
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
// Format characters (BOM, zero-width, bidi controls) make one name look like another in every display.
const FORMAT_CHARACTERS = /\p{Cf}/u;

/** The distinct format characters of a name as code points ("U+FEFF, U+202E"), since they cannot be seen. */
function formatCharacters(name: string): string {
  const found = new Set(name.match(/\p{Cf}/gu));
  return [...found]
    .map((char) => `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`)
    .join(', ');
}

/** The identity a well-formed request asks for: exactly one CN, any number of O. */
export function requestedIdentity(request: ParseResult): RequestedIdentity | undefined {
  if (!request.ok || request.request.subject.commonNames.length !== 1) return undefined;
  const [commonName = ''] = request.request.subject.commonNames;
  return { commonName, organizations: request.request.subject.organizations };
}

export function sharedFindings(facts: RequestFacts): Finding[] {
  const findings: Finding[] = [];
  const add = (check: Finding['check'], message: string) => findings.push({ check, message });
  if (facts.request.ok) checkRequest(facts.request.request, add);
  else add(`request.${facts.request.stage}`, facts.request.problem);
  checkUsages(facts.usages, add);
  if (facts.expirationSeconds === undefined)
    add('spec.expirationSeconds', 'is not set: every certificate must have a bounded lifetime');
  else if (facts.expirationSeconds < MIN_EXPIRATION_SECONDS)
    add(
      'spec.expirationSeconds',
      `${String(facts.expirationSeconds)} is below the minimum of ${String(MIN_EXPIRATION_SECONDS)}`,
    );
  return findings;
}

type Add = (check: Finding['check'], message: string) => void;

function checkRequest(request: ParsedCertificationRequest, add: Add): void {
  checkKey(request.publicKey, add);
  checkSubject(request.subject, add);
  const sans = request.subjectAltNames;
  if (sans !== undefined) {
    const kinds = [
      ['DNS names', sans.dnsNames.length],
      ['IP addresses', sans.ipAddresses.length],
      ['email addresses', sans.emailAddresses.length],
      ['URIs', sans.uris.length],
      ['other names', sans.otherNames],
    ] as const;
    const present = kinds.filter(([, count]) => count > 0).map(([kind, count]) => `${kind} (${String(count)})`);
    add(
      'request.subjectAltNames',
      present.length === 0
        ? 'the request carries an empty subjectAltName extension'
        : `the request carries ${present.join(', ')}; no subjectAltName is allowed`,
    );
  }
  const extensions = request.extensions
    .filter((extension) => !TOLERATED_EXTENSIONS.has(extension.oid))
    .map((extension) => extension.oid);
  if (extensions.length > 0) add('request.extensions', `extensions ${extensions.join(', ')} are not allowed`);
  const keyUsages = (request.keyUsages ?? []).filter((usage) => !ALLOWED_KEY_USAGES.has(usage));
  if (keyUsages.length > 0)
    add(
      'request.extensions',
      `keyUsage asks for ${keyUsages.join(', ')}; only digitalSignature and keyEncipherment are allowed`,
    );
  const extendedKeyUsages = (request.extendedKeyUsages ?? []).filter((usage) => usage !== CLIENT_AUTH_EKU);
  if (extendedKeyUsages.length > 0)
    add(
      'request.extensions',
      `extendedKeyUsage asks for ${extendedKeyUsages.join(', ')}; only clientAuth (${CLIENT_AUTH_EKU}) is allowed`,
    );
  if (request.otherAttributes.length > 0)
    add(
      'request.attributes',
      `attributes ${request.otherAttributes.join(', ')} are not allowed (only extensionRequest)`,
    );
  for (const name of [...request.subject.commonNames, ...request.subject.organizations].filter(isSystemName)) {
    add('identity.system', `${quote(name)} is a system identity: never approved`);
  }
}

function checkKey(key: ParsedCertificationRequest['publicKey'], add: Add): void {
  switch (key.type) {
    case 'rsa':
      if (key.bits < MIN_RSA_BITS)
        add('request.key', `RSA key of ${String(key.bits)} bits; at least ${String(MIN_RSA_BITS)} required`);
      if (key.exponent !== RSA_EXPONENT)
        add('request.key', `RSA public exponent ${String(key.exponent)}; only ${String(RSA_EXPONENT)} is allowed`);
      return;
    case 'ec':
      if (!ALLOWED_CURVES.has(key.curve))
        add('request.key', `ECDSA curve ${key.curve} is not allowed (P-256 or P-384)`);
      return;
    case 'ed25519':
    case 'ed448':
      add('request.key', `${key.type} keys are not allowed (RSA or ECDSA P-256/P-384)`);
      return;
    case 'unsupported':
      add('request.key', `key algorithm ${key.algorithm} is not allowed (RSA or ECDSA P-256/P-384)`);
  }
}

function checkSubject(subject: ParsedCertificationRequest['subject'], add: Add): void {
  if (subject.commonNames.length !== 1)
    add('request.subject', `has ${String(subject.commonNames.length)} common names, expected exactly one`);
  if (subject.otherAttributes.length > 0)
    add('request.subject', `attributes ${subject.otherAttributes.join(', ')} are not allowed (only CN and O)`);
  if (subject.multiValuedRdns > 0) add('request.subject', 'has multi-valued relative distinguished names');
  for (const name of [...subject.commonNames, ...subject.organizations]) {
    if (name.trim() === '') add('request.subject', 'has an empty or blank CN or O');
    else if (CONTROL_CHARACTERS.test(name)) add('request.subject', `${quote(name)} contains control characters`);
    else if (FORMAT_CHARACTERS.test(name))
      add('request.subject', `${quote(name)} contains invisible format characters (${formatCharacters(name)})`);
  }
}

function checkUsages(usages: readonly string[], add: Add): void {
  if (!usages.includes(REQUIRED_USAGE)) add('spec.usages', `"${REQUIRED_USAGE}" is required`);
  const extra = [...new Set(usages.filter((usage) => !ALLOWED_USAGES.has(usage)))];
  if (extra.length > 0)
    add(
      'spec.usages',
      `${extra.map(quote).join(', ')} ${extra.length === 1 ? 'is' : 'are'} not allowed (only client auth, digital signature, key encipherment)`,
    );
  if (new Set(usages).size !== usages.length) add('spec.usages', 'lists a usage twice');
}
