// The sidecar's step hook. Each step of a rotation (pending key saved, CSR created, certificate checked,
// each file of a directory write, the ..data swap, ...) is logged at trace level and published on a Node
// diagnostics channel, so that a tool outside the product can act at an exact step without a flag in it:
// the crash-consistency test preloads a failpoint that subscribes here (test/support/failpoint.ts).
import { channel, type Channel } from 'node:diagnostics_channel';
import type { Logger } from '../io/log.ts';

/** Subscribe with `diagnostics_channel.subscribe(SIDECAR_STEP_CHANNEL, (message) => ...)`. */
export const SIDECAR_STEP_CHANNEL = 'kubeconfig-rotator:sidecar:step';

/** What the channel carries: the target and the step just completed. */
export interface SidecarStep {
  readonly target: string;
  readonly step: string;
}

const steps: Channel = channel(SIDECAR_STEP_CHANNEL);

/** The step callback of one target: traced, then published (subscribers run synchronously, before the next step). */
export function stepReporter(logger: Logger, target: string): (step: string) => void {
  return (step) => {
    logger.trace({ step }, 'step');
    if (steps.hasSubscribers) steps.publish({ target, step } satisfies SidecarStep);
  };
}
