// The demo (scripts/demo/main.ts), run as `npm run demo` runs it: a bounded run that must end with no failed
// call and several rotations, and an interrupted run; both must leave no process behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { clustersRoot } from '../../scripts/testbed/binaries.ts';
import { isClusterRunning, readClusterState } from '../../scripts/testbed/cluster.ts';
import { eventually } from '../support/eventually.ts';

const DEMO = fileURLToPath(new URL('../../scripts/demo/main.ts', import.meta.url));

function runDemo(args: string[]) {
  const child = spawn(process.execPath, [DEMO, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  // 'close': after the output pipes are drained, so the summary is all there.
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  return { child, exited, output: () => output };
}

/** Processes whose command line mentions the demo's scratch directory or clusters. */
function leftovers(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
      if (state !== 'Z' && /kcr-demo-|clusters\/demo-(source|target)/.test(cmdline))
        found.push(`${pid}: ${cmdline.slice(0, 120)}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function demoClustersRunning(): string[] {
  return ['demo-source', 'demo-target'].filter((name) => {
    const state = readClusterState(clustersRoot(), name);
    return state !== undefined && isClusterRunning(state);
  });
}

describe('npm run demo', () => {
  it('--duration: rotations, a client that never fails, a refused impostor, a summary, exit 0, nothing left running', async () => {
    const demo = runDemo(['--duration', '25', '--rotate-every', '5']);
    const code = await demo.exited;
    const output = demo.output();
    assert.equal(code, 0, output);
    assert.match(output, /building the control plane if needed/);
    assert.match(
      output,
      /bootstrap token [a-z0-9]{6} \(user system:bootstrap:[a-z0-9]{6}, group system:bootstrappers:kubeconfig-rotator:west\)/,
    );
    const rotations = Number(/rotations: (\d+) \(failed 0\)/.exec(output)?.[1] ?? 0);
    assert.ok(rotations >= 4, `${String(rotations)} rotations`);
    const calls = /agent: (\d+) client-node and (\d+) kubectl calls through the published kubeconfig, 0 failed/.exec(
      output,
    );
    assert.ok(calls !== null && Number(calls[1]) > 50 && Number(calls[2]) > 5, output);
    assert.match(
      output,
      /rogue: a sidecar asking for CN=demo-agent-north, O=demo-agents: [1-9]\d* refused: .*identity\.commonName: "demo-agent-north" is not an identity this policy allows/,
    );
    assert.deepEqual(leftovers(), []);
    assert.deepEqual(demoClustersRunning(), []);
  });

  it('--credential token: token rotations, a client that never fails, the guardrail refusing the impostor, no approver', async () => {
    const demo = runDemo(['--credential', 'token', '--duration', '25', '--rotate-every', '5']);
    const code = await demo.exited;
    const output = demo.output();
    assert.equal(code, 0, output);
    assert.match(output, /ServiceAccount kubeconfig-rotator\/kcr-west: the identity/);
    assert.match(output, /ValidatingAdmissionPolicy kcr-token-guardrail\.west\.kubeconfig-rotator refuses/);
    const rotations = Number(/rotations: (\d+) \(failed 0\), current serial [-0-9a-f]{36}/.exec(output)?.[1] ?? 0);
    assert.ok(rotations >= 4, `${String(rotations)} rotations`);
    const calls = /agent: (\d+) client-node and (\d+) kubectl calls through the published kubeconfig, 0 failed/.exec(
      output,
    );
    assert.ok(calls !== null && Number(calls[1]) > 50 && Number(calls[2]) > 5, output);
    assert.match(
      output,
      /rogue: the agent token asking for an unbound 24 h token: [1-9]\d* refused: tokens of kubeconfig-rotator\/kcr-west last at most 3600 s/,
    );
    assert.doesNotMatch(output, /approver:/);
    assert.deepEqual(leftovers(), []);
    assert.deepEqual(demoClustersRunning(), []);
  });

  it('Ctrl-C stops everything cleanly', async () => {
    const demo = runDemo(['--rotate-every', '5']);
    await eventually(() => demo.child.exitCode !== null || /\[\d+s\] rotations/.test(demo.output()), {
      timeoutMs: 180_000,
      intervalMs: 200,
      description: "the demo's first rotations line",
    });
    assert.equal(demo.child.exitCode, null, demo.output());
    demo.child.kill('SIGINT');
    const code = await demo.exited;
    assert.equal(code, 0, demo.output());
    assert.match(demo.output(), /summary\n {2}rotations: \d+ \(failed 0\)/);
    assert.deepEqual(leftovers(), []);
    assert.deepEqual(demoClustersRunning(), []);
  });
});
