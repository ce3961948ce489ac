// At start, each target's Kubernetes release against what its credential kind needs (core/kube-version.ts), so
// a target too old for its configuration is refused at start with the feature named, not met later as a CSR
// the apiserver rejects or tokens the target never accepts. /version is asked anonymously (apiservers grant it
// to system:unauthenticated by default) with the bootstrap kubeconfig's server and CA: an expired bootstrap
// credential must not hide the version, and the check needs nothing of the rotation's client. A target that
// does not answer goes unchecked: the rotation loop reports its reachability as it always has.
import type { TargetConfig } from '../core/config/sidecar.ts';
import { targetRequirements, versionProblems } from '../core/kube-version.ts';
import { createKubeClient } from '../io/kube/rest.ts';
import { serverVersion } from '../io/kube/version.ts';
import type { ClientConfig } from '../core/kubeconfig/client-config.ts';

/** What a BootstrapCredential gives the check: the server, the CA and the name its certificate is checked against. */
type VersionEndpoint = {
  readonly server: string;
  readonly caPem: string;
  readonly config?: Pick<ClientConfig, 'tlsServerName'>;
};

/**
 * Each target's version problems, given the bootstrap kubeconfigs' servers and CAs, as config problem lines
 * ("  targets[0] (name): ..."); empty when none.
 */
export async function targetVersionProblems(
  targets: readonly TargetConfig[],
  bootstraps: ReadonlyMap<string, VersionEndpoint | undefined>,
): Promise<string[]> {
  const problems = await Promise.all(
    targets.map(async (target, index) => {
      const bootstrap = bootstraps.get(target.name);
      if (bootstrap === undefined) return [];
      const client = createKubeClient({
        server: target.server ?? bootstrap.server,
        certificateAuthority: { pem: bootstrap.caPem },
        insecureSkipTlsVerify: false,
        ...(bootstrap.config?.tlsServerName === undefined ? {} : { tlsServerName: bootstrap.config.tlsServerName }),
        user: {},
      });
      const version = await serverVersion(client).finally(() => client.close());
      if (version === undefined) return [];
      const bootstrapWith = target.credential === 'certificate' ? target.bootstrap?.with : undefined;
      return versionProblems(version, targetRequirements(target.credential, bootstrapWith)).map(
        (problem) => `  targets[${String(index)}] (${target.name}): ${problem}\n`,
      );
    }),
  );
  return problems.flat();
}
