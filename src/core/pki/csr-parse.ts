// Parsing an untrusted PKCS#10 request (RFC 2986) into facts a policy can judge. Strict on form: one PEM
// block and nothing else, bounded size and nesting, DER only, and the signature checked over the bytes as
// sent, and bounded counts of what it may carry. Never throws: every problem comes back as a sentence naming
// what is wrong. What it returns shares no memory with the input (a kept slice would pin a whole request).
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import {
  children,
  contextTag,
  DerCountError,
  DerError,
  decodeBoolean,
  decodeNamedBits,
  decodeOctetAlignedBitString,
  decodeOid,
  decodeSmallInteger,
  decodeString,
  expectTag,
  readElement,
  TAG,
  UnsupportedStringError,
  type DerElement,
  type DerLimits,
} from './der.ts';
import { OID } from './oids.ts';

export interface RequestLimits extends DerLimits {
  /** Largest accepted PEM text, in bytes. */
  readonly maxPemBytes: number;
  /** Most extensions in the extensionRequest. */
  readonly maxExtensions: number;
  /** Most request attributes (extensionRequest included), and most values of one attribute. */
  readonly maxAttributes: number;
  /** Most attributes in the subject (one per RDN in a well-formed request: CN and each O). */
  readonly maxSubjectAttributes: number;
  /** Most entries of a list inside an extension: subjectAltName names, extendedKeyUsage purposes. */
  readonly maxListEntries: number;
}

// A CSR from our sidecar is under 1 KiB (RSA-4096 about 1.7 KiB) and carries no attribute, no extension and
// one RDN for the CN and one per O (src/core/pki/csr.ts); tools add a few extensions (keyUsage,
// extendedKeyUsage, subjectAltName, basicConstraints, subjectKeyIdentifier) and at most a challengePassword.
// The counts bound what parsing a 16 KiB request may keep and cost: 16 KiB holds about 1,400 empty extensions.
// The nesting of a request is at most 7.
export const DEFAULT_REQUEST_LIMITS: RequestLimits = {
  maxPemBytes: 16 * 1024,
  maxDepth: 10,
  maxExtensions: 16,
  maxAttributes: 4,
  maxSubjectAttributes: 64,
  maxListEntries: 16,
};

export type PublicKeyFacts =
  | { readonly type: 'rsa'; readonly bits: number; readonly exponent: number }
  | { readonly type: 'ec'; readonly curve: string }
  | { readonly type: 'ed25519' | 'ed448' }
  | { readonly type: 'unsupported'; readonly algorithm: string };

export interface SubjectAltNames {
  readonly dnsNames: readonly string[];
  readonly emailAddresses: readonly string[];
  readonly uris: readonly string[];
  readonly ipAddresses: readonly string[];
  /** otherName, x400Address, directoryName, ediPartyName, registeredID. */
  readonly otherNames: number;
}

export interface ParsedCertificationRequest {
  readonly subject: {
    readonly commonNames: readonly string[];
    readonly organizations: readonly string[];
    /** OIDs of every other attribute in the subject (OU, C, serialNumber, emailAddress...). */
    readonly otherAttributes: readonly string[];
    /** RDNs holding more than one attribute. */
    readonly multiValuedRdns: number;
  };
  readonly publicKey: PublicKeyFacts;
  /** DER SubjectPublicKeyInfo, for comparing with a key we hold. */
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly signatureAlgorithm: string;
  readonly extensions: readonly { readonly oid: string; readonly critical: boolean }[];
  /** Names of the bits a keyUsage extension sets ("digitalSignature", "keyCertSign"... or "bit 9"). */
  readonly keyUsages?: readonly string[];
  /** OIDs an extendedKeyUsage extension lists. */
  readonly extendedKeyUsages?: readonly string[];
  /** Present when the request carries a subjectAltName extension. */
  readonly subjectAltNames?: SubjectAltNames;
  /** OIDs of request attributes other than extensionRequest (challengePassword...). */
  readonly otherAttributes: readonly string[];
}

/**
 * Where a refused request failed: its size, its PEM form, its DER structure, a CN or O string type Go reads
 * differently, its key, or its signature.
 */
export type ParseStage = 'size' | 'pem' | 'der' | 'subject' | 'key' | 'signature';

export type ParseResult =
  | { readonly ok: true; readonly request: ParsedCertificationRequest }
  | { readonly ok: false; readonly problem: string; readonly stage: ParseStage };

const PEM_LABEL = 'CERTIFICATE REQUEST';
// Problems are kept with a pending CSR and written into its Denied condition.
const MAX_PROBLEM_LENGTH = 512;
// A PEM label quoted in a problem: the requester's text, so only its start.
const MAX_QUOTED_LABEL = 40;
const SUBJECT_ALT_NAME = '2.5.29.17';
const KEY_USAGE = '2.5.29.15';
const EXTENDED_KEY_USAGE = '2.5.29.37';
// RFC 5280 4.2.1.3, in bit order.
const KEY_USAGE_BITS = [
  'digitalSignature',
  'contentCommitment',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
];

export function parseCertificationRequest(
  input: string | Uint8Array,
  limits: RequestLimits = DEFAULT_REQUEST_LIMITS,
): ParseResult {
  try {
    const der = decodePem(input, limits);
    return { ok: true, request: parseDer(der, limits) };
  } catch (error) {
    return { ok: false, ...refusal(error) };
  }
}

function refusal(error: unknown): { problem: string; stage: ParseStage } {
  // A message may quote part of the request: copied, so that it is not a slice of the request's text.
  const problem = (message: string) => Buffer.from(message.slice(0, MAX_PROBLEM_LENGTH)).toString();
  if (error instanceof RequestError) return { problem: problem(error.message), stage: error.stage };
  if (error instanceof DerCountError) return { problem: problem(error.message), stage: 'size' };
  if (error instanceof UnsupportedStringError) return { problem: problem(error.message), stage: 'subject' };
  if (error instanceof DerError) return { problem: problem(error.message), stage: 'der' };
  // Anything else is a bug in this parser, not in the request; still never let it escape as a crash.
  return {
    problem: problem(`unparseable request: ${error instanceof Error ? error.message : String(error)}`),
    stage: 'der',
  };
}

class RequestError extends Error {
  readonly stage: ParseStage;
  constructor(message: string, stage: ParseStage = 'der', options?: ErrorOptions) {
    super(message, options);
    this.stage = stage;
  }
}

function decodePem(input: string | Uint8Array, limits: RequestLimits): Uint8Array {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > limits.maxPemBytes)
    throw new RequestError(
      `request is ${String(size)} bytes, more than the limit of ${String(limits.maxPemBytes)}`,
      'size',
    );
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  if (!/^[\t\n\r\x20-\x7e]*$/.test(text))
    throw new RequestError('request PEM contains non-ASCII or control characters', 'pem');
  const blocks = [...text.matchAll(/-----BEGIN ([^-]*)-----/g)];
  if (blocks.length === 0) throw new RequestError('request has no PEM block', 'pem');
  if (blocks.length > 1)
    throw new RequestError(`request has ${String(blocks.length)} PEM blocks, expected exactly one`, 'pem');
  const match = /^\s*-----BEGIN ([^-]*)-----\r?\n([A-Za-z0-9+/=\r\n]*?)\r?\n?-----END ([^-]*)-----\s*$/.exec(text);
  if (match === null) {
    throw new RequestError(
      'request PEM is malformed (data outside the block, headers, or characters outside base64)',
      'pem',
    );
  }
  const [, label = '', body = '', endLabel = ''] = match;
  const quoted = (text: string) =>
    JSON.stringify(text.length > MAX_QUOTED_LABEL ? `${text.slice(0, MAX_QUOTED_LABEL)}...` : text);
  if (label !== PEM_LABEL) throw new RequestError(`PEM block is ${quoted(label)}, expected "${PEM_LABEL}"`, 'pem');
  if (endLabel !== label)
    throw new RequestError(`PEM block begins ${quoted(label)} but ends ${quoted(endLabel)}`, 'pem');
  const base64 = body.replace(/\r?\n/g, '');
  const der = Buffer.from(base64, 'base64');
  if (der.toString('base64') !== base64) throw new RequestError('request PEM body is not canonical base64', 'pem');
  return der;
}

function parseDer(der: Uint8Array, limits: RequestLimits): ParsedCertificationRequest {
  const outer = expectTag(readElement(der), TAG.SEQUENCE, 'CertificationRequest');
  const [info, algorithm, signatureElement, ...extra] = children(outer, 0, limits);
  if (extra.length > 0) throw new RequestError('CertificationRequest has more than three elements');
  expectTag(info, TAG.SEQUENCE, 'certificationRequestInfo');
  const signatureAlgorithm = parseAlgorithmIdentifier(
    expectTag(algorithm, TAG.SEQUENCE, 'signatureAlgorithm'),
    1,
    limits,
  );
  const signature = decodeOctetAlignedBitString(expectTag(signatureElement, TAG.BIT_STRING, 'signature'));

  const [version, name, spki, attributes, ...rest] = children(info as DerElement, 1, limits);
  if (rest.length > 0) throw new RequestError('certificationRequestInfo has more than four elements');
  if (decodeSmallInteger(expectTag(version, TAG.INTEGER, 'version')) !== 0)
    throw new RequestError('request version is not v1 (0)');
  const subject = parseName(expectTag(name, TAG.SEQUENCE, 'subject'), 2, limits);
  const spkiElement = expectTag(spki, TAG.SEQUENCE, 'subjectPKInfo');
  const { facts, key } = parsePublicKey(spkiElement, 2, limits);
  const { extensions, subjectAltNames, keyUsages, extendedKeyUsages, otherAttributes } = parseAttributes(
    expectTag(attributes, contextTag(0, true), 'attributes [0]'),
    2,
    limits,
  );

  checkSignature(signatureAlgorithm, facts, key, (info as DerElement).bytes, signature);
  return {
    subject,
    publicKey: facts,
    // A copy: a view would keep the whole request's bytes alive for as long as the facts are kept.
    subjectPublicKeyInfo: Uint8Array.from(spkiElement.bytes),
    signatureAlgorithm: signatureAlgorithm.oid,
    extensions,
    ...(subjectAltNames === undefined ? {} : { subjectAltNames }),
    ...(keyUsages === undefined ? {} : { keyUsages }),
    ...(extendedKeyUsages === undefined ? {} : { extendedKeyUsages }),
    otherAttributes,
  };
}

interface AlgorithmIdentifier {
  readonly oid: string;
  readonly parameters?: DerElement;
}

function parseAlgorithmIdentifier(element: DerElement, depth: number, limits: RequestLimits): AlgorithmIdentifier {
  const [oid, parameters, ...rest] = children(element, depth, limits);
  if (rest.length > 0)
    throw new RequestError(`algorithm identifier at offset ${String(element.offset)} has extra elements`);
  return { oid: decodeOid(expectTag(oid, TAG.OID, 'algorithm')), ...(parameters === undefined ? {} : { parameters }) };
}

export function parseName(
  element: DerElement,
  depth: number,
  limits: RequestLimits,
): ParsedCertificationRequest['subject'] {
  const commonNames: string[] = [];
  const organizations: string[] = [];
  const otherAttributes: string[] = [];
  let multiValuedRdns = 0;
  let attributes = 0;
  const count = { max: limits.maxSubjectAttributes, what: 'subject attributes' };
  for (const rdn of children(element, depth, limits, count)) {
    const values = children(expectTag(rdn, TAG.SET, 'relative distinguished name'), depth + 1, limits, count);
    if (values.length === 0)
      throw new RequestError(`empty relative distinguished name at offset ${String(rdn.offset)}`);
    if (values.length > 1) multiValuedRdns++;
    attributes += values.length;
    if (attributes > count.max)
      throw new DerCountError(`more than the limit of ${String(count.max)} ${count.what} (in the subject)`);
    for (const pair of values) {
      const [type, value, ...rest] = children(
        expectTag(pair, TAG.SEQUENCE, 'attribute type and value'),
        depth + 2,
        limits,
      );
      if (rest.length > 0 || value === undefined)
        throw new RequestError(`malformed subject attribute at offset ${String(pair.offset)}`);
      const oid = decodeOid(expectTag(type, TAG.OID, 'attribute type'));
      if (oid === OID.commonName) commonNames.push(decodeString(value, 'CN'));
      else if (oid === OID.organizationName) organizations.push(decodeString(value, 'O'));
      else otherAttributes.push(oid);
    }
  }
  return { commonNames, organizations, otherAttributes, multiValuedRdns };
}

const CURVES: Record<string, string> = {
  [OID.prime256v1]: 'P-256',
  [OID.secp384r1]: 'P-384',
  '1.3.132.0.35': 'P-521',
  '1.3.132.0.10': 'secp256k1',
};

function parsePublicKey(
  spki: DerElement,
  depth: number,
  limits: RequestLimits,
): { facts: PublicKeyFacts; key?: KeyObject } {
  const [algorithmElement, keyBits, ...rest] = children(spki, depth, limits);
  if (rest.length > 0) throw new RequestError('subjectPublicKeyInfo has extra elements');
  const algorithm = parseAlgorithmIdentifier(
    expectTag(algorithmElement, TAG.SEQUENCE, 'public key algorithm'),
    depth + 1,
    limits,
  );
  decodeOctetAlignedBitString(expectTag(keyBits, TAG.BIT_STRING, 'subjectPublicKey'));
  let curve: string | undefined;
  if (algorithm.oid === OID.ecPublicKey) {
    if (algorithm.parameters?.tag !== TAG.OID) throw new RequestError('EC public key does not name its curve', 'key');
    const curveOid = decodeOid(algorithm.parameters);
    curve = CURVES[curveOid] ?? curveOid;
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki.bytes), format: 'der', type: 'spki' });
  } catch {
    // A key this runtime cannot load (an unknown curve, say) is reported, not fatal: the policy denies it.
    return {
      facts: { type: 'unsupported', algorithm: curve === undefined ? algorithm.oid : `${algorithm.oid} (${curve})` },
    };
  }
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { facts: { type: 'rsa', ...checkRsaCost(key) }, key };
    case 'ec':
      return { facts: { type: 'ec', curve: curve ?? 'unknown' }, key };
    case 'ed25519':
    case 'ed448':
      return { facts: { type: key.asymmetricKeyType }, key };
    default:
      return { facts: { type: 'unsupported', algorithm: algorithm.oid }, key };
  }
}

// Verifying costs grow with the modulus and the public exponent, and both come from the requester: bound them
// before any signature is checked (Go's crypto/rsa, which the apiserver uses, refuses larger ones too).
const MAX_RSA_BITS = 16_384;
const MAX_RSA_EXPONENT = 0xffff_ffffn;

function checkRsaCost(key: KeyObject): { bits: number; exponent: number } {
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  const exponent = key.asymmetricKeyDetails?.publicExponent ?? 0n;
  if (bits > MAX_RSA_BITS)
    throw new RequestError(`RSA modulus of ${String(bits)} bits is larger than ${String(MAX_RSA_BITS)}`, 'key');
  if (exponent > MAX_RSA_EXPONENT) throw new RequestError('RSA public exponent is larger than 32 bits', 'key');
  return { bits, exponent: Number(exponent) };
}

function parseAttributes(element: DerElement, depth: number, limits: RequestLimits) {
  const extensions: { oid: string; critical: boolean }[] = [];
  const otherAttributes: string[] = [];
  let subjectAltNames: SubjectAltNames | undefined;
  let keyUsages: string[] | undefined;
  let extendedKeyUsages: string[] | undefined;
  let extensionRequests = 0;
  // Linear: a request at the limits is checked for duplicates in a few microseconds.
  const seen = new Set<string>();
  const attributeCount = { max: limits.maxAttributes, what: 'request attributes' };
  for (const attribute of children(element, depth, limits, attributeCount)) {
    const [type, values, ...rest] = children(expectTag(attribute, TAG.SEQUENCE, 'attribute'), depth + 1, limits);
    if (rest.length > 0) throw new RequestError(`attribute at offset ${String(attribute.offset)} has extra elements`);
    const oid = decodeOid(expectTag(type, TAG.OID, 'attribute type'));
    const valueList = children(expectTag(values, TAG.SET, 'attribute values'), depth + 2, limits, {
      max: limits.maxAttributes,
      what: 'values of one attribute',
    });
    if (oid !== OID.extensionRequest) {
      otherAttributes.push(oid);
      continue;
    }
    if (++extensionRequests > 1 || valueList.length !== 1)
      throw new RequestError('request has more than one extensionRequest');
    const list = expectTag(valueList[0], TAG.SEQUENCE, 'extensions');
    for (const extension of children(list, depth + 3, limits, { max: limits.maxExtensions, what: 'extensions' })) {
      const parts = children(expectTag(extension, TAG.SEQUENCE, 'extension'), depth + 4, limits);
      if (parts.length < 2 || parts.length > 3)
        throw new RequestError(`extension at offset ${String(extension.offset)} is malformed`);
      const extensionOid = decodeOid(expectTag(parts[0], TAG.OID, 'extension id'));
      const critical = parts.length === 3 ? decodeBoolean(expectTag(parts[1], TAG.BOOLEAN, 'critical')) : false;
      const value = expectTag(parts[parts.length - 1], TAG.OCTET_STRING, 'extension value');
      if (seen.has(extensionOid)) throw new RequestError(`extension ${extensionOid} appears twice`);
      seen.add(extensionOid);
      extensions.push({ oid: extensionOid, critical });
      const inner = () => readElement(value.contents, value.offset + value.bytes.length - value.contents.length);
      if (extensionOid === SUBJECT_ALT_NAME) subjectAltNames = parseGeneralNames(inner(), depth + 5, limits);
      else if (extensionOid === KEY_USAGE)
        keyUsages = decodeNamedBits(inner()).map((bit) => KEY_USAGE_BITS[bit] ?? `bit ${String(bit)}`);
      else if (extensionOid === EXTENDED_KEY_USAGE)
        extendedKeyUsages = children(expectTag(inner(), TAG.SEQUENCE, 'extendedKeyUsage'), depth + 5, limits, {
          max: limits.maxListEntries,
          what: 'extendedKeyUsage purposes',
        }).map(decodeOid);
    }
  }
  return { extensions, subjectAltNames, keyUsages, extendedKeyUsages, otherAttributes };
}

function parseGeneralNames(element: DerElement, depth: number, limits: RequestLimits): SubjectAltNames {
  const names = {
    dnsNames: [] as string[],
    emailAddresses: [] as string[],
    uris: [] as string[],
    ipAddresses: [] as string[],
    otherNames: 0,
  };
  const ascii = (name: DerElement) => Buffer.from(name.contents).toString('latin1');
  const list = expectTag(element, TAG.SEQUENCE, 'subjectAltName');
  for (const name of children(list, depth, limits, { max: limits.maxListEntries, what: 'subjectAltName names' })) {
    switch (name.tag) {
      case contextTag(1, false):
        names.emailAddresses.push(ascii(name));
        break;
      case contextTag(2, false):
        names.dnsNames.push(ascii(name));
        break;
      case contextTag(6, false):
        names.uris.push(ascii(name));
        break;
      case contextTag(7, false):
        names.ipAddresses.push(formatIp(name.contents));
        break;
      default:
        names.otherNames++;
    }
  }
  return names;
}

function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length === 16)
    return Buffer.from(bytes)
      .toString('hex')
      .replace(/(.{4})(?!$)/g, '$1:');
  return `(${String(bytes.length)}-byte address)`;
}

const SIGNATURES: Record<string, { family: 'rsa' | 'ec' | 'ed25519'; digest: string | null }> = {
  [OID.sha256WithRSAEncryption]: { family: 'rsa', digest: 'sha256' },
  [OID.sha384WithRSAEncryption]: { family: 'rsa', digest: 'sha384' },
  '1.2.840.113549.1.1.13': { family: 'rsa', digest: 'sha512' },
  [OID.ecdsaWithSHA256]: { family: 'ec', digest: 'sha256' },
  [OID.ecdsaWithSHA384]: { family: 'ec', digest: 'sha384' },
  '1.2.840.10045.4.3.4': { family: 'ec', digest: 'sha512' },
  '1.3.101.112': { family: 'ed25519', digest: null },
};

function checkSignature(
  algorithm: AlgorithmIdentifier,
  facts: PublicKeyFacts,
  key: KeyObject | undefined,
  signed: Uint8Array,
  signature: Uint8Array,
): void {
  const scheme = SIGNATURES[algorithm.oid];
  if (scheme === undefined)
    throw new RequestError(
      `signature algorithm ${algorithm.oid} is not supported (SHA-1, RSA-PSS and others are refused)`,
      'signature',
    );
  const nullOrAbsent =
    algorithm.parameters === undefined ||
    (algorithm.parameters.tag === TAG.NULL && algorithm.parameters.contents.length === 0);
  if (scheme.family === 'rsa' ? !nullOrAbsent : algorithm.parameters !== undefined) {
    throw new RequestError(`signature algorithm ${algorithm.oid} has unexpected parameters`, 'signature');
  }
  if (key === undefined)
    throw new RequestError(
      `signature cannot be checked: public key type ${facts.type === 'unsupported' ? facts.algorithm : facts.type} is not supported`,
      'key',
    );
  if (facts.type !== scheme.family)
    throw new RequestError(
      `signature algorithm ${algorithm.oid} does not match the ${facts.type} public key`,
      'signature',
    );
  let valid: boolean;
  try {
    valid = verify(scheme.digest, signed, key, signature);
  } catch (error) {
    throw new RequestError(
      `signature is malformed: ${error instanceof Error ? error.message : String(error)}`,
      'signature',
      { cause: error },
    );
  }
  if (!valid)
    throw new RequestError(
      "signature does not verify with the request's public key (no proof of possession)",
      'signature',
    );
}
