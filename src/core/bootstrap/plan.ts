// What `kubeconfig-rotator bootstrap` creates, as plain objects: in the target, a bootstrap token in an extra
// group for one source cluster and the RBAC that lets only that group request CSRs; in the source, a Secret
// holding the bootstrap kubeconfig. Server-side apply of the same plan converges to the same state.
import { stringify } from 'yaml';
import { renderKubeconfig } from '../kubeconfig/render.ts';
import { federatedBootstrapKubeconfig } from './federation.ts';
import {
  BOOTSTRAP_GROUP_PREFIX,
  bootstrapTokenSecret,
  bootstrapTokenString,
  csrRequesterRbac,
  type BootstrapToken,
} from './token.ts';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = { [MANAGED_BY_LABEL]: 'kubeconfig-rotator' } as const;
export const SOURCE_LABEL = 'kubeconfig-rotator.io/source';
/** The shared role; one binding per source cluster grants it to that source's bootstrap group. */
export const CSR_REQUESTER_ROLE = 'kubeconfig-rotator:csr-requester';
/** Key of the bootstrap kubeconfig in the source Secret. */
export const BOOTSTRAP_SECRET_KEY = 'kubeconfig';

export function bootstrapGroup(source: string): string {
  return `${BOOTSTRAP_GROUP_PREFIX}kubeconfig-rotator:${source}`;
}

export interface BootstrapPlanInput {
  /** Name of the source cluster (a DNS label): names the group, the binding and the labels. */
  readonly source: string;
  /** Name of the target cluster as the sidecar's config will call it. */
  readonly target: string;
  readonly token: BootstrapToken;
  readonly expiration: Date;
  /** The target API as the source's pods reach it. */
  readonly server: string;
  readonly caPem: string;
  /** The operator's target context's tls-server-name: the name the target's certificate is checked against. */
  readonly tlsServerName?: string | undefined;
  readonly sourceNamespace: string;
  readonly secretName: string;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface BootstrapPlan {
  readonly target: readonly KubeObject[];
  readonly source: readonly KubeObject[];
}

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

export function bootstrapPlan(input: BootstrapPlanInput): BootstrapPlan {
  const labels = { ...MANAGED_BY, [SOURCE_LABEL]: input.source };
  const group = bootstrapGroup(input.source);
  const tokenSecret = bootstrapTokenSecret(input.token, {
    expiration: input.expiration,
    extraGroups: [group],
    description: `kubeconfig-rotator bootstrap token for source cluster ${input.source}`,
    labels,
  });
  const { clusterRole, clusterRoleBinding } = csrRequesterRbac(CSR_REQUESTER_ROLE, group, MANAGED_BY);
  return {
    target: [
      // Secrets are applied with data, not stringData: server-side apply tracks data.
      {
        apiVersion: tokenSecret.apiVersion,
        kind: tokenSecret.kind,
        metadata: tokenSecret.metadata,
        type: tokenSecret.type,
        data: Object.fromEntries(Object.entries(tokenSecret.stringData).map(([key, value]) => [key, base64(value)])),
      },
      clusterRole,
      { ...clusterRoleBinding, metadata: { name: `kubeconfig-rotator:bootstrap:${input.source}`, labels } },
    ],
    source: sourceSecretObjects({
      ...input,
      token: { value: bootstrapTokenString(input.token), expiration: input.expiration },
    }),
  };
}

export interface SourceSecretInput {
  readonly source: string;
  readonly target: string;
  /** The target API as the source's pods reach it. */
  readonly server: string;
  readonly caPem: string;
  /** The operator's target context's tls-server-name: the name the target's certificate is checked against. */
  readonly tlsServerName?: string | undefined;
  readonly sourceNamespace: string;
  readonly secretName: string;
  /**
   * The first credential (a bootstrap token, a ServiceAccount token) and when it expires; none for a federated
   * bootstrap, whose pods bring their own source ServiceAccount token.
   */
  readonly token: { readonly value: string; readonly expiration: Date } | undefined;
}

/**
 * What every mode puts in the source: its namespace, and the Secret whose bootstrap kubeconfig sends the
 * sidecar to the target (verified with the target's CA), with the first token when there is one.
 */
export function sourceSecretObjects(input: SourceSecretInput): KubeObject[] {
  const endpoint = { server: input.server, caPem: input.caPem, tlsServerName: input.tlsServerName };
  const kubeconfig =
    input.token === undefined
      ? stringify(federatedBootstrapKubeconfig({ target: input.target, ...endpoint }))
      : renderKubeconfig({
          name: input.target,
          server: input.server,
          certificateAuthority: { pem: input.caPem },
          tlsServerName: input.tlsServerName,
          credential: { token: input.token.value },
        });
  const expiration =
    input.token === undefined
      ? {}
      : { annotations: { 'kubeconfig-rotator.io/bootstrap-token-expiration': input.token.expiration.toISOString() } };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: input.sourceNamespace, labels: { ...MANAGED_BY } } },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: input.secretName,
        namespace: input.sourceNamespace,
        labels: { ...MANAGED_BY, [SOURCE_LABEL]: input.source, 'kubeconfig-rotator.io/target': input.target },
        ...expiration,
      },
      type: 'Opaque',
      data: { [BOOTSTRAP_SECRET_KEY]: base64(kubeconfig) },
    },
  ];
}

// Keys of the token Secret that are not secret; everything else is redacted in --dry-run output.
const PUBLIC_KEYS = new Set([
  'token-id',
  'description',
  'expiration',
  'auth-extra-groups',
  'usage-bootstrap-authentication',
]);

/**
 * The plan for --dry-run output: Secrets shown with readable stringData, every credential replaced by a
 * marker.
 */
export function redactPlan(plan: BootstrapPlan): BootstrapPlan {
  const redact = (object: KubeObject): KubeObject => {
    // A Secret without data (a token lease) has nothing to hide.
    if (object.kind !== 'Secret' || !('data' in object)) return object;
    const { data, ...rest } = object as KubeObject & { data: Record<string, string> };
    const stringData = Object.fromEntries(
      Object.entries(data).map(([key, value]) => [
        key,
        PUBLIC_KEYS.has(key) ? Buffer.from(value, 'base64').toString('utf8') : '<redacted>',
      ]),
    );
    return { ...rest, stringData };
  };
  return { target: plan.target.map(redact), source: plan.source.map(redact) };
}
