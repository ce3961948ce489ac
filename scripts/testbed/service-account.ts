// A kubeconfig holding a ServiceAccount's token from `kubectl create token`, as an operator gets one: how the
// demo, tests and benchmarks run a process with exactly the RBAC its chart grants (never the admin credential).
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { renderKubeconfig } from '../../src/core/kubeconfig/render.ts';
import { ensureControlPlane } from './binaries.ts';
import type { ClusterState } from './cluster.ts';

export interface ServiceAccountKubeconfigOptions {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly tokenSeconds: number;
  /** Where the kubeconfig is written (mode 0600). */
  readonly kubeconfig: string;
}

/** Writes the kubeconfig; returns the token, for asserting what it may and may not do. */
export async function writeServiceAccountKubeconfig(
  cluster: ClusterState,
  options: ServiceAccountKubeconfigOptions,
): Promise<string> {
  const kubectl = join(await ensureControlPlane(), 'kubectl');
  const created = await promisify(execFile)(kubectl, [
    '--kubeconfig',
    cluster.kubeconfig,
    'create',
    'token',
    options.serviceAccount,
    '--namespace',
    options.namespace,
    '--duration',
    `${String(options.tokenSeconds)}s`,
  ]);
  const token = created.stdout.trim();
  writeFileSync(
    options.kubeconfig,
    renderKubeconfig({
      name: 'cluster',
      server: cluster.server,
      certificateAuthority: { file: cluster.caCertFile },
      credential: { token },
    }),
    { mode: 0o600 },
  );
  return token;
}
