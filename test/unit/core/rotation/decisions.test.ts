import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bootstrapRefusal } from '../../../../src/core/check/refusal.ts';
import {
  afterFailure,
  nextDue,
  readiness,
  type Due,
  type DueState,
  type FailureState,
  type Held,
  type Readiness,
  type ReadinessState,
} from '../../../../src/core/rotation/decisions.ts';
import { BACKOFF_CAP_MS, BACKOFF_CAP_WITHOUT_CREDENTIAL_MS } from '../../../../src/core/rotation/schedule.ts';

const HOUR = 3_600_000;
// A one-hour certificate obtained at `obtainedAt`, to be renewed 48 minutes in.
const obtainedAt = 1_000 * HOUR;
const held: Held = {
  facts: {
    kind: 'certificate',
    notBefore: obtainedAt - 300_000,
    notAfter: obtainedAt + HOUR,
    serial: '0A1B',
    user: 'agent-a',
    identity: 'CN=agent-a, O=agents',
  },
  obtainedAt,
  deadline: obtainedAt + 48 * 60_000,
  fitsConfig: true,
};
const { deadline, facts } = held;
const before = obtainedAt + 10 * 60_000;

describe('what is due next', () => {
  const base: DueState = { current: held, refused: false, retryAt: 0, pending: false };
  const cases: [string, Partial<DueState>, number, Due][] = [
    ['nothing held yet, should bootstrap', { current: undefined }, before, { step: 'bootstrap' }],
    ['well before the deadline, should wait until it', {}, before, { step: 'wait', until: deadline }],
    ['at the deadline, should renew with the current certificate', {}, deadline, { step: 'renew' }],
    [
      'past the deadline, still valid, should renew with the current certificate',
      {},
      facts.notAfter - 1,
      { step: 'renew' },
    ],
    ['already expired, should re-bootstrap', {}, facts.notAfter, { step: 'bootstrap' }],
    [
      'not yet valid (a clock behind the signer) and past its deadline, should bootstrap',
      { current: { ...held, deadline: facts.notBefore - 2 } },
      facts.notBefore - 1,
      { step: 'bootstrap' },
    ],
    [
      'carrying another identity than configured, should re-bootstrap at once',
      { current: { ...held, fitsConfig: false } },
      before,
      { step: 'bootstrap' },
    ],
    ['refused by the target (revoked), should re-bootstrap at once', { refused: true }, before, { step: 'bootstrap' }],
    [
      'a pending request before the deadline, should resume it with the current certificate',
      { pending: true },
      before,
      { step: 'renew' },
    ],
    [
      'due during the backoff after a failure, should back off until the retry time',
      { retryAt: deadline + 4_000 },
      deadline,
      { step: 'back-off', until: deadline + 4_000 },
    ],
    ['due at the retry time, should renew', { retryAt: deadline + 4_000 }, deadline + 4_000, { step: 'renew' }],
    [
      'a pending request during the backoff, should back off',
      { pending: true, retryAt: before + 1 },
      before,
      { step: 'back-off', until: before + 1 },
    ],
    [
      'a backoff with nothing due, should wait for the deadline, not the retry time',
      { retryAt: before + 1 },
      before,
      { step: 'wait', until: deadline },
    ],
    [
      'a token checked for acceptance, before the next check, should wait until the check',
      { acceptance: { intervalMs: 60_000, checkedAt: before - 30_000 } },
      before,
      { step: 'wait', until: before + 30_000 },
    ],
    [
      'a token checked for acceptance, at the next check, should check',
      { acceptance: { intervalMs: 60_000, checkedAt: before - 60_000 } },
      before,
      { step: 'check-accepted' },
    ],
    [
      'a token never checked, counts the interval from when it was obtained',
      { acceptance: { intervalMs: 20 * 60_000, checkedAt: 0 } },
      before,
      { step: 'wait', until: obtainedAt + 20 * 60_000 },
    ],
    [
      'an acceptance check due after the deadline, should wait for the deadline',
      { acceptance: { intervalMs: HOUR, checkedAt: before } },
      before,
      { step: 'wait', until: deadline },
    ],
    [
      'an acceptance check is not made when renewal is due: renew instead',
      { acceptance: { intervalMs: 60_000, checkedAt: 0 } },
      deadline,
      { step: 'renew' },
    ],
  ];
  for (const [name, state, now, expected] of cases) {
    it(name, () => {
      assert.deepEqual(nextDue({ ...base, ...state }, now), expected);
    });
  }
});

describe('after a failed attempt', () => {
  const base: FailureState = {
    current: held,
    refused: false,
    retryAt: 0,
    failures: 0,
    lastFailure: undefined,
    rebootstrapNeeded: false,
  };
  // The largest draw: delays are exactly 2 s, 4 s, 8 s... up to the cap.
  const random = 0.999999999;
  const now = deadline;
  const cases: [
    string,
    Partial<FailureState>,
    { result: string; auth: 'current' | 'bootstrap' },
    { failures: number; refused: boolean; retryAt: number; reportRebootstrap: boolean },
  ][] = [
    [
      'a first failure while the certificate is valid, retries after 2 s',
      {},
      { result: 'error', auth: 'current' },
      { failures: 1, refused: false, retryAt: now + 2_000, reportRebootstrap: false },
    ],
    [
      'a fourth failure retries after 16 s',
      { failures: 3, lastFailure: 'error' },
      { result: 'error', auth: 'current' },
      { failures: 4, refused: false, retryAt: now + 16_000, reportRebootstrap: false },
    ],
    [
      'many failures while the certificate is valid, back off up to 5 minutes',
      { failures: 20 },
      { result: 'denied', auth: 'current' },
      { failures: 21, refused: false, retryAt: now + BACKOFF_CAP_MS, reportRebootstrap: false },
    ],
    [
      'a backoff never runs past the current certificate expiry',
      { failures: 20, current: { ...held, facts: { ...facts, notAfter: now + 60_000 } } },
      { result: 'error', auth: 'current' },
      { failures: 21, refused: false, retryAt: now + 60_000, reportRebootstrap: false },
    ],
    [
      'many failures with nothing held, back off only up to 30 s',
      { current: undefined, failures: 20 },
      { result: 'error', auth: 'bootstrap' },
      { failures: 21, refused: false, retryAt: now + BACKOFF_CAP_WITHOUT_CREDENTIAL_MS, reportRebootstrap: false },
    ],
    [
      'the current certificate refused, marks it refused and backs off only up to 30 s',
      { failures: 20 },
      { result: 'unauthorized', auth: 'current' },
      { failures: 21, refused: true, retryAt: now + BACKOFF_CAP_WITHOUT_CREDENTIAL_MS, reportRebootstrap: false },
    ],
    [
      'the bootstrap credential refused with nothing valid held, reports that re-bootstrap is needed',
      { current: undefined },
      { result: 'unauthorized', auth: 'bootstrap' },
      { failures: 1, refused: false, retryAt: now + 2_000, reportRebootstrap: true },
    ],
    [
      'the bootstrap credential refused again, does not report it twice',
      { current: undefined, failures: 1, lastFailure: 'unauthorized', rebootstrapNeeded: true },
      { result: 'unauthorized', auth: 'bootstrap' },
      { failures: 2, refused: false, retryAt: now + 4_000, reportRebootstrap: false },
    ],
    [
      'the bootstrap credential refused while a refused certificate is held, reports that re-bootstrap is needed',
      { refused: true, failures: 1, lastFailure: 'unauthorized' },
      { result: 'unauthorized', auth: 'bootstrap' },
      { failures: 2, refused: true, retryAt: now + 4_000, reportRebootstrap: true },
    ],
    [
      'a refusal just after the target was unreachable, starts the backoff over and is not reported yet',
      { current: undefined, failures: 6, lastFailure: 'error' },
      { result: 'unauthorized', auth: 'bootstrap' },
      { failures: 1, refused: false, retryAt: now + 2_000, reportRebootstrap: false },
    ],
    [
      'an unreachable target with nothing held, is not a refusal',
      { current: undefined },
      { result: 'error', auth: 'bootstrap' },
      { failures: 1, refused: false, retryAt: now + 2_000, reportRebootstrap: false },
    ],
  ];
  for (const [name, state, failure, expected] of cases) {
    it(name, () => {
      assert.deepEqual(afterFailure({ ...base, ...state }, failure, now, random), expected);
    });
  }
});

describe('readiness', () => {
  const base: ReadinessState = {
    kind: 'certificate',
    bootstrapWith: 'token',
    current: held,
    refused: false,
    rebootstrapNeeded: false,
    stale: [],
  };
  const until = new Date(facts.notAfter).toISOString();
  const refusal = (everIssued: boolean) => bootstrapRefusal('certificate', everIssued, 'token');
  const cases: [string, Partial<ReadinessState>, number, Readiness][] = [
    [
      'a valid certificate in every sink, is ready',
      {},
      before,
      { ready: true, detail: `CN=agent-a, O=agents serial 0A1B valid until ${until}` },
    ],
    [
      'no certificate yet, is not ready',
      { current: undefined },
      before,
      { ready: false, detail: 'no certificate yet' },
    ],
    [
      'a token target without a token yet, says token',
      { current: undefined, kind: 'token' },
      before,
      { ready: false, detail: 'no token yet' },
    ],
    [
      'an expired certificate, is not ready',
      {},
      facts.notAfter,
      { ready: false, detail: `certificate expired at ${until}` },
    ],
    [
      'a refused certificate, is not ready (revoked?)',
      { refused: true },
      before,
      { ready: false, detail: 'the target refuses the current certificate (revoked?)' },
    ],
    [
      'a sink that does not hold the certificate, is not ready and is named',
      { stale: ['directory /out', 'Secret ns/agent'] },
      before,
      { ready: false, detail: 'not published to directory /out, Secret ns/agent' },
    ],
    [
      'an expired certificate wins over a stale sink',
      { stale: ['directory /out'] },
      facts.notAfter,
      { ready: false, detail: `certificate expired at ${until}` },
    ],
    [
      're-bootstrap needed before any certificate, names the likely causes and the fix',
      { current: undefined, rebootstrapNeeded: true },
      before,
      {
        ready: false,
        detail: `re-bootstrap needed: no certificate, and the bootstrap credential is not accepted: ${refusal(false).causes}; fix: ${refusal(false).fix}`,
      },
    ],
    [
      're-bootstrap needed after the certificate expired, names the fix only',
      { rebootstrapNeeded: true },
      facts.notAfter,
      {
        ready: false,
        detail: `re-bootstrap needed: certificate expired at ${until}, and the bootstrap credential is not accepted; fix: ${refusal(true).fix}`,
      },
    ],
  ];
  for (const [name, state, now, expected] of cases) {
    it(name, () => {
      assert.deepEqual(readiness({ ...base, ...state }, now), expected);
    });
  }
  it('re-bootstrap needed with federated bootstrap, gives the federated fix, not bootstrap tokens', () => {
    const { detail } = readiness(
      { ...base, current: undefined, rebootstrapNeeded: true, bootstrapWith: 'federated' },
      before,
    );
    assert.ok(detail.endsWith(`; fix: ${bootstrapRefusal('certificate', false, 'federated').fix}`), detail);
    assert.notEqual(bootstrapRefusal('certificate', false, 'federated').fix, refusal(false).fix);
  });
});
