// The rotation loop's decisions (sidecar/rotator.ts only carries them out): what is due next, what a failed
// attempt changes, and whether the target is ready. Pure functions of the loop's state and the time (and a
// random draw for the backoff's jitter), so each rule is tested exactly.
import { bootstrapRefusal } from '../check/refusal.ts';
import type { CredentialFacts, CredentialKind } from '../credential/credential.ts';
import {
  BACKOFF_CAP_MS,
  BACKOFF_CAP_WITHOUT_CREDENTIAL_MS,
  chooseAuthentication,
  retryDelay,
  type AuthChoice,
} from './schedule.ts';

/** The credential the loop holds, as far as its decisions go. */
export interface Held {
  readonly facts: CredentialFacts;
  /** When this process obtained or first loaded it. */
  readonly obtainedAt: number;
  /** When to renew it (rotationDeadline). */
  readonly deadline: number;
  /** Carries the configured identity and key type; if not, it is replaced at once. */
  readonly fitsConfig: boolean;
}

export interface LoopState {
  readonly current: Held | undefined;
  /** The target answered 401/403 to the current credential: revoked (a token's lease Secret deleted). */
  readonly refused: boolean;
  /** No attempt before this after a failure; 0 when no backoff runs. */
  readonly retryAt: number;
}

export interface DueState extends LoopState {
  /** A request made earlier (a CSR after a restart) waits to be resumed. */
  readonly pending: boolean;
  /** The periodic check that the target still accepts the current credential; undefined for kinds without one. */
  readonly acceptance?: { readonly intervalMs: number; readonly checkedAt: number };
}

export type Due =
  /** Nothing to do before `until`: the renewal deadline, or the next acceptance check if sooner. */
  | { readonly step: 'wait'; readonly until: number }
  /** Ask the target whether it still accepts the current credential. */
  | { readonly step: 'check-accepted' }
  /** A credential is due, but the backoff after a failure runs until `until`. */
  | { readonly step: 'back-off'; readonly until: number }
  /** Obtain a credential now, authenticating with the current one. */
  | { readonly step: 'renew' }
  /** Obtain a credential now with the bootstrap credential: none held, or it expired, is refused or misfits. */
  | { readonly step: 'bootstrap' };

/**
 * What the loop does next. A credential is due when none is held, when it misfits the config, is refused,
 * has passed its renewal deadline or expired, and when a request is pending (it is resumed, not dropped).
 */
export function nextDue(state: DueState, now: number): Due {
  const { current } = state;
  const renewDue =
    current === undefined ||
    !current.fitsConfig ||
    state.refused ||
    now >= current.deadline ||
    now >= current.facts.notAfter;
  if (!state.pending && !renewDue) {
    if (state.acceptance === undefined) return { step: 'wait', until: current.deadline };
    const checkAt = Math.max(state.acceptance.checkedAt, current.obtainedAt) + state.acceptance.intervalMs;
    return now < checkAt ? { step: 'wait', until: Math.min(current.deadline, checkAt) } : { step: 'check-accepted' };
  }
  if (now < state.retryAt) return { step: 'back-off', until: state.retryAt };
  return authenticationFor(state, now) === 'current' ? { step: 'renew' } : { step: 'bootstrap' };
}

/** A refused current credential (a deleted lease Secret revokes tokens) is not tried again. */
function authenticationFor(state: LoopState, now: number): AuthChoice {
  const { current } = state;
  return chooseAuthentication(
    current === undefined
      ? undefined
      : { validity: current.facts, matchesIdentity: current.fitsConfig && !state.refused },
    now,
  );
}

export interface FailureState extends LoopState {
  /** Failed attempts since the last success. */
  readonly failures: number;
  /** The result of the last failed attempt, until one succeeds. */
  readonly lastFailure: string | undefined;
  /** Re-bootstrap needed has been reported and not yet cleared by a credential obtained. */
  readonly rebootstrapNeeded: boolean;
}

export interface Failure {
  /** Why it failed (errors.ts RotationResult): 'unauthorized' is a refusal, 'error' an unreachable target. */
  readonly result: string;
  readonly auth: AuthChoice;
}

export interface AfterFailure {
  readonly failures: number;
  readonly refused: boolean;
  readonly retryAt: number;
  /** Report, for the first time since a credential was obtained, that only a new bootstrap credential helps. */
  readonly reportRebootstrap: boolean;
}

/**
 * The backoff after a failed attempt, and whether it means the current credential was refused or that a new
 * bootstrap credential is needed.
 */
export function afterFailure(state: FailureState, failure: Failure, now: number, random: number): AfterFailure {
  const unauthorized = failure.result === 'unauthorized';
  // A refusal just after the target was unreachable: the backoff starts over, and a refusal of the bootstrap
  // credential is confirmed by the next attempt (2 s later) before it is reported: a restarted apiserver
  // refuses bootstrap tokens until its Secret informer has synced, and federated tokens until its jwt
  // authenticator has fetched the issuer's keys (seen after a 10-minute outage: one 401, then success).
  const backFromUnreachable = state.lastFailure === 'error' && unauthorized;
  const failures = backFromUnreachable ? 1 : state.failures + 1;
  const refused = state.refused || (failure.auth === 'current' && unauthorized);
  const { current } = state;
  const stillValid = current !== undefined && now < current.facts.notAfter && !refused;
  // With nothing usable published the consumer is down: retry at least every 30 s, and no later than the
  // current credential's expiry, so that the consumer is back within 30 s of the target after any outage.
  const retryAt = now + retryDelay(failures, random, stillValid ? BACKOFF_CAP_MS : BACKOFF_CAP_WITHOUT_CREDENTIAL_MS);
  const bootstrapRefused = failure.auth === 'bootstrap' && unauthorized && !stillValid;
  return {
    failures,
    refused,
    retryAt: stillValid ? Math.min(retryAt, current.facts.notAfter) : retryAt,
    reportRebootstrap: bootstrapRefused && !backFromUnreachable && !state.rebootstrapNeeded,
  };
}

export interface ReadinessState {
  /** The kind of credential the target is configured for. */
  readonly kind: CredentialKind;
  readonly bootstrapWith: 'token' | 'federated';
  readonly current: Held | undefined;
  readonly refused: boolean;
  readonly rebootstrapNeeded: boolean;
  /** The sinks that do not hold the current credential, by description. */
  readonly stale: readonly string[];
}

export interface Readiness {
  readonly ready: boolean;
  /** Why not, or what is ready: the health endpoint and the readiness Events say it. */
  readonly detail: string;
}

/** Ready while a valid credential the target accepts is in every sink. */
export function readiness(state: ReadinessState, now: number): Readiness {
  const { current, kind } = state;
  const expiry =
    current === undefined
      ? `no ${kind}`
      : `${current.facts.kind} expired at ${new Date(current.facts.notAfter).toISOString()}`;
  if (state.rebootstrapNeeded) {
    // Before any credential, the bootstrap never worked: name the likely causes too. Always the fix.
    const refusal = bootstrapRefusal(kind, current !== undefined, state.bootstrapWith);
    const detail =
      `re-bootstrap needed: ${expiry}, and the bootstrap credential is not accepted` +
      (current === undefined ? `: ${refusal.causes}` : '') +
      `; fix: ${refusal.fix}`;
    return { ready: false, detail };
  }
  if (current === undefined) return { ready: false, detail: `no ${kind} yet` };
  if (now >= current.facts.notAfter) return { ready: false, detail: expiry };
  if (state.refused) return { ready: false, detail: `the target refuses the current ${kind} (revoked?)` };
  if (state.stale.length > 0) return { ready: false, detail: `not published to ${state.stale.join(', ')}` };
  const { identity, serial, notAfter } = current.facts;
  return { ready: true, detail: `${identity} serial ${serial} valid until ${new Date(notAfter).toISOString()}` };
}
