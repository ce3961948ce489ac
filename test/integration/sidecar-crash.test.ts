// Crash consistency: the sidecar killed with SIGKILL at every step of a rotation (by fault injection: a
// failpoint preloaded with node --import, test/support/failpoint.ts, on the sidecar's step channel) and at
// random moments, hundreds of times. After each kill the directory output must hold either the previous
// complete set or a new complete set, with the certificate matching the key; the next start carries on.
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseKubeconfig } from '../../src/core/kubeconfig/parse.ts';
import { keyMatchesCertificate, readCertificate } from '../../src/core/pki/certificate.ts';
import { testCluster } from '../support/clusters.ts';
import {
  outputDir,
  prepareTarget,
  rotated,
  sidecarTestFile,
  TestApprover,
  writeSidecarConfig,
  type PreparedTarget,
} from '../support/sidecar.ts';

const STEPS = [
  'pending-key-saved',
  'csr-created',
  'certificate-issued',
  'certificate-checked',
  'version-directory-created',
  'wrote-tls.crt',
  'wrote-tls.key',
  'wrote-ca.crt',
  'wrote-kubeconfig',
  'verified',
  'data-link-created',
  'data-link-swapped',
  'links-ensured',
  'old-versions-removed',
  'published',
  'pending-cleared',
];
const FAILPOINT = fileURLToPath(new URL('../support/failpoint.ts', import.meta.url));
const KILLS_PER_STEP = 8;
const RANDOM_KILLS = 84;
const LANES = 4;

const target = testCluster('target');
const { secrets, startSidecar } = sidecarTestFile('sidecar-crash');

interface OutputSet {
  readonly serial: string;
  readonly notBefore: number;
  readonly files: Record<string, string>;
}

/** Reads the published set and fails unless it is complete and consistent. */
function inspect(prepared: PreparedTarget): OutputSet {
  const dir = outputDir(prepared);
  const version = readlinkSync(join(dir, '..data'));
  assert.match(version, /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[0-9a-f]+$/, '..data points at a version directory');
  const files: Record<string, string> = {};
  for (const name of ['tls.crt', 'tls.key', 'ca.crt', 'kubeconfig']) {
    files[name] = readFileSync(join(dir, version, name), 'utf8');
    assert.equal(readlinkSync(join(dir, name)), `..data/${name}`, `${name} is a stable link into ..data`);
  }
  assert.equal(statSync(join(dir, version, 'tls.key')).mode & 0o777, 0o600, 'the key is 0600');
  const facts = readCertificate(files['tls.crt'] ?? '');
  assert.ok(keyMatchesCertificate(files['tls.key'] ?? '', facts), 'the certificate matches the key');
  const kubeconfig = parseKubeconfig(files.kubeconfig ?? '');
  assert.deepEqual(
    [kubeconfig.clientCertificate, kubeconfig.clientKey, kubeconfig.certificateAuthority],
    [{ file: 'tls.crt' }, { file: 'tls.key' }, { file: 'ca.crt' }],
  );
  assert.equal(kubeconfig.server, target.state.server);
  assert.equal(files['ca.crt'], readFileSync(target.state.caCertFile, 'utf8'));
  return { serial: facts.serial, notBefore: facts.notBefore, files };
}

function pendingKeyIsPrivate(prepared: PreparedTarget): void {
  try {
    assert.equal(statSync(join(prepared.dir, 'state', prepared.name, 'pending.json')).mode & 0o777, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

type Plan = { kind: 'failpoint'; step: string } | { kind: 'random'; delayMs: number };

it(`the output is always the old or the new complete set across ${String(STEPS.length * KILLS_PER_STEP + RANDOM_KILLS)} kill -9`, async () => {
  const plans: Plan[] = [
    ...STEPS.flatMap((step) => Array.from({ length: KILLS_PER_STEP }, () => ({ kind: 'failpoint' as const, step }))),
    ...Array.from({ length: RANDOM_KILLS }, () => ({
      kind: 'random' as const,
      delayMs: Math.floor(Math.random() * 1500),
    })),
  ];
  const killedAfter = new Map<string, number>();
  const outcomes = { unchanged: 0, replaced: 0 };

  async function lane(plansOfLane: Plan[]): Promise<void> {
    const prepared = await prepareTarget(target);
    secrets.push(prepared.bootstrap.token.secret);
    const approver = new TestApprover(target.admin(), prepared.name, { pollMs: 25 });
    const config = writeSidecarConfig(prepared, {
      forceIntervalSeconds: 1,
      logLevel: 'trace',
      rereadIntervalSeconds: 3600,
    });
    const start = (env: NodeJS.ProcessEnv = {}) => startSidecar(config, { env, nodeOptions: ['--import', FAILPOINT] });
    try {
      const first = start();
      await first.waitForLog(rotated);
      await first.stop();
      let before = inspect(prepared);
      for (const plan of plansOfLane) {
        const sidecar = start(plan.kind === 'failpoint' ? { KCR_FAILPOINT: plan.step } : {});
        if (plan.kind === 'random') {
          await sidecar.waitForLog((line) => line.msg === 'starting');
          await sleep(plan.delayMs);
          sidecar.child.kill('SIGKILL');
        }
        const exit = await Promise.race([sidecar.exited, sleep(30_000).then(() => undefined)]);
        assert.equal(
          exit?.signal,
          'SIGKILL',
          `${JSON.stringify(plan)}: the sidecar was killed (exit ${JSON.stringify(exit)})`,
        );
        const steps = sidecar.lines.filter((line) => line.msg === 'step');
        const last = steps.length === 0 ? '(before any step)' : String(steps[steps.length - 1]?.step);
        if (plan.kind === 'failpoint') assert.equal(last, plan.step, 'died right after the failpoint');
        killedAfter.set(last, (killedAfter.get(last) ?? 0) + 1);

        const now = inspect(prepared);
        pendingKeyIsPrivate(prepared);
        if (now.serial === before.serial) {
          assert.deepEqual(
            now.files,
            before.files,
            `${JSON.stringify(plan)}: same certificate, so the same complete set`,
          );
          outcomes.unchanged++;
        } else {
          assert.ok(now.notBefore >= before.notBefore, 'a replaced set holds a newer certificate');
          outcomes.replaced++;
        }
        secrets.push(now.files['tls.key'] ?? '');
        before = now;
      }
      // After all that, a normal start still rotates and publishes.
      const last = start();
      await last.waitForLog(rotated);
      await last.stop();
      inspect(prepared);
    } finally {
      await approver.stop();
    }
  }

  await Promise.all(
    Array.from({ length: LANES }, (_, lane_) => lane(plans.filter((_, index) => index % LANES === lane_))),
  );
  const total = outcomes.unchanged + outcomes.replaced;
  process.stderr.write(
    `crash consistency: ${String(total)} kills (${String(STEPS.length * KILLS_PER_STEP)} at failpoints, ${String(RANDOM_KILLS)} at random times); ` +
      `output unchanged ${String(outcomes.unchanged)}, replaced by a complete new set ${String(outcomes.replaced)}, inconsistent 0\n` +
      `kills by last step reached: ${[...killedAfter.entries()].map(([step, count]) => `${step}=${String(count)}`).join(', ')}\n`,
  );
  assert.equal(total, plans.length);
  for (const step of STEPS)
    assert.ok((killedAfter.get(step) ?? 0) >= KILLS_PER_STEP, `at least ${String(KILLS_PER_STEP)} kills after ${step}`);
});
