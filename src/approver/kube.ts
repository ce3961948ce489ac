// The approver's Kubernetes I/O: the CSR list+watch for one signer, writing a decision onto the approval
// subresource, and SubjectAccessReviews. Nothing here decides anything.
import {
  CertificatesV1Api,
  type KubeConfig,
  type V1CertificateSigningRequest,
  type V1SubjectAccessReview,
} from '@kubernetes/client-node';
import type { ReviewAttributes } from '../core/policy/evaluate.ts';
import type { Requester } from '../core/policy/request-checks.ts';
import { isConflict, isNotFound } from '../io/kube/errors.ts';
import { kubeListWatchSource, type ListWatchSource } from '../io/kube/informer.ts';
import type { ApproverClient } from './kube-client.ts';
import { csrRecord, type Condition, type DecisionWriter, type Reviewer } from './controller.ts';

export const CSR_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';

/** The CSRs of one signer; the apiserver filters them (spec.signerName is a selectable field of CSRs). */
export function csrSource(kubeConfig: KubeConfig, signerName: string): ListWatchSource<V1CertificateSigningRequest> {
  const api = kubeConfig.makeApiClient(CertificatesV1Api);
  return kubeListWatchSource({
    kubeConfig,
    path: CSR_PATH,
    fieldSelector: `spec.signerName=${signerName}`,
    list: (options) => api.listCertificateSigningRequest(options),
  });
}

export function kubeDecisionWriter(client: ApproverClient): DecisionWriter {
  const api = client.kubeConfig.makeApiClient(CertificatesV1Api);
  return {
    async write(csr, condition: Condition) {
      const name = csr.metadata?.name ?? '';
      const conditions = [...(csr.status?.conditions ?? []), { ...condition, status: 'True' }];
      try {
        // An update of the approval subresource carries the resourceVersion the decision was made at: if the CSR
        // changed since (another approver, a previous leader), the write fails with a conflict.
        await client.send('PUT', `${CSR_PATH}/${encodeURIComponent(name)}/approval`, {
          ...csr,
          apiVersion: 'certificates.k8s.io/v1',
          kind: 'CertificateSigningRequest',
          status: { ...csr.status, conditions },
        });
        return 'written';
      } catch (error) {
        if (isNotFound(error)) return 'gone';
        if (!isConflict(error)) throw error;
      }
      const current = await api.readCertificateSigningRequest({ name }).catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
      if (current === undefined) return 'gone';
      if (csrRecord(current).decided) return 'alreadyDecided';
      throw new Error(`CSR ${name} changed while being decided; deciding it again`);
    },
  };
}

export function kubeReviewer(client: ApproverClient): Reviewer {
  return {
    async allowed(requester: Requester, attributes: ReviewAttributes) {
      const review = (await client.send('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
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
      })) as V1SubjectAccessReview;
      return review.status?.allowed === true;
    },
  };
}
