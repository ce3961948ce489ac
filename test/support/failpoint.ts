// Preloaded into a sidecar by the crash-consistency test (`node --import`): KCR_FAILPOINT=<step> makes the
// process kill itself with SIGKILL right after that step, seen on the sidecar's step channel.
import { subscribe } from 'node:diagnostics_channel';
import { SIDECAR_STEP_CHANNEL, type SidecarStep } from '../../src/sidecar/steps.ts';

const failpoint = process.env.KCR_FAILPOINT;
if (failpoint !== undefined && failpoint !== '') {
  subscribe(SIDECAR_STEP_CHANNEL, (message) => {
    if ((message as SidecarStep).step === failpoint) process.kill(process.pid, 'SIGKILL');
  });
}
