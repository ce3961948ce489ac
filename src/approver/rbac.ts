// Exactly the RBAC the approver needs, as the design lists it, and nothing more: read CSRs, write their
// approval for one signer, ask SubjectAccessReviews, record Events, hold its Lease.
export interface ApproverRbacOptions {
  /** Prefix of every object's name. */
  readonly name: string;
  readonly signerName: string;
  /** Where the approver's ServiceAccount and Lease live. */
  readonly namespace: string;
  /** Its Lease (--lease-name): the only one it may read or update. */
  readonly leaseName: string;
  readonly serviceAccount: string;
  readonly labels?: Readonly<Record<string, string>>;
}

const RBAC_GROUP = 'rbac.authorization.k8s.io';

interface Rule {
  readonly apiGroups: string[];
  readonly resources: string[];
  readonly verbs: string[];
  readonly resourceNames?: string[];
}

/** Events about cluster-scoped objects (CSRs) are recorded in this namespace. */
const CLUSTER_EVENTS_NAMESPACE = 'default';

export function approverRbac(options: ApproverRbacOptions) {
  const metadata = { name: options.name, labels: { ...options.labels } };
  const subjects = [{ kind: 'ServiceAccount', name: options.serviceAccount, namespace: options.namespace }];
  const rules = (...list: Rule[]) => list;
  const role = (namespace: string, roleRules: Rule[]) => ({
    role: { apiVersion: `${RBAC_GROUP}/v1`, kind: 'Role', metadata: { ...metadata, namespace }, rules: roleRules },
    roleBinding: {
      apiVersion: `${RBAC_GROUP}/v1`,
      kind: 'RoleBinding',
      metadata: { ...metadata, namespace },
      roleRef: { apiGroup: RBAC_GROUP, kind: 'Role', name: options.name },
      subjects,
    },
  });
  return {
    clusterRole: {
      apiVersion: `${RBAC_GROUP}/v1`,
      kind: 'ClusterRole',
      metadata,
      rules: rules(
        {
          apiGroups: ['certificates.k8s.io'],
          resources: ['certificatesigningrequests'],
          verbs: ['get', 'list', 'watch'],
        },
        { apiGroups: ['certificates.k8s.io'], resources: ['certificatesigningrequests/approval'], verbs: ['update'] },
        {
          apiGroups: ['certificates.k8s.io'],
          resources: ['signers'],
          resourceNames: [options.signerName],
          verbs: ['approve'],
        },
        { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
      ),
    },
    clusterRoleBinding: {
      apiVersion: `${RBAC_GROUP}/v1`,
      kind: 'ClusterRoleBinding',
      metadata,
      roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: options.name },
      subjects,
    },
    // Events on CSRs; patch bumps the count of a repeated event.
    events: role(
      CLUSTER_EVENTS_NAMESPACE,
      rules({ apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] }),
    ),
    // Its own Lease only, not kube-controller-manager's or any other in the namespace. RBAC cannot limit
    // create by name (the name is not known before the object exists): as Kubernetes grants its own
    // components, create on any Lease, which cannot take over one that exists.
    lease: role(
      options.namespace,
      rules(
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          resourceNames: [options.leaseName],
          verbs: ['get', 'update'],
        },
      ),
    ),
  };
}
