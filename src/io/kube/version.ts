// The cluster's release from /version, for the start-up checks of core/kube-version.ts: undefined when unknown
// (not reachable yet, not answering in time, or no access), which the callers treat as "not checked".
import { parseKubeVersion, type KubeVersion } from '../../core/kube-version.ts';
import type { KubeClient } from './rest.ts';

// Start waits for this at most.
const VERSION_TIMEOUT_MS = 5_000;

export async function serverVersion(client: KubeClient): Promise<KubeVersion | undefined> {
  try {
    return parseKubeVersion(
      await client.request<unknown>('GET', '/version', { signal: AbortSignal.timeout(VERSION_TIMEOUT_MS) }),
    );
  } catch {
    return undefined;
  }
}
