// Kubernetes Events on one object (the sidecar's Pod, a CSR), for `kubectl describe`. Repeats of the same
// event within the aggregation window (monotonic time) bump its count instead of creating new objects, as
// client-go does; the timestamps people read are wall-clock time.
// Emitting never fails the caller: errors are logged at debug level, except the first refusal (403), a
// missing grant the operator must fix, which is a warning naming what to grant.
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { describeError, httpStatus } from './errors.ts';
import { MERGE_PATCH, type KubeClient } from './rest.ts';

export interface InvolvedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  /** Absent for cluster-scoped objects; their events go to "default", where kubectl looks for them. */
  readonly namespace?: string;
  readonly uid?: string;
}

export interface EventRecorder {
  normal(reason: string, message: string, involved?: InvolvedObject): void;
  warning(reason: string, message: string, involved?: InvolvedObject): void;
  /** Waits for events in flight (at shutdown). */
  flush(): Promise<void>;
}

export const noEvents: EventRecorder = {
  normal: () => undefined,
  warning: () => undefined,
  flush: () => Promise.resolve(),
};

/** The two calls events need (restEventsApi below; a unit test's fake). */
export interface EventsApi {
  create(namespace: string, event: Record<string, unknown>): Promise<{ metadata?: { name?: string } }>;
  /** A merge patch of count and lastTimestamp. */
  bump(namespace: string, name: string, patch: { count: number; lastTimestamp: Date }): Promise<unknown>;
}

export interface KubeEventRecorderOptions {
  readonly api: EventsApi;
  /** reportingComponent, e.g. kubeconfig-rotator-sidecar. */
  readonly component: string;
  /** reportingInstance, e.g. the pod name. */
  readonly instance: string;
  /** The object events are about when the call names none. */
  readonly involved?: InvolvedObject;
  readonly logger: Logger;
  /** The system clock unless given. */
  readonly clock?: Pick<Clock, 'now' | 'monotonic'>;
  readonly aggregationWindowMs?: number;
}

const MAX_MESSAGE = 1024;

export function kubeEventRecorder(options: KubeEventRecorderOptions): EventRecorder {
  const { api } = options;
  const clock = options.clock ?? systemClock;
  const window = options.aggregationWindowMs ?? 10 * 60_000;
  // By event: the object it was recorded as, and when it last happened (monotonic milliseconds).
  const recent = new Map<string, { name: string; namespace: string; count: number; at: number }>();
  const inFlight = new Set<Promise<void>>();
  let refusalReported = false;

  async function emit(
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    involved: InvolvedObject,
  ): Promise<void> {
    const namespace = involved.namespace ?? 'default';
    const key = [type, reason, message, involved.kind, namespace, involved.name].join('\u0000');
    const time = new Date(clock.now());
    const at = clock.monotonic();
    const previous = recent.get(key);
    if (previous !== undefined && at - previous.at < window) {
      previous.count++;
      previous.at = at;
      await api.bump(previous.namespace, previous.name, { count: previous.count, lastTimestamp: time });
      return;
    }
    const created = await api.create(namespace, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${involved.name}.`, namespace },
      involvedObject: {
        apiVersion: involved.apiVersion,
        kind: involved.kind,
        name: involved.name,
        ...(involved.namespace === undefined ? {} : { namespace: involved.namespace }),
        ...(involved.uid === undefined ? {} : { uid: involved.uid }),
      },
      type,
      reason,
      message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message,
      count: 1,
      firstTimestamp: time,
      lastTimestamp: time,
      source: { component: options.component },
      reportingComponent: options.component,
      reportingInstance: options.instance,
    });
    recent.set(key, { name: created.metadata?.name ?? '', namespace, count: 1, at });
    for (const [oldKey, entry] of recent) if (at - entry.at >= window) recent.delete(oldKey);
  }

  function record(type: 'Normal' | 'Warning', reason: string, message: string, involved = options.involved): void {
    if (involved === undefined) return;
    const pending = emit(type, reason, message, involved).catch((error: unknown) => {
      if (httpStatus(error) === 403 && !refusalReported) {
        refusalReported = true;
        options.logger.warn(
          { reason, namespace: involved.namespace ?? 'default', error: describeError(error) },
          "events are refused: grant create and patch on events in this namespace to this pod's ServiceAccount (sidecar chart: agentServiceAccountName, or injector.agentServiceAccounts for injected pods); further failures are logged at debug level",
        );
      } else options.logger.debug({ reason, error: describeError(error) }, 'could not record event');
    });
    inFlight.add(pending);
    void pending.finally(() => inFlight.delete(pending));
  }

  return {
    normal: (reason, message, involved) => {
      record('Normal', reason, message, involved);
    },
    warning: (reason, message, involved) => {
      record('Warning', reason, message, involved);
    },
    flush: async () => {
      await Promise.all(inFlight);
    },
  };
}

/** Events through the sidecar's client. */
export function restEventsApi(client: KubeClient): EventsApi {
  const events = (namespace: string) => `/api/v1/namespaces/${namespace}/events`;
  return {
    create: (namespace, event) => client.request('POST', events(namespace), { body: event }),
    bump: (namespace, name, patch) =>
      client.request('PATCH', `${events(namespace)}/${name}`, { body: patch, contentType: MERGE_PATCH }),
  };
}
