// The opt-in restart action: after a rotation is published, roll the configured workloads (their pod
// template's restartedAt annotation, as `kubectl rollout restart` does), each once per rotation. A failed
// patch is retried with the rotation loop's backoff until it lands or a newer rotation replaces it; nothing
// here ever holds up the rotation itself.
import { describeWorkload, restartPatch, workloadKey, type Workload } from '../core/restart/workload.ts';
import { retryDelay } from '../core/rotation/schedule.ts';
import type { Clock } from '../io/clock.ts';
import { describeError, httpStatus } from '../io/kube/errors.ts';
import { MERGE_PATCH, type KubeClient } from '../io/kube/rest.ts';
import { untilAborted } from '../io/lifecycle.ts';

export const RESTART_RESULTS = ['success', 'not-found', 'forbidden', 'error'] as const;
export type RestartResult = (typeof RESTART_RESULTS)[number];

export interface RestartObserver {
  restarted(workload: Workload, rotatedAt: number): void;
  restartFailed(event: {
    workload: Workload;
    result: Exclude<RestartResult, 'success'>;
    message: string;
    failures: number;
    retryAt: number;
  }): void;
}

/** Applies a merge patch to a workload; throws the API's error. */
export type WorkloadPatcher = (workload: Workload, patch: object) => Promise<void>;

export interface RestarterOptions {
  readonly workloads: readonly Workload[];
  readonly patch: WorkloadPatcher;
  readonly clock: Clock;
  /** Uniform in [0, 1): the jitter of retry delays. */
  readonly random: () => number;
  readonly observer: RestartObserver;
}

/** A workload still to be rolled for the rotation published at `rotatedAt`. */
interface Due {
  readonly workload: Workload;
  readonly rotatedAt: number;
  failures: number;
  retryAt: number;
}

export class WorkloadRestarter {
  readonly #options: RestarterOptions;
  readonly #due = new Map<string, Due>();
  #wake = new AbortController();

  constructor(options: RestarterOptions) {
    this.#options = options;
  }

  /** A rotation was published at `rotatedAt`: every workload is due, replacing any older rotation still due. */
  request(rotatedAt: number): void {
    for (const workload of this.#options.workloads)
      this.#due.set(workloadKey(workload), { workload, rotatedAt, failures: 0, retryAt: 0 });
    this.#wake.abort();
  }

  /** Rolls what is due until the signal aborts (a patch in flight finishes first). */
  async run(signal: AbortSignal): Promise<void> {
    const { clock } = this.#options;
    while (!signal.aborted) {
      await this.#attemptDue(signal);
      const wake = AbortSignal.any([signal, this.#wake.signal]);
      const next = Math.min(...[...this.#due.values()].map((due) => due.retryAt));
      if (Number.isFinite(next)) await clock.sleep(next - clock.now(), wake);
      else await untilAborted(wake);
      if (this.#wake.signal.aborted) this.#wake = new AbortController();
    }
  }

  /** One attempt for each workload whose retry time has come, stopping early on abort. */
  async #attemptDue(signal: AbortSignal): Promise<void> {
    for (const due of [...this.#due.values()]) {
      if (signal.aborted) return;
      if (this.#options.clock.now() >= due.retryAt) await this.#attempt(due);
    }
  }

  async #attempt(due: Due): Promise<void> {
    const { clock, observer, patch, random } = this.#options;
    const key = workloadKey(due.workload);
    try {
      await patch(due.workload, restartPatch(due.rotatedAt));
    } catch (error) {
      due.failures++;
      due.retryAt = clock.now() + retryDelay(due.failures, random());
      // A newer rotation's entry replaced this one while the patch ran: it reports for itself.
      if (this.#due.get(key) !== due) return;
      observer.restartFailed({
        workload: due.workload,
        result: restartResult(error),
        message: `restarting ${describeWorkload(due.workload)}: ${describeError(error)}`,
        failures: due.failures,
        retryAt: due.retryAt,
      });
      return;
    }
    if (this.#due.get(key) === due) this.#due.delete(key);
    observer.restarted(due.workload, due.rotatedAt);
  }
}

function restartResult(error: unknown): Exclude<RestartResult, 'success'> {
  const status = httpStatus(error);
  return status === 404 ? 'not-found' : status === 403 ? 'forbidden' : 'error';
}

/** Patches workloads through the source cluster's API (RBAC: patch on each by name). */
export function kubeWorkloadPatcher(client: KubeClient): WorkloadPatcher {
  const resources = { Deployment: 'deployments', StatefulSet: 'statefulsets', DaemonSet: 'daemonsets' } as const;
  return async (workload, body) => {
    const path = `/apis/apps/v1/namespaces/${workload.namespace}/${resources[workload.kind]}/${workload.name}`;
    await client.request('PATCH', path, { body, contentType: MERGE_PATCH });
  };
}
