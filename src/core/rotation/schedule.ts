// When to renew a credential and how long to wait after a failure. Pure: time and randomness come in as
// arguments (random in [0, 1)), so the rules are tested exactly.
import { createHash } from 'node:crypto';
import type { RotationRule } from '../config/sidecar.ts';
import { backoffDelay } from '../backoff.ts';

export interface Validity {
  /** Milliseconds since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
}

/** A credential is never renewed sooner than this after it was obtained (unless it expires first): no hot loop. */
export const MIN_SPACING_MS = 1_000;

/**
 * How long Go consumers may take to start using a new certificate: client-go re-reads certificate files every
 * 5 minutes (`CertCallbackRefreshDuration` in client-go's transport/cert_rotation.go).
 */
export const CONSUMER_RELOAD_MS = 5 * 60_000;

/**
 * A certificate just issued is used for at least this fraction of the time it has left before it is renewed, so
 * a signer issuing certificates shorter than the configured floor causes a renewal every quarter lifetime rather
 * than a loop (the floor cannot be honoured; `reloadMarginShortfall` reports it).
 */
export const MIN_USE_FRACTION = 0.25;

/** When and how this process came to hold the credential. */
export interface Obtained {
  /** Milliseconds since the epoch. */
  readonly at: number;
  /** Issued just now (true), or found in a sink at start (false: one late in its life is renewed at once). */
  readonly issued: boolean;
}

/**
 * The moment to renew: NotBefore plus a uniformly random 70-90% (by default) of the lifetime, so a fleet that
 * started together does not renew together; never later than minRemaining before expiry; with a forced
 * interval, never later than that long after the credential was obtained.
 */
export function rotationDeadline(validity: Validity, obtained: Obtained, rule: RotationRule, random: number): number {
  const lifetime = validity.notAfter - validity.notBefore;
  const left = Math.max(0, validity.notAfter - obtained.at);
  const fraction = rule.minFraction + (rule.maxFraction - rule.minFraction) * random;
  let deadline = Math.min(
    validity.notBefore + lifetime * fraction,
    validity.notAfter - rule.minRemainingSeconds * 1000,
  );
  if (obtained.issued) deadline = Math.max(deadline, obtained.at + left * MIN_USE_FRACTION);
  if (rule.forceIntervalSeconds !== undefined)
    deadline = Math.min(deadline, obtained.at + rule.forceIntervalSeconds * 1000);
  return Math.max(deadline, obtained.at + Math.min(MIN_SPACING_MS, left / 2));
}

/**
 * How far short of `CONSUMER_RELOAD_MS` the time between a renewal and the old certificate's expiry falls (0
 * when consumers have time to reload): a positive figure means a Go consumer may still use the old certificate
 * when it expires.
 */
export function reloadMarginShortfall(validity: Validity, deadline: number): number {
  return Math.max(0, CONSUMER_RELOAD_MS - (validity.notAfter - deadline));
}

/**
 * The random draw for a certificate's deadline, derived from its serial (random itself), so that a restart
 * keeps the same deadline and anyone holding the certificate can tell when it will be renewed.
 */
export function jitterFromSerial(serial: string): number {
  return createHash('sha256').update(serial.toUpperCase()).digest().readUIntBE(0, 6) / 2 ** 48;
}

export const BACKOFF_BASE_MS = 2_000;
export const BACKOFF_CAP_MS = 5 * 60_000;
/**
 * The cap while no usable credential is held (none yet, expired, refused): the consumer is down until the next
 * attempt succeeds, so after a target outage longer than the credential's life the wait for recovery is at most
 * this, not 5 minutes. A retry against an unreachable or refusing target costs one failed request.
 */
export const BACKOFF_CAP_WITHOUT_CREDENTIAL_MS = 30_000;

/**
 * Delay before retry number `failures` (1 for the first failure): 2 s doubling, capped at `capMs` (5 min by
 * default), scaled by a random 80-100% so that sidecars failing together do not retry together.
 */
export function retryDelay(failures: number, random: number, capMs = BACKOFF_CAP_MS): number {
  return Math.round(backoffDelay(failures, { initialMs: BACKOFF_BASE_MS, maxMs: capMs }) * (0.8 + 0.2 * random));
}

export type AuthChoice = 'current' | 'bootstrap';

/**
 * The credential to request with: the current certificate while it is valid and carries the configured
 * identity (a renewal must come from the identity it renews); the bootstrap credential otherwise.
 */
export function chooseAuthentication(
  current: { readonly validity: Validity; readonly matchesIdentity: boolean } | undefined,
  now: number,
): AuthChoice {
  if (current === undefined || !current.matchesIdentity) return 'bootstrap';
  return now >= current.validity.notBefore && now < current.validity.notAfter ? 'current' : 'bootstrap';
}
