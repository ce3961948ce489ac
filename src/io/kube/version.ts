// The cluster's release from /version, for the start-up checks of core/kube-version.ts: undefined when unknown
// (not reachable yet, not answering in time, or no access), which the callers treat as "not checked".
import { parseKubeVersion, type KubeVersion } from '../../core/kube-version.ts';
import type { KubeClient } from './rest.ts';

// Start waits for this at most.
const VERSION_TIMEOUT_MS = 5_000;

/** `signal` gives up early (shutdown). */
export async function serverVersion(client: KubeClient, signal?: AbortSignal): Promise<KubeVersion | undefined> {
  const timeout = AbortSignal.timeout(VERSION_TIMEOUT_MS);
  try {
    return parseKubeVersion(
      await client.request<unknown>('GET', '/version', {
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      }),
    );
  } catch {
    return undefined;
  }
}
