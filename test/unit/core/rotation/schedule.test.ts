import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BACKOFF_CAP_MS,
  BACKOFF_CAP_WITHOUT_CREDENTIAL_MS,
  CONSUMER_RELOAD_MS,
  chooseAuthentication,
  jitterFromSerial,
  reloadMarginShortfall,
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
    {
      random: number;
      rule?: Partial<typeof rule> & { forceIntervalSeconds?: number };
      obtainedAt?: number;
      loaded?: boolean;
    },
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
      { random: 0, obtainedAt: validity.notAfter - 60_000, loaded: true },
      validity.notAfter - 60_000 + 1_000,
    ],
    [
      'a certificate about to expire is renewed halfway to its expiry when that is sooner than 1 s',
      { random: 0, obtainedAt: validity.notAfter - 1_000, loaded: true },
      validity.notAfter - 500,
    ],
    [
      'a certificate just issued with less life than the floor is used for a quarter of it, not renewed every second',
      { random: 0, obtainedAt: validity.notAfter - 240_000 },
      validity.notAfter - 240_000 + 60_000,
    ],
    [
      'a certificate just issued barely longer than the floor is used for a quarter of its life, not 2 s',
      { random: 0, obtainedAt: validity.notAfter - 302_000 },
      validity.notAfter - 302_000 + 75_500,
    ],
    [
      'a forced interval still wins over the quarter-life rule (demos and tests rotate every few seconds)',
      { random: 0, obtainedAt: validity.notAfter - 240_000, rule: { forceIntervalSeconds: 3 } },
      validity.notAfter - 240_000 + 3_000,
    ],
  ];
  for (const [name, input, expected] of cases) {
    it(name, () => {
      assert.equal(
        rotationDeadline(
          validity,
          { at: input.obtainedAt ?? issuedAt, issued: input.loaded !== true },
          { ...rule, ...input.rule },
          input.random,
        ),
        expected,
      );
    });
  }

  it('spreads a fleet that started together uniformly over the window', () => {
    const deadlines = Array.from({ length: 1000 }, (_, i) =>
      rotationDeadline(validity, { at: issuedAt, issued: true }, rule, i / 1000),
    );
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

describe('time left for consumers to reload', () => {
  // kube-controller-manager backdates NotBefore by 5 minutes and, below 8 h, keeps NotAfter at issue + TTL.
  const issuedBy = (ttlSeconds: number) => ({ notBefore: issuedAt - 300_000, notAfter: issuedAt + ttlSeconds * 1000 });
  const defaults = { minFraction: 0.7, maxFraction: 0.9, minRemainingSeconds: 420 };
  for (const ttl of [600, 601, 900, 1800, 3600, 7200, 86_400, 7 * 86_400]) {
    it(`the default rule publishes a ${ttl} s certificate's successor over 5 minutes before it expires, for every draw`, () => {
      for (const random of [0, 0.25, 0.5, 0.75, 0.999999]) {
        const validity = issuedBy(ttl);
        const deadline = rotationDeadline(validity, { at: issuedAt, issued: true }, defaults, random);
        assert.ok(validity.notAfter - deadline >= CONSUMER_RELOAD_MS + 120_000, `${ttl} s, draw ${random}`);
        assert.ok(deadline - issuedAt >= 150_000, `${ttl} s, draw ${random}: renewed too soon`);
        assert.equal(reloadMarginShortfall(validity, deadline), 0);
      }
    });
  }
  it('a signer issuing 4-minute certificates leaves consumers 3 minutes: 2 minutes short', () => {
    const validity = issuedBy(240);
    const deadline = rotationDeadline(validity, { at: issuedAt, issued: true }, defaults, 0.5);
    assert.equal(deadline, issuedAt + 60_000);
    assert.equal(reloadMarginShortfall(validity, deadline), 120_000);
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
  it('is capped at 30 s while no usable credential is held (after an outage, recovery within 30 s)', () => {
    assert.equal(retryDelay(5, 1, BACKOFF_CAP_WITHOUT_CREDENTIAL_MS), 30_000);
    assert.equal(retryDelay(10_000, 1, BACKOFF_CAP_WITHOUT_CREDENTIAL_MS), 30_000);
    assert.equal(retryDelay(4, 1, BACKOFF_CAP_WITHOUT_CREDENTIAL_MS), 16_000);
    assert.equal(retryDelay(20, 0, BACKOFF_CAP_WITHOUT_CREDENTIAL_MS), 24_000);
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
