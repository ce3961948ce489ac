// What the sidecar tells the world about each target: Prometheus metrics, Kubernetes Events on its own Pod
// and JSON logs. Nothing here carries a key, token or kubeconfig content.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { bootstrapRefusal } from '../core/check/refusal.ts';
import type { CredentialKind } from '../core/credential/credential.ts';
import { describeWorkload } from '../core/restart/workload.ts';
import { CONSUMER_RELOAD_MS, reloadMarginShortfall } from '../core/rotation/schedule.ts';
import type { Clock } from '../io/clock.ts';
import type { EventRecorder } from '../io/kube/events.ts';
import type { Logger } from '../io/log.ts';
import { RESTART_RESULTS } from './restarter.ts';
import type { CurrentCredential, TargetObserver } from './rotator.ts';

export interface SidecarMetrics {
  readonly notBefore: Gauge<'target'>;
  readonly notAfter: Gauge<'target'>;
  readonly nextRotation: Gauge<'target'>;
  readonly reloadMargin: Gauge<'target'>;
  readonly rotations: Counter<'target' | 'result'>;
  readonly lastSuccess: Gauge<'target'>;
  readonly rotationDuration: Histogram<'target'>;
  readonly ready: Gauge<'target'>;
  readonly rebootstrapNeeded: Gauge<'target'>;
  readonly outputRepairs: Counter<'target' | 'sink'>;
  readonly publishFailures: Counter<'target' | 'sink'>;
  readonly configReloads: Counter<'result'>;
  readonly restarts: Counter<'target' | 'result'>;
}

export function sidecarMetrics(registry: Registry): SidecarMetrics {
  const registers = [registry];
  return {
    notBefore: new Gauge({
      name: 'kubeconfig_rotator_certificate_not_before_timestamp_seconds',
      help: "Start of the published certificate's validity (with not_after: the fraction of its life left).",
      labelNames: ['target'],
      registers,
    }),
    notAfter: new Gauge({
      name: 'kubeconfig_rotator_certificate_not_after_timestamp_seconds',
      help: 'Expiry of the published certificate.',
      labelNames: ['target'],
      registers,
    }),
    nextRotation: new Gauge({
      name: 'kubeconfig_rotator_next_rotation_timestamp_seconds',
      help: 'When the certificate will be renewed.',
      labelNames: ['target'],
      registers,
    }),
    reloadMargin: new Gauge({
      name: 'kubeconfig_rotator_reload_margin_seconds',
      help: 'Time between the planned renewal and the expiry of the published certificate: what Go consumers have to pick up its successor (client-go re-reads certificate files every 300 s).',
      labelNames: ['target'],
      registers,
    }),
    rotations: new Counter({
      name: 'kubeconfig_rotator_rotations_total',
      help: 'Rotation attempts by result.',
      labelNames: ['target', 'result'],
      registers,
    }),
    lastSuccess: new Gauge({
      name: 'kubeconfig_rotator_last_success_timestamp_seconds',
      help: 'Last successful rotation.',
      labelNames: ['target'],
      registers,
    }),
    rotationDuration: new Histogram({
      name: 'kubeconfig_rotator_rotation_duration_seconds',
      help: 'Time from the start of a rotation to the published kubeconfig.',
      labelNames: ['target'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers,
    }),
    ready: new Gauge({
      name: 'kubeconfig_rotator_ready',
      help: '1 when a valid certificate is published in every sink.',
      labelNames: ['target'],
      registers,
    }),
    rebootstrapNeeded: new Gauge({
      name: 'kubeconfig_rotator_rebootstrap_needed',
      help: '1 when the certificate expired and the bootstrap credential is not accepted: an operator must run bootstrap again.',
      labelNames: ['target'],
      registers,
    }),
    outputRepairs: new Counter({
      name: 'kubeconfig_rotator_output_repairs_total',
      help: 'Outputs found missing or changed and rewritten.',
      labelNames: ['target', 'sink'],
      registers,
    }),
    publishFailures: new Counter({
      name: 'kubeconfig_rotator_publish_failures_total',
      help: 'Failed writes or checks of an output.',
      labelNames: ['target', 'sink'],
      registers,
    }),
    configReloads: new Counter({
      name: 'kubeconfig_rotator_config_reloads_total',
      help: 'Configuration reloads by result (applied, rejected).',
      labelNames: ['result'],
      registers,
    }),
    restarts: new Counter({
      name: 'kubeconfig_rotator_restarts_total',
      help: 'Restart action: workload patches after a rotation, by result (success, not-found, forbidden, error).',
      labelNames: ['target', 'result'],
      registers,
    }),
  };
}

const seconds = (ms: number) => ms / 1000;

export function targetObserver(
  target: string,
  metrics: SidecarMetrics,
  events: EventRecorder,
  logger: Logger,
  options: { restarts: boolean; kind: CredentialKind; bootstrapWith: 'token' | 'federated'; clock: Clock },
): TargetObserver {
  const { clock } = options;
  const log = logger.child({ target });
  metrics.ready.set({ target }, 0);
  metrics.rebootstrapNeeded.set({ target }, 0);
  for (const result of ['success', 'denied', 'failed', 'timeout', 'rejected', 'unauthorized', 'error'])
    metrics.rotations.inc({ target, result }, 0);
  if (options.restarts) for (const result of RESTART_RESULTS) metrics.restarts.inc({ target, result }, 0);
  // A refused bootstrap credential means something else before the first credential than after one expired.
  let everIssued = false;
  const scheduled = (current: CurrentCredential) => {
    everIssued = true;
    metrics.notBefore.set({ target }, seconds(current.facts.notBefore));
    metrics.notAfter.set({ target }, seconds(current.facts.notAfter));
    metrics.nextRotation.set({ target }, seconds(current.deadline));
    metrics.reloadMargin.set({ target }, seconds(current.facts.notAfter - current.deadline));
  };
  return {
    loaded(current, from) {
      scheduled(current);
      const { kind } = current.facts;
      log.info(
        {
          serial: current.facts.serial,
          notAfter: new Date(current.facts.notAfter).toISOString(),
          nextRotation: new Date(current.deadline).toISOString(),
          from,
        },
        clock.now() >= current.facts.notAfter
          ? `found an expired ${kind}; renewing it`
          : current.fitsConfig
            ? `found a valid ${kind}`
            : `found a ${kind} that does not fit the configuration; replacing it`,
      );
    },
    rotated({ current, auth, request, durationMs, timings }) {
      metrics.rotations.inc({ target, result: 'success' });
      metrics.rotationDuration.observe({ target }, seconds(durationMs));
      metrics.lastSuccess.set({ target }, seconds(clock.now()));
      scheduled(current);
      log.info(
        {
          ...(current.facts.kind === 'certificate' ? { csr: request } : { tokenRequest: request }),
          authenticatedWith: auth,
          subject: current.facts.identity,
          serial: current.facts.serial,
          notAfter: new Date(current.facts.notAfter).toISOString(),
          nextRotation: new Date(current.deadline).toISOString(),
          durationMs,
          timings,
        },
        current.facts.kind === 'certificate' ? 'certificate rotated' : 'token rotated',
      );
      const certificate = current.facts.kind === 'certificate';
      events.normal(
        certificate ? 'CertificateRotated' : 'TokenRotated',
        `${target}: new ${current.facts.kind} ${current.facts.serial} valid until ${new Date(current.facts.notAfter).toISOString()}`,
      );
      const shortfall = reloadMarginShortfall(current.facts, current.deadline);
      if (shortfall > 0) {
        const margin = Math.round(seconds(current.facts.notAfter - current.deadline));
        const message = `${target}: the certificate lives too short for its successor to be published ${seconds(CONSUMER_RELOAD_MS)} s before it expires (${margin} s): Go consumers, which re-read certificate files every ${seconds(CONSUMER_RELOAD_MS)} s, may call with an expired certificate: ask the signer for longer certificates`;
        log.warn({ reloadMarginSeconds: margin, nextRotation: new Date(current.deadline).toISOString() }, message);
        events.warning('CertificateTooShort', message);
      }
    },
    rotationFailed({ result, message, auth, failures, retryAt }) {
      metrics.rotations.inc({ target, result });
      log.warn(
        { result, authenticatedWith: auth, failures, retryAt: new Date(retryAt).toISOString(), error: message },
        `rotation failed; the current ${options.kind} stays`,
      );
      events.warning(result === 'denied' ? 'CertificateDenied' : 'RotationFailed', `${target}: ${message}`);
    },
    rebootstrapNeeded(needed, message) {
      metrics.rebootstrapNeeded.set({ target }, needed ? 1 : 0);
      if (needed) {
        const { reason, causes, fix } = bootstrapRefusal(options.kind, everIssued, options.bootstrapWith);
        log.error({ error: message, reason }, `re-bootstrap needed: ${causes}; fix: ${fix}`);
        // The fix before the error: an Event message is cut at 1024 characters, and the error can be long.
        events.warning(reason, `${target}: ${causes}; fix: ${fix}. Error: ${message}`);
      } else log.info('re-bootstrap no longer needed');
    },
    currentRefused(message) {
      log.warn({ error: message }, `the target refuses the current ${options.kind}: revoked? renewing now`);
      events.warning('CredentialRefused', `${target}: ${message}`);
    },
    outputRepaired(sink, state) {
      metrics.outputRepairs.inc({ target, sink: sink.kind });
      log.warn({ sink: sink.description, found: state }, 'output was missing or changed; rewrote it');
      events.warning('OutputRepaired', `${target}: ${sink.description} was ${state}; rewritten`);
    },
    publishFailed(sink, message) {
      metrics.publishFailures.inc({ target, sink: sink.kind });
      log.warn({ sink: sink.description, error: message }, 'publishing failed');
    },
    restarted(workload, rotatedAt) {
      metrics.restarts.inc({ target, result: 'success' });
      const message = `${target}: restarted ${describeWorkload(workload)} for the certificate rotated at ${new Date(rotatedAt).toISOString()}`;
      log.info(
        { workload: describeWorkload(workload), rotatedAt: new Date(rotatedAt).toISOString() },
        'workload restarted',
      );
      events.normal('WorkloadRestarted', message);
    },
    restartFailed({ workload, result, message, failures, retryAt }) {
      metrics.restarts.inc({ target, result });
      log.warn(
        {
          workload: describeWorkload(workload),
          result,
          failures,
          retryAt: new Date(retryAt).toISOString(),
          error: message,
        },
        'workload restart failed; retrying',
      );
      events.warning('WorkloadRestartFailed', `${target}: ${message}`);
    },
    readinessChanged(ready, detail) {
      metrics.ready.set({ target }, ready ? 1 : 0);
      log.info({ ready, detail }, ready ? 'ready' : 'not ready');
    },
  };
}
