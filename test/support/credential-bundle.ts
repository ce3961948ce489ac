// A complete credential set (certificate, matching key, CA) signed by a throwaway openssl CA, for the unit
// tests of what publishes it.
import type { Credential } from '../../src/core/credential/credential.ts';
import type { CredentialBundle } from '../../src/core/kubeconfig/bundle.ts';
import { buildCertificationRequest } from '../../src/core/pki/csr.ts';
import { generateKeyPair } from '../../src/core/pki/keys.ts';
import type { OpensslCa } from './openssl-ca.ts';

/** A set for target `name` whose certificate is valid from `notBefore` until `notAfter`. */
export function credentialBundle(
  ca: OpensslCa,
  validity: { notBefore: number; notAfter: number },
  name = 'east',
): CredentialBundle {
  const keys = generateKeyPair('ecdsa-p256');
  const certPem = ca.sign(buildCertificationRequest({ commonName: 'agent-a', organizations: ['agents'] }, keys), {
    notBefore: new Date(validity.notBefore),
    notAfter: new Date(validity.notAfter),
  });
  return {
    name,
    server: 'https://east.example:6443',
    caPem: ca.certPem,
    credential: { certPem, keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
    nextRotation: validity.notAfter - 600_000,
  };
}

type Holder = { readonly credential: Credential } | undefined;

/** The certificate PEM of a bundle, a stored set or a current credential (undefined for none or a token). */
export const certPemOf = (holder: Holder): string | undefined =>
  holder === undefined || 'token' in holder.credential ? undefined : holder.credential.certPem;

export const keyPemOf = (holder: Holder): string | undefined =>
  holder === undefined || 'token' in holder.credential ? undefined : holder.credential.keyPem;
