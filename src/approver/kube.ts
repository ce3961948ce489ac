// The approver's Kubernetes I/O: the CSR list+watch for one signer, writing a decision onto the approval
// subresource, and SubjectAccessReviews. Nothing here decides anything.
import type { V1CertificateSigningRequest, V1SubjectAccessReview } from '@kubernetes/client-node';
import { isDecided, withoutManagedFields, type WriteTarget } from '../core/policy/csr-record.ts';
import type { ReviewAttributes } from '../core/policy/evaluate.ts';
import type { Requester } from '../core/policy/request-checks.ts';
import { isConflict, isNotFound } from '../io/kube/errors.ts';
import type { ListWatchSource } from '../io/kube/informer.ts';
import { restListWatchSource, type KubeClient } from '../io/kube/rest.ts';
import type { Condition, DecisionWriter, Reviewer, WriteOutcome } from './controller.ts';

export const CSR_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
const SAR_PATH = '/apis/authorization.k8s.io/v1/subjectaccessreviews';

/** The CSRs of one signer; the apiserver filters them (spec.signerName is a selectable field of CSRs). */
export function csrSource(client: KubeClient, signerName: string): ListWatchSource<V1CertificateSigningRequest> {
  return restListWatchSource(client, CSR_PATH, { fieldSelector: `spec.signerName=${signerName}` });
}

export function kubeDecisionWriter(client: KubeClient): DecisionWriter {
  const read = (name: string) =>
    client
      .request<V1CertificateSigningRequest>('GET', `${CSR_PATH}/${encodeURIComponent(name)}`)
      .catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
  const changed = async (name: string, current?: V1CertificateSigningRequest | null): Promise<WriteOutcome> => {
    const now = current === null ? await read(name) : current;
    if (now === undefined) return 'gone';
    if (isDecided(now)) return 'alreadyDecided';
    throw new Error(`CSR ${name} changed while being decided; deciding it again`);
  };
  return {
    async write(target: WriteTarget, condition: Condition) {
      const { name, resourceVersion } = target;
      let { metadata } = target;
      if (metadata === undefined) {
        // Too large to keep in the cache: read again, and only if it is still the version that was judged.
        const current = await read(name);
        if (current?.metadata?.resourceVersion !== resourceVersion) return changed(name, current);
        metadata = withoutManagedFields(current.metadata);
      }
      try {
        // The approval subresource keeps the stored spec and status and takes only the conditions, so the request is
        // not sent back; the resourceVersion the decision was made at makes a write after any change (another
        // approver, a previous leader) fail with a conflict. Metadata is sent as it was: an update replaces it.
        await client.request('PUT', `${CSR_PATH}/${encodeURIComponent(name)}/approval`, {
          body: {
            apiVersion: 'certificates.k8s.io/v1',
            kind: 'CertificateSigningRequest',
            metadata: { ...metadata, name, resourceVersion },
            spec: {},
            status: { conditions: [...target.conditions, { ...condition, status: 'True' }] },
          },
        });
        return 'written';
      } catch (error) {
        if (isNotFound(error)) return 'gone';
        if (!isConflict(error)) throw error;
      }
      return changed(name, null);
    },
  };
}

export function kubeReviewer(client: KubeClient): Reviewer {
  return {
    async allowed(requester: Requester, attributes: ReviewAttributes) {
      const review = await client.request<V1SubjectAccessReview>('POST', SAR_PATH, {
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: requester.username,
            groups: [...requester.groups],
            ...(requester.uid === undefined ? {} : { uid: requester.uid }),
            ...(requester.extra === undefined
              ? {}
              : {
                  extra: Object.fromEntries(Object.entries(requester.extra).map(([key, values]) => [key, [...values]])),
                }),
            resourceAttributes: attributes,
          },
        },
      });
      return review.status?.allowed === true;
    },
  };
}
