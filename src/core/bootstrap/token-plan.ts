// What `kubeconfig-rotator bootstrap --credential token` creates: in the target, per source cluster, a
// ServiceAccount (the agent's identity there), the lease Secret every token of this source is bound to
// (deleting it revokes them all), and RBAC that lets the ServiceAccount request tokens for itself only; in
// the source, the Secret holding a bootstrap kubeconfig with the first such token (plan.ts, sourceSecretObjects).
import { MANAGED_BY, SOURCE_LABEL, type KubeObject } from './plan.ts';

export const DEFAULT_TOKEN_NAMESPACE = 'kubeconfig-rotator';
export const LEASE_SECRET_TYPE = 'kubeconfig-rotator.io/token-lease';

export interface TokenIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly leaseSecret: string;
  /** Role and RoleBinding: create serviceaccounts/token for the ServiceAccount itself. */
  readonly role: string;
}

/** The names of a source's objects in the target: one place, shared by bootstrap, revoke and the sidecar. */
export function tokenIdentity(source: string, namespace = DEFAULT_TOKEN_NAMESPACE): TokenIdentity {
  const serviceAccount = `kcr-${source}`;
  return {
    namespace,
    serviceAccount,
    leaseSecret: `${serviceAccount}-lease`,
    role: `${serviceAccount}-token-requester`,
  };
}

export function tokenTargetObjects(source: string, identity: TokenIdentity): KubeObject[] {
  const labels = { ...MANAGED_BY, [SOURCE_LABEL]: source };
  const { namespace } = identity;
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { ...MANAGED_BY } } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: identity.serviceAccount, namespace, labels } },
    // No data: only its existence (and uid) matters to the tokens bound to it.
    {
      apiVersion: 'v1',
      kind: 'Secret',
      type: LEASE_SECRET_TYPE,
      metadata: {
        name: identity.leaseSecret,
        namespace,
        labels,
        annotations: {
          'kubeconfig-rotator.io/lease-of': `${namespace}/${identity.serviceAccount}`,
          'kubeconfig-rotator.io/revoke': 'deleting this Secret invalidates every token of this source at once',
        },
      },
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: identity.role, namespace, labels },
      rules: [
        {
          apiGroups: [''],
          resources: ['serviceaccounts/token'],
          resourceNames: [identity.serviceAccount],
          verbs: ['create'],
        },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: identity.role, namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: identity.role },
      subjects: [{ kind: 'ServiceAccount', name: identity.serviceAccount, namespace }],
    },
  ];
}

/** What a token is bound to: it is refused once that object is gone (or has another uid). */
export interface BoundObject {
  readonly kind: 'Secret' | 'Pod';
  readonly name: string;
  readonly uid?: string | undefined;
}

/** A TokenRequest body; the bound object lives in the ServiceAccount's namespace. */
export function boundTokenRequest(
  boundTo: BoundObject | undefined,
  expirationSeconds: number,
  audiences: readonly string[] = [],
) {
  const ref =
    boundTo === undefined
      ? {}
      : {
          boundObjectRef: {
            apiVersion: 'v1',
            kind: boundTo.kind,
            name: boundTo.name,
            ...(boundTo.uid === undefined ? {} : { uid: boundTo.uid }),
          },
        };
  return {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds, audiences: [...audiences], ...ref },
  };
}

/** The TokenRequest body for a token bound to the lease Secret. */
export const tokenRequestBody = (leaseSecret: string, expirationSeconds: number, audiences: readonly string[] = []) =>
  boundTokenRequest({ kind: 'Secret', name: leaseSecret }, expirationSeconds, audiences);
