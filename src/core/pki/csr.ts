// PKCS#10 certification requests (RFC 2986), encoded with forge.asn1 and signed with node:crypto, so RSA
// and ECDSA keys share one code path (node-forge itself cannot sign with ECDSA).
import { sign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { signatureSchemeFor, type KeyPair } from './keys.ts';
import { OID } from './oids.ts';
import type { Subject } from './subject.ts';

const { asn1 } = forge;
const { Class, Type } = asn1;
// Context-specific tag [0]. forge types every tag number with its universal Type enum, in which 0 is NONE.
const ATTRIBUTES_TAG = Type.NONE;

export function buildCertificationRequest(subject: Subject, keys: KeyPair): string {
  const info = certificationRequestInfo(subject, keys.publicKey);
  const infoDer = Buffer.from(asn1.toDer(info).getBytes(), 'binary');
  const scheme = signatureSchemeFor(keys.algorithm);
  const signature = sign(scheme.digest, infoDer, keys.privateKey);
  const request = sequence([info, algorithmIdentifier(scheme.oid, scheme.nullParameters), bitString(signature)]);
  return toPem('CERTIFICATE REQUEST', Buffer.from(asn1.toDer(request).getBytes(), 'binary'));
}

function certificationRequestInfo(subject: Subject, publicKey: KeyObject): forge.asn1.Asn1 {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return sequence([
    asn1.create(Class.UNIVERSAL, Type.INTEGER, false, asn1.integerToDer(0).getBytes()),
    encodeName(subject),
    asn1.fromDer(spki.toString('binary')),
    // attributes [0]: none; Kubernetes takes usages and lifetime from the CSR object, not the request.
    asn1.create(Class.CONTEXT_SPECIFIC, ATTRIBUTES_TAG, true, []),
  ]);
}

/** Name ::= SEQUENCE OF RelativeDistinguishedName; one single-valued RDN per O, then CN (as Go orders them). */
export function encodeName(subject: Subject): forge.asn1.Asn1 {
  const rdn = (oid: string, value: string) =>
    asn1.create(Class.UNIVERSAL, Type.SET, true, [
      sequence([oidValue(oid), asn1.create(Class.UNIVERSAL, Type.UTF8, false, forge.util.encodeUtf8(value))]),
    ]);
  return sequence([
    ...subject.organizations.map((o) => rdn(OID.organizationName, o)),
    rdn(OID.commonName, subject.commonName),
  ]);
}

export function algorithmIdentifier(oid: string, nullParameters: boolean): forge.asn1.Asn1 {
  const parts = [oidValue(oid)];
  if (nullParameters) parts.push(asn1.create(Class.UNIVERSAL, Type.NULL, false, ''));
  return sequence(parts);
}

export function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function sequence(items: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, items);
}

function oidValue(oid: string): forge.asn1.Asn1 {
  return asn1.create(Class.UNIVERSAL, Type.OID, false, asn1.oidToDer(oid).getBytes());
}

function bitString(bytes: Buffer): forge.asn1.Asn1 {
  // The leading 0 counts the unused bits of the last byte.
  return asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, '\u0000' + bytes.toString('binary'));
}
