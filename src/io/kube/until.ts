// One object followed by name through the informer (its source lists and watches with the field selector
// metadata.name=NAME), so a wait for one object gets the informer's relists, watchdog, request timeouts and
// backoff; `until` waits for a condition on it, as client-go's UntilWithSync does.
import { untilAborted } from '../lifecycle.ts';
import { createInformer, type Informer, type InformerOptions } from './informer.ts';

export interface NamedObject {
  readonly metadata?: { readonly name?: string; readonly resourceVersion?: string };
}

export type ObjectInformerOptions<T> = Omit<InformerOptions<T, T>, 'key' | 'version' | 'transform' | 'handlers'> & {
  /** The object's metadata.name. */
  readonly name: string;
};

/**
 * An informer on the object `name`: `onState` gets the object (undefined while it does not exist) after each
 * complete list and each change the watch reports. A relist that finds a change may report it twice.
 */
export function objectInformer<T extends NamedObject>(
  options: ObjectInformerOptions<T>,
  onState: (object: T | undefined) => void,
): Informer<T> {
  let listed = false;
  const informer = createInformer<T, T>({
    ...options,
    key: (object) => object.metadata?.name ?? '',
    version: (object) => object.metadata?.resourceVersion ?? '',
    transform: (object) => object,
    handlers: {
      // The first list reports once, complete, in `synced`.
      upsert: (key, object) => {
        if (listed && key === options.name) onState(object);
      },
      remove: (key) => {
        if (listed && key === options.name) onState(undefined);
      },
      synced: () => {
        listed = true;
        onState(informer.get(options.name));
      },
    },
  });
  return informer;
}

/**
 * Resolves with the first value `condition` returns for the object's states (undefined means keep waiting),
 * or with undefined when `signal` aborts first; a condition that throws ends the wait with its error. The
 * informer is stopped before it settles.
 */
export async function until<T extends NamedObject, V>(
  options: ObjectInformerOptions<T>,
  condition: (object: T | undefined) => V | undefined,
  signal: AbortSignal,
): Promise<V | undefined> {
  if (signal.aborted) return undefined;
  const decided = new AbortController();
  let outcome: { readonly value: V } | { readonly error: unknown } | undefined;
  const informer = objectInformer(options, (object) => {
    if (outcome !== undefined) return;
    try {
      const value = condition(object);
      if (value === undefined) return;
      outcome = { value };
    } catch (error) {
      outcome = { error };
    }
    decided.abort();
  });
  informer.start();
  await untilAborted(AbortSignal.any([signal, decided.signal]));
  await informer.stop();
  if (outcome === undefined) return undefined;
  if ('error' in outcome) throw outcome.error;
  return outcome.value;
}
