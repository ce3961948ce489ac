// What proves a renewal: the apiserver records, in the requester's extra, the credential it authenticated with.
// Since Kubernetes 1.32 the x509 authenticator sets `X509SHA256=<hex SHA-256 of the certificate's DER>`;
// ServiceAccount and OIDC tokens set `JTI=<token id>`; older apiservers and other authenticators set nothing.
import type { Requester } from './request-checks.ts';
import { RENEWAL_TRUST_USERNAME, type Policy } from './schema.ts';

export const CREDENTIAL_ID_KEY = 'authentication.kubernetes.io/credential-id';
const CLIENT_CERTIFICATE_ID = /^X509SHA256=[0-9a-f]{64}$/;
// A credential-id kind as shown in a message: the part before "=", never the identifier itself.
const CREDENTIAL_KIND = /^[A-Za-z0-9]{1,16}(?==)/;

export type RenewalCredential = 'clientCertificate' | 'unrecorded' | 'other';

export function renewalCredential(requester: Requester): RenewalCredential {
  const ids = requester.extra?.[CREDENTIAL_ID_KEY];
  if (ids === undefined || ids.length === 0) return 'unrecorded';
  const [id = ''] = ids;
  return ids.length === 1 && CLIENT_CERTIFICATE_ID.test(id) ? 'clientCertificate' : 'other';
}

/** Why this renewal is not proven by a client certificate, or undefined when it is (or the policy trusts names). */
export function renewalCredentialProblem(policy: Policy, requester: Requester): string | undefined {
  const credential = renewalCredential(requester);
  if (credential === 'clientCertificate') return undefined;
  if (credential === 'unrecorded')
    return policy.renewal === RENEWAL_TRUST_USERNAME
      ? undefined
      : `the apiserver recorded no ${CREDENTIAL_ID_KEY}, so nothing shows the requester used a client certificate (renewal: ${RENEWAL_TRUST_USERNAME} accepts the username alone)`;
  const [id = ''] = requester.extra?.[CREDENTIAL_ID_KEY] ?? [];
  const kind = CREDENTIAL_KIND.exec(id)?.[0];
  return `the requester authenticated with ${kind === undefined ? 'another credential' : `a ${kind} credential`}, not a client certificate`;
}
