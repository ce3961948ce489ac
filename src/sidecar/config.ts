// Loading the sidecar's configuration and checking what it points at (bootstrap kubeconfigs, the signer CA),
// so that a bad start fails at once, with every problem named, before anything is written.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, type Problem } from '../core/config/validate.ts';
import { readConfigFile } from '../io/config-file.ts';
import { sidecarConfigSchema, type SidecarConfig } from '../core/config/sidecar.ts';
import {
  bootstrapNeeds,
  BootstrapKubeconfigError,
  readBootstrapKubeconfig,
  type BootstrapCredential,
} from './bootstrap.ts';

export interface LoadedConfig {
  readonly config: SidecarConfig;
  /** Parsed signer CAs by target name. */
  readonly signerCAs: ReadonlyMap<string, X509Certificate>;
  /** Parsed bootstrap kubeconfigs by target name; undefined where the file does not exist (yet). */
  readonly bootstraps: ReadonlyMap<string, BootstrapCredential | undefined>;
}

/** Throws ConfigError listing every problem. */
export function loadSidecarConfig(path: string): LoadedConfig {
  const config = readConfigFile(path, sidecarConfigSchema).value;
  const problems: Problem[] = [];
  const signerCAs = new Map<string, X509Certificate>();
  const bootstraps = new Map<string, BootstrapCredential | undefined>();
  config.targets.forEach((target, index) => {
    try {
      bootstraps.set(target.name, readBootstrapKubeconfig(target.bootstrapKubeconfig, bootstrapNeeds(target)));
    } catch (error) {
      if (!(error instanceof BootstrapKubeconfigError)) throw error;
      problems.push({ path: `targets[${String(index)}].bootstrapKubeconfig`, message: error.message });
    }
    if (target.signerCA !== undefined) {
      try {
        signerCAs.set(target.name, new X509Certificate(readFileSync(target.signerCA)));
      } catch (error) {
        problems.push({
          path: `targets[${String(index)}].signerCA`,
          message: `${target.signerCA}: not a readable PEM certificate: ${(error as Error).message}`,
        });
      }
    }
  });
  if (problems.length > 0) throw new ConfigError(path, problems);
  return { config, signerCAs, bootstraps };
}
