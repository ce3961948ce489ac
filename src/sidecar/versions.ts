// At start, each target's Kubernetes release against what its credential kind needs (core/kube-version.ts), so
// a target too old for its configuration is refused at start with the feature named, not met later as a CSR
// the apiserver rejects or tokens the target never accepts. /version is asked anonymously (apiservers grant it
// to system:unauthenticated by default) with the bootstrap kubeconfig's server and CA: an expired bootstrap
// credential must not hide the version, and the check needs nothing of the rotation's client.
import { get } from 'node:https';
import type { TargetConfig } from '../core/config/sidecar.ts';
import { parseKubeVersion, targetRequirements, versionProblems, type KubeVersion } from '../core/kube-version.ts';

// Start waits for this at most: a target that does not answer by then goes unchecked, as one that refuses.
const VERSION_TIMEOUT_MS = 5_000;

/** The target's version; undefined when unknown (not reachable yet, or no anonymous access). */
function targetVersion(server: string, caPem: string): Promise<KubeVersion | undefined> {
  return new Promise((resolve) => {
    const request = get(
      `${server.replace(/\/+$/, '')}/version`,
      { ca: caPem, timeout: VERSION_TIMEOUT_MS },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('error', () => {
          resolve(undefined);
        });
        response.on('end', () => {
          try {
            resolve(response.statusCode === 200 ? parseKubeVersion(JSON.parse(body)) : undefined);
          } catch {
            resolve(undefined);
          }
        });
      },
    );
    // Unknown, not a failure: the rotation loop reports the target's reachability as it always has.
    request.on('timeout', () => request.destroy());
    request.on('error', () => {
      resolve(undefined);
    });
  });
}

/**
 * Each target's version problems, given the bootstrap kubeconfigs' servers and CAs, as config problem lines
 * ("  targets[0] (name): ..."); empty when none.
 */
export async function targetVersionProblems(
  targets: readonly TargetConfig[],
  bootstraps: ReadonlyMap<string, { readonly server: string; readonly caPem: string } | undefined>,
): Promise<string[]> {
  const problems = await Promise.all(
    targets.map(async (target, index) => {
      const bootstrap = bootstraps.get(target.name);
      if (bootstrap === undefined) return [];
      const version = await targetVersion(target.server ?? bootstrap.server, bootstrap.caPem);
      if (version === undefined) return [];
      return versionProblems(version, targetRequirements(target.credential)).map(
        (problem) => `  targets[${String(index)}] (${target.name}): ${problem}\n`,
      );
    }),
  );
  return problems.flat();
}
