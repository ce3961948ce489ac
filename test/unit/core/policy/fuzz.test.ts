// Fuzzing the parser and the evaluator together with random and mutated requests and random CSR specs.
// Nothing may throw or hang, a decision must be the same when asked twice, and nothing may be approved
// that an independent restatement of the policy rules (below) does not allow.
// `npm run fuzz` runs 100,000 cases; `npm test` runs FUZZ_CASES (default 3,000). FUZZ_SEED repeats a run.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import { CHECKS, sortFindings, type Approved, type Decision } from '../../../../src/core/policy/decision.ts';
import { completeReview, evaluate } from '../../../../src/core/policy/evaluate.ts';
import { CREDENTIAL_ID_KEY } from '../../../../src/core/policy/renewal.ts';
import type { RequestFacts } from '../../../../src/core/policy/request-checks.ts';
import type { Policy } from '../../../../src/core/policy/schema.ts';
import {
  CLIENT_CERTIFICATE_ID,
  POLICIES,
  keyPool,
  mutationSeeds,
  parsedCase,
  prng,
} from '../../../support/csr-fuzz.ts';
import { EXTENDED_KEY_USAGE, EXTENSION } from '../../../support/hostile-csr.ts';

// --- The oracle: what an approval requires, restated independently of src/core/policy. ---

function globToRegExp(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
    's',
  );
}

function allowedBy(patterns: readonly string[], value: string): boolean {
  return patterns.some((pattern) => globToRegExp(pattern).test(value));
}

function violations(approved: Approved, facts: RequestFacts, policy: Policy): string[] {
  const problems: string[] = [];
  const fail = (what: string) => problems.push(what);
  if (!facts.request.ok) return ['an unparseable request was approved'];
  const request = facts.request.request;
  const key = request.publicKey;
  if (!(
    (key.type === 'rsa' && key.bits >= 2048 && key.exponent === 65_537) ||
    (key.type === 'ec' && (key.curve === 'P-256' || key.curve === 'P-384'))
  ))
    fail(`key ${JSON.stringify(key)}`);
  if (request.subjectAltNames !== undefined) fail('subjectAltNames');
  if (
    request.extensions.some(
      (extension) => ![EXTENSION.keyUsage, EXTENSION.extKeyUsage].includes(extension.oid as '2.5.29.15'),
    )
  )
    fail('extensions');
  if (request.otherAttributes.length > 0) fail('attributes');
  if (request.keyUsages?.some((usage) => usage !== 'digitalSignature' && usage !== 'keyEncipherment'))
    fail('key usages');
  if (request.extendedKeyUsages?.some((usage) => usage !== EXTENDED_KEY_USAGE.clientAuth)) fail('extended key usages');
  const { commonNames, organizations, otherAttributes, multiValuedRdns } = request.subject;
  if (commonNames.length !== 1 || otherAttributes.length > 0 || multiValuedRdns > 0) fail('subject shape');
  const commonName = commonNames[0] ?? '';
  for (const name of [commonName, ...organizations]) {
    if (name.startsWith('system:')) fail(`system name ${name}`);
    if (
      name.trim() === '' ||
      /\p{Cf}/u.test(name) ||
      [...name].some(
        (char) =>
          (char.codePointAt(0) ?? 0) < 0x20 ||
          ((char.codePointAt(0) ?? 0) >= 0x7f && (char.codePointAt(0) ?? 0) <= 0x9f),
      )
    )
      fail(`bad name ${JSON.stringify(name)}`);
  }
  if (
    !facts.usages.includes('client auth') ||
    facts.usages.some((usage) => !['client auth', 'digital signature', 'key encipherment'].includes(usage)) ||
    new Set(facts.usages).size !== facts.usages.length
  )
    fail('usages');
  if (
    facts.expirationSeconds === undefined ||
    facts.expirationSeconds < 600 ||
    facts.expirationSeconds > policy.maxExpirationSeconds
  )
    fail('expirationSeconds');
  if (facts.signerName !== POLICIES.signerName) fail('signer');
  if (
    !allowedBy(policy.identity.commonNames, commonName) ||
    !organizations.every((o) => allowedBy(policy.identity.organizations, o))
  )
    fail('identity');
  const { username, groups } = facts.requester;
  const bootstrap =
    policy.bootstrap.users.includes(username) || groups.some((group) => policy.bootstrap.groups.includes(group));
  const renewal =
    policy.renewal &&
    !username.startsWith('system:') &&
    allowedBy(policy.identity.commonNames, username) &&
    commonName === username &&
    organizations.every((o) => groups.includes(o)) &&
    facts.requester.extra?.[CREDENTIAL_ID_KEY]?.join() === CLIENT_CERTIFICATE_ID &&
    POLICIES.policies.every(
      (other) =>
        !allowedBy(other.identity.commonNames, commonName) ||
        !organizations.every((o) => allowedBy(other.identity.organizations, o)) ||
        (facts.expirationSeconds ?? Infinity) <= other.maxExpirationSeconds,
    );
  if (!bootstrap && !renewal) fail('requester');
  if (approved.dryRun !== policy.dryRun) fail('dry run');
  return problems;
}

describe('fuzzing the parser and the evaluator', () => {
  const cases = Number(process.env.FUZZ_CASES ?? 3_000);
  const seed = Number(process.env.FUZZ_SEED ?? randomInt(2 ** 31));

  it(
    `${String(cases)} random and mutated requests: no crash, no hang, nothing approved that the policy does not allow`,
    { timeout: 120_000 + cases * 10 },
    (t) => {
      t.diagnostic(`seed ${String(seed)} (FUZZ_SEED=${String(seed)} repeats this run)`);
      const random = prng(seed);
      const pool = keyPool();
      const seeds = mutationSeeds(random, pool);
      const kinds = new Map<string, number>();
      const results = new Map<string, number>();
      const started = performance.now();
      for (let i = 0; i < cases; i++) {
        const { kind, facts } = parsedCase(random, pool, seeds);
        const { request } = facts;
        const context = () => `case ${String(i)} (${kind}, seed ${String(seed)})`;
        const evaluation = evaluate(facts, POLICIES);
        assert.deepEqual(evaluate(facts, POLICIES), evaluation, `${context()}: the same facts, another decision`);
        const decision: Decision =
          evaluation.result === 'review'
            ? completeReview(
                evaluation,
                evaluation.candidates.map(() => random.chance(0.5)),
              )
            : evaluation;
        if (decision.result === 'approved') {
          const policy =
            POLICIES.policies.find((entry) => entry.name === decision.policy) ??
            assert.fail(`${context()}: unknown policy`);
          assert.deepEqual(
            violations(decision, facts, policy),
            [],
            `${context()}: approved by ${decision.policy} although it must not be`,
          );
        }
        if (decision.result === 'denied') {
          assert.ok(decision.findings.length > 0, `${context()}: a denial without a reason`);
          assert.ok(
            decision.findings.every((finding) => CHECKS.includes(finding.check)),
            context(),
          );
          assert.deepEqual(
            sortFindings(
              decision.findings,
              POLICIES.policies.map((policy) => policy.name),
            ),
            decision.findings,
            `${context()}: findings out of order`,
          );
        }
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        const label = `${decision.result}${'dryRun' in decision && decision.dryRun ? ' (dry run)' : ''}${request.ok ? '' : ` [${request.stage}]`}`;
        results.set(label, (results.get(label) ?? 0) + 1);
      }
      const seconds = (performance.now() - started) / 1000;
      t.diagnostic(`${String(cases)} cases in ${seconds.toFixed(1)} s (${(cases / seconds).toFixed(0)}/s)`);
      t.diagnostic(`inputs: ${JSON.stringify(Object.fromEntries(kinds))}`);
      t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries([...results].sort()))}`);
      // The oracle must have had work to do: approvals happen, and the parser refused at every stage.
      assert.ok(
        (results.get('approved') ?? 0) > 0,
        'no approval at all: the generator is too hostile for the oracle to be tested',
      );
      if (cases >= 3_000)
        for (const stage of ['size', 'pem', 'der', 'signature'])
          assert.ok(
            [...results.keys()].some((label) => label.includes(`[${stage}]`)),
            `no refusal at stage ${stage}`,
          );
    },
  );
});
