// Differential test of the approver's reading of a request against Kubernetes' own (issue 11): our parser and
// evaluator, and csrprobe (kube-apiserver's create validation, kube-controller-manager's signer and the
// apiserver's x509 authenticator, built from the pinned Kubernetes), judge the same requests. Wherever we
// would approve, Kubernetes must accept the request and issue exactly the identity the approval names;
// wherever Kubernetes refuses, we must not approve. Needs no cluster, only the binaries the integration stage
// builds. `npm test` runs FUZZ_CASES (default 3,000) generated cases, `npm run fuzz` 100,000; FUZZ_SEED repeats.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { buildCertificationRequest } from '../../src/core/pki/csr.ts';
import { parseCertificationRequest } from '../../src/core/pki/csr-parse.ts';
import { generateKeyPair } from '../../src/core/pki/keys.ts';
import type { Check, Decision } from '../../src/core/policy/decision.ts';
import { completeReview, evaluate } from '../../src/core/policy/evaluate.ts';
import type { RequestFacts, Requester } from '../../src/core/policy/request-checks.ts';
import { POLICIES, keyPool, mutationSeeds, prng, parsedCase, type Random } from '../support/csr-fuzz.ts';
import { startCsrProbe, type CsrProbe, type ProbeAnswer } from '../support/csr-probe.ts';
import {
  ATTRIBUTE,
  EXTENDED_KEY_USAGE,
  EXTENSION,
  KEY_USAGE_BIT,
  extendedKeyUsageValue,
  keyPair,
  keyUsageValue,
  requestPem,
  subject,
  type NameAttribute,
  type RequestShape,
} from '../support/hostile-csr.ts';

/** One request judged by both sides. */
interface Judged {
  readonly facts: RequestFacts;
  readonly decision: Decision;
  readonly answer: ProbeAnswer;
}

function decide(facts: RequestFacts, random: Random): Decision {
  const evaluation = evaluate(facts, POLICIES);
  if (evaluation.result !== 'review') return evaluation;
  return completeReview(
    evaluation,
    evaluation.candidates.map(() => random.chance(0.5)),
  );
}

// Groups compared as sorted lists: the signer writes every O into one RDN, a SET OF, which DER orders.
const identityOf = (user: string, groups: readonly string[]) => JSON.stringify({ user, groups: [...groups].sort() });

/** Why the two readings disagree about an identity, or undefined when they agree. */
function disagreement({ decision, answer }: Judged): string | undefined {
  if (decision.result !== 'approved') return undefined;
  if (!answer.accepted)
    return `approved by ${decision.policy}, but Kubernetes refuses it (${answer.stage}: ${answer.reason})`;
  const ours = identityOf(decision.identity.commonName, decision.identity.organizations);
  const theirs = identityOf(answer.user, answer.groups);
  return ours === theirs ? undefined : `approved as ${ours}, but the issued certificate authenticates as ${theirs}`;
}

async function judge(
  probe: CsrProbe,
  inputs: readonly { input: string | Uint8Array; facts: RequestFacts }[],
  random: Random,
) {
  const answers = await probe.judge(
    inputs.map(({ input, facts }) => ({
      request: input,
      usages: facts.usages,
      ...(facts.expirationSeconds === undefined ? {} : { expirationSeconds: facts.expirationSeconds }),
    })),
  );
  return inputs.map(({ facts }, index): Judged => {
    const answer = answers[index] ?? assert.fail(`no answer for request ${String(index)}`);
    return { facts, decision: decide(facts, random), answer };
  });
}

const BOOTSTRAP_A: Requester = {
  username: 'system:bootstrap:aaaaaa',
  groups: ['system:bootstrappers', 'system:bootstrappers:kcr:a', 'system:authenticated'],
};

function factsFor(input: string, usages: readonly string[] = ['digital signature', 'client auth']): RequestFacts {
  return {
    signerName: POLICIES.signerName,
    usages,
    expirationSeconds: 3600,
    requester: BOOTSTRAP_A,
    request: parseCertificationRequest(input),
  };
}

const cn = (value: string, type?: NameAttribute['type']): NameAttribute => ({
  oid: ATTRIBUTE.commonName,
  value,
  ...(type === undefined ? {} : { type }),
});
const o = (value: string, type?: NameAttribute['type']): NameAttribute => ({
  oid: ATTRIBUTE.organizationName,
  value,
  ...(type === undefined ? {} : { type }),
});

interface NamedCase {
  readonly name: string;
  readonly pem: string;
  readonly usages?: readonly string[];
  /** 'approved', or the check a denial must name. */
  readonly expected: 'approved' | Check;
}

function namedCases(): NamedCase[] {
  const shaped = (shape: RequestShape) => requestPem(shape);
  const withExtension = (oid: string, value: ReturnType<typeof keyUsageValue>) =>
    shaped({ subject: subject('agent-a', ['team-a']), extensions: [{ oid, value }] });
  return [
    {
      name: 'our own ECDSA request',
      pem: buildCertificationRequest(
        { commonName: 'agent-a', organizations: ['team-a'] },
        generateKeyPair('ecdsa-p256'),
      ),
      expected: 'approved',
    },
    {
      name: 'our own RSA request',
      pem: buildCertificationRequest({ commonName: 'agent-a', organizations: ['team-a'] }, generateKeyPair('rsa-2048')),
      usages: ['digital signature', 'key encipherment', 'client auth'],
      expected: 'approved',
    },
    {
      name: 'groups in another order than DER sorts them',
      pem: shaped({ subject: subject('cluster-a-x', ['team-a', 'shared-b', 'shared-a']) }),
      expected: 'approved',
    },
    {
      name: 'a PrintableString CN',
      pem: shaped({ subject: [[o('team-a')], [cn('agent-a', 'printable')]] }),
      expected: 'approved',
    },
    {
      name: 'keyUsage digitalSignature and keyEncipherment, extendedKeyUsage clientAuth',
      pem: shaped({
        subject: subject('agent-a', ['team-a']),
        extensions: [
          {
            oid: EXTENSION.keyUsage,
            critical: true,
            value: keyUsageValue([KEY_USAGE_BIT.digitalSignature, KEY_USAGE_BIT.keyEncipherment]),
          },
          { oid: EXTENSION.extKeyUsage, value: extendedKeyUsageValue([EXTENDED_KEY_USAGE.clientAuth]) },
        ],
      }),
      expected: 'approved',
    },
    {
      name: 'a byte-order mark leading the CN',
      pem: shaped({ subject: subject('\ufeffagent-a', ['team-a']) }),
      expected: 'request.subject',
    },
    {
      name: 'a byte-order mark leading an O',
      pem: shaped({ subject: subject('agent-a', ['\ufeffteam-a']) }),
      expected: 'request.subject',
    },
    {
      name: 'a zero-width space in the CN',
      pem: shaped({ subject: subject('cluster-a-\u200bx', ['team-a']) }),
      expected: 'request.subject',
    },
    {
      name: 'a word joiner in the CN',
      pem: shaped({ subject: subject('cluster-a-x\u2060', ['team-a']) }),
      expected: 'request.subject',
    },
    {
      name: 'a bidi override in an O',
      pem: shaped({ subject: subject('agent-a', ['shared-\u202eatem']) }),
      expected: 'request.subject',
    },
    {
      name: 'a bidi isolate in an O',
      pem: shaped({ subject: subject('agent-a', ['shared-\u2066x\u2069']) }),
      expected: 'request.subject',
    },
    {
      name: 'a BMPString CN',
      pem: shaped({ subject: [[o('team-a')], [cn('agent-a', 'bmp')]] }),
      expected: 'request.subject',
    },
    {
      name: 'a BMPString CN outside the Basic Multilingual Plane (surrogates: Go refuses it)',
      pem: shaped({ subject: [[o('team-a')], [cn('cluster-a-\u{1f600}', 'bmp')]] }),
      expected: 'request.subject',
    },
    {
      name: 'a BMPString CN ending in the terminator Go strips',
      pem: shaped({ subject: [[o('team-a')], [cn('cluster-a-x\u0000', 'bmp')]] }),
      expected: 'request.subject',
    },
    {
      name: 'a T61String O',
      pem: shaped({ subject: [[o('team-a', 't61')], [cn('agent-a')]] }),
      expected: 'request.subject',
    },
    {
      name: 'a T61String O with a Latin-1 letter',
      pem: shaped({ subject: [[o('shared-\u00e9', 't61')], [cn('agent-a')]] }),
      expected: 'request.subject',
    },
    { name: 'an IA5String CN', pem: shaped({ subject: [[cn('agent-a', 'ia5')]] }), expected: 'request.subject' },
    {
      name: 'a UniversalString CN',
      pem: shaped({ subject: [[cn('agent-a', 'universal')]] }),
      expected: 'request.subject',
    },
    {
      name: 'a NumericString O',
      pem: shaped({ subject: [[o('1234', 'numeric')], [cn('agent-a')]] }),
      expected: 'request.subject',
    },
    {
      name: 'RSA public exponent 3',
      pem: shaped({ subject: subject('agent-a'), keys: keyPair('rsa2048-e3') }),
      expected: 'request.key',
    },
    {
      name: 'RSA public exponent 65539',
      pem: shaped({ subject: subject('agent-a'), keys: keyPair('rsa2048-e65539') }),
      expected: 'request.key',
    },
    {
      name: 'extendedKeyUsage serverAuth',
      pem: withExtension(
        EXTENSION.extKeyUsage,
        extendedKeyUsageValue([EXTENDED_KEY_USAGE.clientAuth, EXTENDED_KEY_USAGE.serverAuth]),
      ),
      expected: 'request.extensions',
    },
    {
      name: 'extendedKeyUsage codeSigning',
      pem: withExtension(EXTENSION.extKeyUsage, extendedKeyUsageValue([EXTENDED_KEY_USAGE.codeSigning])),
      expected: 'request.extensions',
    },
    {
      name: 'keyUsage keyCertSign',
      pem: withExtension(
        EXTENSION.keyUsage,
        keyUsageValue([KEY_USAGE_BIT.digitalSignature, KEY_USAGE_BIT.keyCertSign]),
      ),
      expected: 'request.extensions',
    },
    // The hostile corpus of the approver's own tests: Kubernetes accepts or refuses these; we deny them all.
    {
      name: 'a DNS subjectAltName',
      pem: shaped({ subject: subject('agent-a'), subjectAltNames: [{ dns: 'kubernetes.default' }] }),
      expected: 'request.subjectAltNames',
    },
    {
      name: 'two CNs (Go takes the last)',
      pem: shaped({ subject: [[cn('agent-a')], [cn('system:admin')]] }),
      expected: 'request.subject',
    },
    {
      name: 'an O hidden in a multi-valued RDN',
      pem: shaped({ subject: [[cn('agent-a'), o('team-a')]] }),
      expected: 'request.subject',
    },
    {
      name: 'a control character in the CN',
      pem: shaped({ subject: subject('agent-a\nadmin') }),
      expected: 'request.subject',
    },
    {
      name: 'O=system:masters',
      pem: shaped({ subject: subject('agent-a', ['system:masters']) }),
      expected: 'identity.system',
    },
    {
      name: 'a signature by another key',
      pem: shaped({ subject: subject('agent-a'), signingKey: keyPair('p256').privateKey }),
      expected: 'request.signature',
    },
    {
      name: 'a SHA-1 signature',
      pem: shaped({ subject: subject('agent-a'), digest: 'sha1' }),
      expected: 'request.signature',
    },
    {
      name: 'garbage after the PEM block (Go ignores it)',
      pem: `${shaped({ subject: subject('agent-a') })}garbage\n`,
      expected: 'request.pem',
    },
    {
      name: 'a second PEM block (Go reads only the first)',
      pem: shaped({ subject: subject('agent-a') }) + shaped({ subject: subject('system:admin', ['system:masters']) }),
      expected: 'request.pem',
    },
  ];
}

describe('the approver reads a request as Kubernetes does (differential test against csrprobe)', () => {
  let probe: CsrProbe | undefined;
  before(async () => {
    probe = await startCsrProbe();
  });
  after(async () => {
    await probe?.close();
  });
  const probed = () => probe ?? assert.fail('csrprobe did not start');

  it('named cases: the decision we expect, and Kubernetes issues exactly the identity we approve', async () => {
    const cases = namedCases();
    const judged = await judge(
      probed(),
      cases.map(({ pem, usages }) => ({ input: pem, facts: factsFor(pem, usages) })),
      prng(1),
    );
    const problems = cases.flatMap((entry, index) => {
      const both = judged[index] ?? assert.fail(`no judgement for ${entry.name}`);
      const { decision, answer } = both;
      const found = [
        disagreement(both),
        entry.expected === 'approved'
          ? decision.result === 'approved'
            ? undefined
            : `expected an approval, got ${JSON.stringify(decision)}`
          : decision.result === 'denied' && decision.findings.some((finding) => finding.check === entry.expected)
            ? undefined
            : `expected a denial naming ${entry.expected}, got ${JSON.stringify(decision)}`,
      ].filter((problem) => problem !== undefined);
      return found.map((problem) => `${entry.name}: ${problem} [Kubernetes: ${JSON.stringify(answer)}]`);
    });
    assert.deepEqual(problems, []);
  });

  const cases = Number(process.env.FUZZ_CASES ?? 3_000);
  const seed = Number(process.env.FUZZ_SEED ?? randomInt(2 ** 31));
  it(
    `${String(cases)} fuzzed and mutated requests: no disagreement about the identity`,
    { timeout: 120_000 + cases * 10 },
    async (t) => {
      t.diagnostic(`seed ${String(seed)} (FUZZ_SEED=${String(seed)} repeats this run)`);
      const random = prng(seed);
      const pool = keyPool();
      const seeds = mutationSeeds(random, pool);
      const started = performance.now();
      const tally = new Map<string, number>();
      const count = (label: string) => tally.set(label, (tally.get(label) ?? 0) + 1);
      const problems: string[] = [];
      for (let done = 0; done < cases;) {
        const batch = Array.from({ length: Math.min(500, cases - done) }, () => parsedCase(random, pool, seeds));
        const judged = await judge(probed(), batch, random);
        judged.forEach((entry, index) => {
          const problem = disagreement(entry);
          if (problem !== undefined)
            problems.push(`case ${String(done + index)} (${batch[index]?.kind ?? ''}): ${problem}`);
          count(`${entry.decision.result} / ${entry.answer.accepted ? 'issued' : `refused at ${entry.answer.stage}`}`);
        });
        done += batch.length;
      }
      const seconds = (performance.now() - started) / 1000;
      t.diagnostic(`${String(cases)} cases in ${seconds.toFixed(1)} s (${(cases / seconds).toFixed(0)}/s)`);
      t.diagnostic(`ours / Kubernetes: ${JSON.stringify(Object.fromEntries([...tally].sort()))}`);
      assert.deepEqual(problems.slice(0, 20), [], `${String(problems.length)} disagreements, seed ${String(seed)}`);
      // Both sides must have had work to do: approvals Kubernetes issues, and requests Kubernetes refuses.
      assert.ok((tally.get('approved / issued') ?? 0) > 0, 'no approval issued: nothing was compared');
      assert.ok(
        [...tally.keys()].some((label) => label.includes('refused at create')),
        'Kubernetes refused nothing',
      );
    },
  );
});
