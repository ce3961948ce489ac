// Key algorithms the sidecar can generate, and how each one signs.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { OID } from './oids.ts';

export const KEY_ALGORITHMS = ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

export interface KeyPair {
  readonly algorithm: KeyAlgorithm;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

export function generateKeyPair(algorithm: KeyAlgorithm): KeyPair {
  switch (algorithm) {
    case 'ecdsa-p256':
      return { algorithm, ...generateKeyPairSync('ec', { namedCurve: 'prime256v1' }) };
    case 'ecdsa-p384':
      return { algorithm, ...generateKeyPairSync('ec', { namedCurve: 'secp384r1' }) };
    case 'rsa-2048':
      return { algorithm, ...generateKeyPairSync('rsa', { modulusLength: 2048 }) };
    case 'rsa-3072':
      return { algorithm, ...generateKeyPairSync('rsa', { modulusLength: 3072 }) };
    case 'rsa-4096':
      return { algorithm, ...generateKeyPairSync('rsa', { modulusLength: 4096 }) };
  }
}

export interface SignatureScheme {
  /** Digest name for node:crypto sign/verify. */
  readonly digest: 'sha256' | 'sha384';
  /** AlgorithmIdentifier OID written beside the signature. */
  readonly oid: string;
  /** RSA AlgorithmIdentifiers carry an explicit NULL parameter; ECDSA ones carry none (RFC 5758). */
  readonly nullParameters: boolean;
}

// P-384 keys sign with SHA-384 so the digest is as strong as the curve; everything else uses SHA-256.
export function signatureSchemeFor(algorithm: KeyAlgorithm): SignatureScheme {
  switch (algorithm) {
    case 'ecdsa-p256':
      return { digest: 'sha256', oid: OID.ecdsaWithSHA256, nullParameters: false };
    case 'ecdsa-p384':
      return { digest: 'sha384', oid: OID.ecdsaWithSHA384, nullParameters: false };
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096':
      return { digest: 'sha256', oid: OID.sha256WithRSAEncryption, nullParameters: true };
  }
}

/** The key usages Kubernetes expects in a client CSR for this key type. */
export function clientUsagesFor(algorithm: KeyAlgorithm): string[] {
  const usages = ['digital signature', 'client auth'];
  // RSA keys may encipher a key exchange in TLS 1.2; ECDSA keys never do.
  if (algorithm.startsWith('rsa-')) usages.splice(1, 0, 'key encipherment');
  return usages;
}

/** The algorithm of an existing public key, when it is one we generate. */
export function keyAlgorithmOf(publicKey: KeyObject): KeyAlgorithm | undefined {
  const details = publicKey.asymmetricKeyDetails;
  if (publicKey.asymmetricKeyType === 'ec') {
    if (details?.namedCurve === 'prime256v1') return 'ecdsa-p256';
    if (details?.namedCurve === 'secp384r1') return 'ecdsa-p384';
    return undefined;
  }
  if (publicKey.asymmetricKeyType === 'rsa') {
    const candidate = `rsa-${String(details?.modulusLength)}`;
    return KEY_ALGORITHMS.find((algorithm) => algorithm === candidate);
  }
  return undefined;
}
