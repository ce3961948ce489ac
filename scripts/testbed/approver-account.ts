// The approver's account in a target cluster, as its chart makes it, for the demo, tests and benchmarks: a
// namespace, the ServiceAccount, exactly the RBAC of src/approver/rbac.ts, and a kubeconfig file holding a
// token for that ServiceAccount (scripts/testbed/service-account.ts).
import { CoreV1Api, RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { approverRbac } from '../../src/approver/rbac.ts';
import { describeError, isConflict } from '../../src/io/kube/errors.ts';
import type { ClusterState } from './cluster.ts';
import { writeServiceAccountKubeconfig } from './service-account.ts';

const SERVICE_ACCOUNT = 'approver';

export interface ApproverAccountOptions {
  /** Holds the ServiceAccount and the approver's Lease; created unless it exists. */
  readonly namespace: string;
  /** Name of the RBAC objects, and of the Lease unless `leaseName` says. */
  readonly name: string;
  /** The approver's Lease, the only one its RBAC lets it read and update. */
  readonly leaseName?: string;
  readonly signerName: string;
  readonly tokenSeconds: number;
  /** Where the kubeconfig with the token is written. */
  readonly kubeconfig: string;
}

export interface ApproverAccount {
  readonly namespace: string;
  /** The Lease it may hold (--lease-name). */
  readonly leaseName: string;
  /** A kubeconfig file holding the ServiceAccount's token. */
  readonly kubeconfig: string;
  /** The same credential, for asserting what it may and may not do. */
  readonly token: string;
  /** Deletes the RBAC objects and the namespace. */
  delete(): Promise<void>;
}

/** Runs a create, keeping an object that already exists (a cluster left running by an earlier run). */
export async function createUnlessExists(what: string, create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (error) {
    if (!isConflict(error)) throw new Error(`creating ${what} failed: ${describeError(error)}`, { cause: error });
  }
}

export async function createApproverAccount(
  admin: KubeConfig,
  target: ClusterState,
  options: ApproverAccountOptions,
): Promise<ApproverAccount> {
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const { namespace, name } = options;
  await createUnlessExists(`namespace ${namespace}`, () =>
    core.createNamespace({ body: { metadata: { name: namespace } } }),
  );
  await createUnlessExists('the approver ServiceAccount', () =>
    core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: SERVICE_ACCOUNT } } }),
  );
  const leaseName = options.leaseName ?? name;
  const objects = approverRbac({
    name,
    signerName: options.signerName,
    namespace,
    leaseName,
    serviceAccount: SERVICE_ACCOUNT,
  });
  await createUnlessExists(`ClusterRole ${name}`, () => rbac.createClusterRole({ body: objects.clusterRole }));
  await createUnlessExists(`ClusterRoleBinding ${name}`, () =>
    rbac.createClusterRoleBinding({ body: objects.clusterRoleBinding }),
  );
  for (const { role, roleBinding } of [objects.lease, objects.events]) {
    await createUnlessExists(`Role ${role.metadata.namespace}/${name}`, () =>
      rbac.createNamespacedRole({ namespace: role.metadata.namespace, body: role }),
    );
    await createUnlessExists(`RoleBinding ${roleBinding.metadata.namespace}/${name}`, () =>
      rbac.createNamespacedRoleBinding({ namespace: roleBinding.metadata.namespace, body: roleBinding }),
    );
  }
  const token = await writeServiceAccountKubeconfig(target, {
    namespace,
    serviceAccount: SERVICE_ACCOUNT,
    tokenSeconds: options.tokenSeconds,
    kubeconfig: options.kubeconfig,
  });
  return {
    namespace,
    leaseName,
    kubeconfig: options.kubeconfig,
    token,
    delete: async () => {
      await rbac.deleteClusterRoleBinding({ name });
      await rbac.deleteClusterRole({ name });
      // The Lease's Role and RoleBinding go with the namespace; the Events' live in another one.
      await rbac.deleteNamespacedRoleBinding({ name, namespace: objects.events.role.metadata.namespace });
      await rbac.deleteNamespacedRole({ name, namespace: objects.events.role.metadata.namespace });
      await core.deleteNamespace({ name: namespace });
    },
  };
}
