// PKCS#10 requests of every shape an attacker (or a careless tool) might send: any subject, SANs, extensions,
// attributes, key types, signature algorithms, and broken signatures. Built with forge.asn1 and node:crypto,
// the same way src/core/pki/csr.ts builds ours.
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { algorithmIdentifier, toPem } from '../../src/core/pki/csr.ts';
import { OID } from '../../src/core/pki/oids.ts';

const { asn1 } = forge;
const { Class, Type } = asn1;

export const ATTRIBUTE = {
  commonName: OID.commonName,
  organizationName: OID.organizationName,
  organizationalUnit: '2.5.4.11',
  country: '2.5.4.6',
  serialNumber: '2.5.4.5',
  emailAddress: '1.2.840.113549.1.9.1',
  challengePassword: '1.2.840.113549.1.9.7',
} as const;

export const EXTENSION = {
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
} as const;

export interface RawKeyPair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

export type KeyKind =
  'p256' | 'p384' | 'p521' | 'secp256k1' | 'rsa1024' | 'rsa2048' | 'rsa2048-e3' | 'rsa2048-e65539' | 'ed25519';

export function keyPair(kind: KeyKind): RawKeyPair {
  switch (kind) {
    case 'p256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    case 'p384':
      return generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    case 'p521':
      return generateKeyPairSync('ec', { namedCurve: 'secp521r1' });
    case 'secp256k1':
      return generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    case 'rsa1024':
      return generateKeyPairSync('rsa', { modulusLength: 1024 });
    case 'rsa2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'rsa2048-e3':
      return generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 });
    case 'rsa2048-e65539':
      return generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65_539 });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
  }
}

/** ASN.1 string types a subject value can be written as; the default is UTF8String. */
export type StringType = 'utf8' | 'printable' | 'ia5' | 'numeric' | 't61' | 'bmp' | 'universal';

/** One attribute of a relative distinguished name. */
export interface NameAttribute {
  readonly oid: string;
  readonly value: string;
  readonly type?: StringType;
}

// Universal tag numbers of the string types.
const STRING_TAGS: Record<StringType, number> = {
  utf8: 0x0c,
  printable: 0x13,
  ia5: 0x16,
  numeric: 0x12,
  t61: 0x14,
  bmp: 0x1e,
  universal: 0x1c,
};

/** The value's bytes as its type encodes them: one byte per character, UTF-16BE or UTF-32BE code units. */
function encodeString(value: string, type: StringType): string {
  switch (type) {
    case 'utf8':
      return forge.util.encodeUtf8(value);
    case 'bmp':
      return Buffer.from(value, 'utf16le').swap16().toString('binary');
    case 'universal':
      return [...value].map(codePoint32).join('');
    default:
      return Buffer.from(value, 'latin1').toString('binary');
  }
}

function codePoint32(char: string): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(char.codePointAt(0) ?? 0);
  return bytes.toString('binary');
}

// forge's Type enum names no NumericString, T61String or UniversalString: write the element as an OCTET
// STRING and read it back with the string type's tag.
function nameValue(attribute: NameAttribute): forge.asn1.Asn1 {
  const type = attribute.type ?? 'utf8';
  const written = asn1.toDer(
    asn1.create(Class.UNIVERSAL, Type.OCTETSTRING, false, encodeString(attribute.value, type)),
  );
  return asn1.fromDer(String.fromCharCode(STRING_TAGS[type]) + written.getBytes().slice(1));
}

export type GeneralName =
  | { readonly dns: string }
  | { readonly ip: readonly number[] }
  | { readonly email: string }
  | { readonly uri: string }
  | { readonly registeredId: string };

export interface RequestShape {
  /** Each inner array is one RDN; the default is CN=agent. */
  readonly subject?: readonly (readonly NameAttribute[])[];
  readonly keys?: RawKeyPair;
  /** Sign with this key instead of the request's own (no proof of possession). */
  readonly signingKey?: KeyObject;
  /** For RSA and ECDSA keys; ignored for Ed25519. */
  readonly digest?: 'sha1' | 'sha256' | 'sha384';
  /** Overrides the signature AlgorithmIdentifier written beside the signature. */
  readonly signatureOid?: string;
  readonly subjectAltNames?: readonly GeneralName[];
  readonly extensions?: readonly ExtensionShape[];
  /** Request attributes other than extensionRequest. */
  readonly attributes?: readonly { readonly oid: string; readonly value: string }[];
  readonly version?: number;
}

export function subject(commonName: string, organizations: readonly string[] = []): NameAttribute[][] {
  return [
    ...organizations.map((o) => [{ oid: ATTRIBUTE.organizationName, value: o }]),
    [{ oid: ATTRIBUTE.commonName, value: commonName }],
  ];
}

const sequence = (items: forge.asn1.Asn1[]) => asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, items);
const set = (items: forge.asn1.Asn1[]) => asn1.create(Class.UNIVERSAL, Type.SET, true, items);
const oid = (value: string) => asn1.create(Class.UNIVERSAL, Type.OID, false, asn1.oidToDer(value).getBytes());
const utf8 = (value: string) => asn1.create(Class.UNIVERSAL, Type.UTF8, false, forge.util.encodeUtf8(value));
const der = (value: forge.asn1.Asn1) => Buffer.from(asn1.toDer(value).getBytes(), 'binary');

// GeneralName choices are context tags [1] email, [2] DNS, [6] URI, [7] IP, [8] registeredID. forge types every
// tag number with its universal Type enum, so those are named by the universal types of the same number.
const GENERAL_NAME_TAG = {
  email: Type.BOOLEAN,
  dns: Type.INTEGER,
  uri: Type.OID,
  ip: Type.ODESC,
  registeredId: Type.EXTERNAL,
} as const;

function generalName(name: GeneralName): forge.asn1.Asn1 {
  const context = (tag: forge.asn1.Type, bytes: string) => asn1.create(Class.CONTEXT_SPECIFIC, tag, false, bytes);
  if ('dns' in name) return context(GENERAL_NAME_TAG.dns, name.dns);
  if ('email' in name) return context(GENERAL_NAME_TAG.email, name.email);
  if ('uri' in name) return context(GENERAL_NAME_TAG.uri, name.uri);
  if ('ip' in name) return context(GENERAL_NAME_TAG.ip, String.fromCharCode(...name.ip));
  return context(GENERAL_NAME_TAG.registeredId, asn1.oidToDer(name.registeredId).getBytes());
}

export interface ExtensionShape {
  readonly oid: string;
  readonly critical?: boolean;
  /** The DER the extension's OCTET STRING holds; absent: an empty OCTET STRING. */
  readonly value?: forge.asn1.Asn1;
}

/**
 * `count` distinct empty extensions (OIDs 2.100, 2.101...: 8 bytes of DER each): the cheapest way to make a small
 * request carry a lot (16 KiB of PEM holds about 1,400), which a parser must refuse by count, not by size.
 */
export function emptyExtensions(count: number): ExtensionShape[] {
  return Array.from({ length: count }, (_, index) => ({ oid: `2.${String(100 + index)}` }));
}

export function subjectAltNameExtension(names: readonly GeneralName[]): ExtensionShape {
  return { oid: EXTENSION.subjectAltName, value: sequence(names.map(generalName)) };
}

const SIGNATURE_OIDS: Record<string, string> = {
  'rsa:sha1': '1.2.840.113549.1.1.5',
  'rsa:sha256': OID.sha256WithRSAEncryption,
  'rsa:sha384': OID.sha384WithRSAEncryption,
  'ec:sha1': '1.2.840.10045.4.1',
  'ec:sha256': OID.ecdsaWithSHA256,
  'ec:sha384': OID.ecdsaWithSHA384,
  'ed25519:null': '1.3.101.112',
};

/** A PEM request of the given shape; by default a valid ECDSA P-256 request for CN=agent. */
export function requestPem(shape: RequestShape = {}): string {
  return toPem('CERTIFICATE REQUEST', requestDer(shape));
}

export function requestDer(shape: RequestShape = {}): Buffer {
  const keys = shape.keys ?? keyPair('p256');
  const family = keys.publicKey.asymmetricKeyType ?? 'ec';
  // Ed25519 signs the message itself: no digest applies.
  const digest = family === 'ed25519' ? null : (shape.digest ?? 'sha256');
  const extensions = [
    ...(shape.subjectAltNames === undefined ? [] : [subjectAltNameExtension(shape.subjectAltNames)]),
    ...(shape.extensions ?? []),
  ];
  const attributes = [
    ...(extensions.length === 0
      ? []
      : [
          sequence([
            oid(OID.extensionRequest),
            set([
              sequence(
                extensions.map((extension) =>
                  sequence([
                    oid(extension.oid),
                    ...(extension.critical === true
                      ? [asn1.create(Class.UNIVERSAL, Type.BOOLEAN, false, '\u00ff')]
                      : []),
                    asn1.create(
                      Class.UNIVERSAL,
                      Type.OCTETSTRING,
                      false,
                      extension.value === undefined ? '' : asn1.toDer(extension.value).getBytes(),
                    ),
                  ]),
                ),
              ),
            ]),
          ]),
        ]),
    ...(shape.attributes ?? []).map((attribute) => sequence([oid(attribute.oid), set([utf8(attribute.value)])])),
  ];
  const name = sequence(
    (shape.subject ?? subject('agent')).map((rdn) =>
      set(rdn.map((attribute) => sequence([oid(attribute.oid), nameValue(attribute)]))),
    ),
  );
  const info = sequence([
    asn1.create(Class.UNIVERSAL, Type.INTEGER, false, asn1.integerToDer(shape.version ?? 0).getBytes()),
    name,
    asn1.fromDer(keys.publicKey.export({ type: 'spki', format: 'der' }).toString('binary')),
    asn1.create(Class.CONTEXT_SPECIFIC, Type.NONE, true, attributes),
  ]);
  const signature = sign(digest, der(info), shape.signingKey ?? keys.privateKey);
  const signatureOid = shape.signatureOid ?? SIGNATURE_OIDS[`${family}:${String(digest)}`] ?? OID.ecdsaWithSHA256;
  return der(
    sequence([
      info,
      algorithmIdentifier(signatureOid, family === 'rsa'),
      asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, '\u0000' + signature.toString('binary')),
    ]),
  );
}

/** An extension value that is just some DER (for extensions whose content does not matter to a check). */
export function anyExtensionValue(): forge.asn1.Asn1 {
  return sequence([]);
}

export const KEY_USAGE_BIT = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

export const EXTENDED_KEY_USAGE = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
} as const;

/** A keyUsage extension value setting these bits (0 = digitalSignature), in DER (no trailing zero bits). */
export function keyUsageValue(bits: readonly number[]): forge.asn1.Asn1 {
  const length = bits.length === 0 ? 0 : Math.max(...bits) + 1;
  const bytes = Buffer.alloc(Math.ceil(length / 8));
  for (const bit of bits) bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) | (0x80 >> (bit & 7));
  const unused = bytes.length * 8 - length;
  return asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, String.fromCharCode(unused) + bytes.toString('binary'));
}

/** An extendedKeyUsage extension value listing these OIDs. */
export function extendedKeyUsageValue(oids: readonly string[]): forge.asn1.Asn1 {
  return sequence(oids.map(oid));
}

/**
 * An RSA public key with any modulus size and exponent, paired with an unrelated signing key: no real key
 * pair is needed to test that costly keys are refused before any signature is checked.
 */
export function unusualRsaKey(modulusBits: number, exponent: bigint): RawKeyPair {
  const integer = (value: bigint) => {
    let hex = value.toString(16);
    if (hex.length % 2 === 1) hex = `0${hex}`;
    if (Number.parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
    return asn1.create(Class.UNIVERSAL, Type.INTEGER, false, forge.util.hexToBytes(hex));
  };
  const modulus = (1n << BigInt(modulusBits - 1)) | 1n;
  const rsaPublicKey = sequence([integer(modulus), integer(exponent)]);
  const spki = sequence([
    sequence([oid(OID.rsaEncryption), asn1.create(Class.UNIVERSAL, Type.NULL, false, '')]),
    asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, '\u0000' + asn1.toDer(rsaPublicKey).getBytes()),
  ]);
  return {
    publicKey: createPublicKey({ key: der(spki), format: 'der', type: 'spki' }),
    privateKey: keyPair('rsa2048').privateKey,
  };
}
