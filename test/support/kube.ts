// Small helpers for tests that talk to the test clusters.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import {
  ApiException,
  CertificatesV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type KubeConfig,
  type V1CertificateSigningRequest,
} from '@kubernetes/client-node';
import {
  bootstrapTokenSecret,
  bootstrapTokenString,
  csrRequesterRbac,
  generateBootstrapToken,
  type BootstrapToken,
} from '../../src/core/bootstrap/token.ts';
import { eventually } from './eventually.ts';

/**
 * The user `kubeconfig` authenticates as (`kubectl auth whoami`: a SelfSubjectReview), as any client using it
 * would call; `timeoutMs` bounds kubectl.
 */
export async function kubectlWhoAmI(
  kubectl: string,
  kubeconfig: string,
  options: { readonly timeoutMs?: number } = {},
): Promise<string> {
  const { stdout } = await promisify(execFile)(
    kubectl,
    ['--kubeconfig', kubeconfig, 'auth', 'whoami', '-o', 'json'],
    options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs },
  );
  return (JSON.parse(stdout) as { status: { userInfo: { username: string } } }).status.userInfo.username;
}

/** A lowercase name unique to this test run, valid as a Kubernetes object name. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export function statusCode(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

// RBAC changes reach the authorizer's cache a moment later: calls that depend on them are retried with this.
export { eventually };

/** A ClusterRoleBinding `name` of ClusterRole `role` to `user` (e.g. the CSR requester role to an identity that renews). */
export async function bindClusterRole(admin: KubeConfig, name: string, role: string, user: string): Promise<void> {
  await admin.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    },
  });
}

export interface TestBootstrapToken {
  readonly token: BootstrapToken;
  readonly value: string;
  readonly group: string;
}

/** A bootstrap token in an extra group that RBAC allows only to create/get/list/watch CSRs. */
export async function createBootstrapToken(
  admin: KubeConfig,
  options: { expiration?: Date; extraClusterRoles?: readonly string[] } = {},
): Promise<TestBootstrapToken> {
  const token = generateBootstrapToken((count) => randomBytes(count));
  const group = `system:bootstrappers:kcr-test-${token.id}`;
  const secret = bootstrapTokenSecret(token, {
    expiration: options.expiration ?? new Date(Date.now() + 3_600_000),
    extraGroups: [group],
    description: 'kubeconfig-rotator integration test',
  });
  await admin.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: 'kube-system', body: secret });
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const { clusterRole, clusterRoleBinding } = csrRequesterRbac(`kcr-test-csr-requester-${token.id}`, group);
  await rbac.createClusterRole({ body: clusterRole });
  await rbac.createClusterRoleBinding({ body: clusterRoleBinding });
  for (const role of options.extraClusterRoles ?? []) {
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `kcr-test-${token.id}-${role.replaceAll(':', '-')}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: group }],
      },
    });
  }
  return { token, value: bootstrapTokenString(token), group };
}

export async function approveCsr(admin: KubeConfig, name: string): Promise<void> {
  const api = admin.makeApiClient(CertificatesV1Api);
  const csr = await api.readCertificateSigningRequest({ name });
  const conditions = csr.status?.conditions ?? [];
  conditions.push({
    type: 'Approved',
    status: 'True',
    reason: 'IntegrationTest',
    message: 'approved by the test',
    lastUpdateTime: new Date(),
  });
  await api.replaceCertificateSigningRequestApproval({ name, body: { ...csr, status: { ...csr.status, conditions } } });
}

/** Polls until the CSR carries a certificate (or fails/denied, which throws). */
export async function waitForCertificate(
  kubeConfig: KubeConfig,
  name: string,
  timeoutMs = 30_000,
): Promise<V1CertificateSigningRequest & { certificatePem: string }> {
  const api = kubeConfig.makeApiClient(CertificatesV1Api);
  const failure = (csr: V1CertificateSigningRequest) =>
    csr.status?.conditions?.find((c) => (c.type === 'Denied' || c.type === 'Failed') && c.status === 'True');
  const issued = await eventually(
    async () => {
      const csr = await api.readCertificateSigningRequest({ name });
      const certificate = csr.status?.certificate ?? '';
      return certificate !== '' || failure(csr) !== undefined ? csr : false;
    },
    { timeoutMs, description: `a certificate for CSR ${name}` },
  );
  const failed = failure(issued);
  if (failed !== undefined)
    throw new Error(`CSR ${name} ${failed.type}: ${failed.reason ?? ''} ${failed.message ?? ''}`);
  return Object.assign(issued, {
    certificatePem: Buffer.from(issued.status?.certificate ?? '', 'base64').toString('utf8'),
  });
}
