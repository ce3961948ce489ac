// Locating (and building when missing) the pinned control-plane binaries through scripts/build-controlplane.sh.
import { spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.KCR_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kubeconfig-rotator');
}

/** Where named clusters keep their state; KCR_CLUSTERS_DIR overrides it. */
export function clustersRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.KCR_CLUSTERS_DIR ?? join(cacheRoot(env), 'clusters');
}

/**
 * Builds what is missing (a no-op when cached) and returns the directory of binaries: of the Kubernetes release
 * `kubeVersion` names (a minor such as "1.34"), by default KCR_KUBE_VERSION's or the pinned default.
 */
export function ensureControlPlane(
  onProgress: (line: string) => void = () => undefined,
  kubeVersion?: string,
): Promise<string> {
  return runBuildScript([], onProgress, kubeVersion === undefined ? {} : { KCR_KUBE_VERSION: kubeVersion });
}

/**
 * The control plane and, beside it in the same directory, the node's kube-scheduler and kubelet, built from the
 * same pinned module (default release only).
 */
export function ensureNodeBinaries(onProgress: (line: string) => void = () => undefined): Promise<string> {
  return runBuildScript(['--node'], onProgress);
}

/**
 * Builds the consumer probes of scripts/consumers/ that are missing and returns their directory, with the
 * upstream kubeconfig-secretreader exec plugin linked into it (built from the module the clusterprofile probe pins).
 */
export async function ensureConsumerProbes(onProgress: (line: string) => void = () => undefined): Promise<string> {
  const bin = await runBuildScript(['consumers'], onProgress);
  await runScript(join(REPO_ROOT, 'scripts', 'consumers', 'clusterprofile', 'build-plugin.sh'), [bin], onProgress);
  return bin;
}

function runBuildScript(
  args: readonly string[],
  onProgress: (line: string) => void,
  env: NodeJS.ProcessEnv = {},
): Promise<string> {
  return runScript(join(REPO_ROOT, 'scripts', 'build-controlplane.sh'), args, onProgress, env);
}

/** Runs a build script; its last line of stdout (the bin directory it printed, if any) is returned. */
async function runScript(
  script: string,
  args: readonly string[],
  onProgress: (line: string) => void,
  env: NodeJS.ProcessEnv = {},
): Promise<string> {
  const child = spawn('bash', [script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  createInterface({ input: child.stderr }).on('line', onProgress);
  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (stdout += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`${script} failed with exit code ${String(code)}`);
  const binDir = stdout.trim().split('\n').pop();
  if (binDir === undefined || binDir === '') throw new Error(`${script} printed no bin directory`);
  return binDir;
}
