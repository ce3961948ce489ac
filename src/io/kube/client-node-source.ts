// The informer's list+watch source on client-node (the approver's client); the sidecar's is in rest.ts.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { listPage, watchQuery, type ListWatchSource, type WatchEventType } from './informer.ts';

/** A list+watch source on a Kubernetes collection, e.g. /apis/certificates.k8s.io/v1/certificatesigningrequests. */
export function kubeListWatchSource<T>(options: {
  readonly kubeConfig: KubeConfig;
  readonly path: string;
  readonly fieldSelector?: string;
  readonly list: (options: {
    limit: number;
    _continue?: string;
    fieldSelector?: string;
  }) => Promise<{ items: T[]; metadata?: { resourceVersion?: string; _continue?: string } }>;
  readonly random?: () => number;
}): ListWatchSource<T> {
  const watcher = new Watch(options.kubeConfig);
  const random = options.random ?? Math.random;
  const selector = options.fieldSelector === undefined ? {} : { fieldSelector: options.fieldSelector };
  return {
    async list({ limit, continue: token }) {
      const page = await options.list({ limit, ...selector, ...(token === undefined ? {} : { _continue: token }) });
      return listPage(page.items, page.metadata?.resourceVersion, page.metadata?._continue);
    },
    watch(resourceVersion, onEvent, onDone) {
      return watcher.watch(
        options.path,
        watchQuery(resourceVersion, random, options.fieldSelector),
        (type: string, object: unknown) => {
          onEvent(type as WatchEventType, object);
        },
        (error: unknown) => {
          onDone(error);
        },
      );
    },
  };
}
