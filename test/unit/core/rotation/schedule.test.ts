import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BACKOFF_CAP_MS,
  chooseAuthentication,
  jitterFromSerial,
  retryDelay,
  rotationDeadline,
} from '../../../../src/core/rotation/schedule.ts';

const HOUR = 3_600_000;
const rule = { minFraction: 0.7, maxFraction: 0.9, minRemainingSeconds: 300 };
// A one-hour certificate, backdated 5 minutes as kube-controller-manager does.
const issuedAt = 1_000 * HOUR;
const validity = { notBefore: issuedAt - 300_000, notAfter: issuedAt + HOUR };
const lifetime = validity.notAfter - validity.notBefore;

describe('rotation deadline', () => {
  const cases: [
    string,
    { random: number; rule?: Partial<typeof rule> & { forceIntervalSeconds?: number }; obtainedAt?: number },
    number,
  ][] = [
    ['the smallest random draw renews at 70% of the lifetime', { random: 0 }, validity.notBefore + lifetime * 0.7],
    [
      'the largest random draw renews at 90% of the lifetime',
      { random: 0.999999 },
      validity.notBefore + lifetime * (0.7 + 0.2 * 0.999999),
    ],
    ['a middle draw renews at 80%', { random: 0.5 }, validity.notBefore + lifetime * 0.8],
    [
      'a minimum remaining lifetime larger than 10% wins over a late draw',
      { random: 0.999999, rule: { minRemainingSeconds: 900 } },
      validity.notAfter - 900_000,
    ],
    [
      'a forced interval shorter than the draw wins',
      { random: 0.5, rule: { forceIntervalSeconds: 20 } },
      issuedAt + 20_000,
    ],
    [
      'a forced interval longer than the draw does nothing',
      { random: 0, rule: { forceIntervalSeconds: 7200 } },
      validity.notBefore + lifetime * 0.7,
    ],
    [
      'a certificate loaded late in its life is not renewed in a hot loop: at least 1 s after it was obtained',
      { random: 0, obtainedAt: validity.notAfter - 60_000 },
      validity.notAfter - 60_000 + 1_000,
    ],
    [
      'a certificate about to expire is renewed halfway to its expiry when that is sooner than 1 s',
      { random: 0, obtainedAt: validity.notAfter - 1_000 },
      validity.notAfter - 500,
    ],
  ];
  for (const [name, input, expected] of cases) {
    it(name, () => {
      assert.equal(
        rotationDeadline(validity, input.obtainedAt ?? issuedAt, { ...rule, ...input.rule }, input.random),
        expected,
      );
    });
  }

  it('spreads a fleet that started together uniformly over the window', () => {
    const deadlines = Array.from({ length: 1000 }, (_, i) => rotationDeadline(validity, issuedAt, rule, i / 1000));
    const start = validity.notBefore + lifetime * 0.7;
    const end = validity.notBefore + lifetime * 0.9;
    assert.ok(deadlines.every((deadline) => deadline >= start && deadline < end));
    const buckets = new Array<number>(10).fill(0);
    for (const deadline of deadlines) {
      const bucket = Math.floor(((deadline - start) / (end - start)) * 10);
      buckets[bucket] = (buckets[bucket] ?? 0) + 1;
    }
    assert.deepEqual(buckets, new Array<number>(10).fill(100));
  });
});

describe('retry backoff', () => {
  it('starts at 2 s and doubles', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((failures) => retryDelay(failures, 1)),
      [2_000, 4_000, 8_000, 16_000, 32_000],
    );
  });
  it('is capped at 5 minutes however many failures', () => {
    assert.equal(retryDelay(9, 1), BACKOFF_CAP_MS);
    assert.equal(retryDelay(10_000, 1), BACKOFF_CAP_MS);
  });
  it('jitter takes off up to 20%, never adds', () => {
    assert.equal(retryDelay(1, 0), 1_600);
    assert.equal(retryDelay(20, 0), BACKOFF_CAP_MS * 0.8);
    assert.equal(retryDelay(20, 0.5), BACKOFF_CAP_MS * 0.9);
  });
  it('treats zero or negative failure counts as the first failure', () => {
    assert.equal(retryDelay(0, 1), 2_000);
    assert.equal(retryDelay(-3, 1), 2_000);
  });
});

describe('which credential a request is made with', () => {
  const current = { validity, matchesIdentity: true };
  it('the current certificate while it is valid', () => {
    assert.equal(chooseAuthentication(current, issuedAt), 'current');
    assert.equal(chooseAuthentication(current, validity.notAfter - 1), 'current');
  });
  it('the bootstrap credential once it has expired', () => {
    assert.equal(chooseAuthentication(current, validity.notAfter), 'bootstrap');
  });
  it('the bootstrap credential before it is valid (a clock behind the signer)', () => {
    assert.equal(chooseAuthentication(current, validity.notBefore - 1), 'bootstrap');
  });
  it('the bootstrap credential without a certificate', () => {
    assert.equal(chooseAuthentication(undefined, issuedAt), 'bootstrap');
  });
  it('the bootstrap credential when the certificate carries another identity than configured', () => {
    assert.equal(chooseAuthentication({ validity, matchesIdentity: false }, issuedAt), 'bootstrap');
  });
});

describe('the deadline jitter of a certificate', () => {
  it('is derived from the serial: the same after a restart, in [0, 1)', () => {
    assert.equal(jitterFromSerial('0A1B'), jitterFromSerial('0a1b'));
    const draws = Array.from({ length: 2000 }, (_, i) => jitterFromSerial(i.toString(16)));
    assert.ok(draws.every((draw) => draw >= 0 && draw < 1));
    // Spread like a uniform draw: every tenth of the range gets 10% +- 3%.
    for (let decile = 0; decile < 10; decile++) {
      const share = draws.filter((draw) => Math.floor(draw * 10) === decile).length / draws.length;
      assert.ok(share > 0.07 && share < 0.13, `decile ${String(decile)} has ${String(share)}`);
    }
  });
});
