// client-node's per-call options that hand a request the signal bounded() aborts at its time limit: its fetch
// then closes the connection instead of leaving the request running after the check gave up on it.
import {
  Observable,
  type ConfigurationOptions,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';

export function abortable(signal: AbortSignal): ConfigurationOptions {
  return {
    // Added after the configuration's own middleware (authentication stays as it is).
    middlewareMergeStrategy: 'append',
    middleware: [
      {
        pre: (context: RequestContext) => {
          context.setSignal(signal);
          return new Observable(Promise.resolve(context));
        },
        post: (context: ResponseContext) => new Observable(Promise.resolve(context)),
      },
    ],
  };
}
