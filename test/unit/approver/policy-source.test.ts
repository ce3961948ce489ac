// Hot reload of the policy file on a real filesystem, mounted the way the kubelet mounts a ConfigMap.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import fsPromises from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, mock } from 'node:test';
import { readPolicy, watchPolicyFile, type PolicySource } from '../../../src/approver/policy-source.ts';
import type { Problem } from '../../../src/core/config/validate.ts';
import { createLogger } from '../../../src/io/log.ts';
import { writeKubeletMount } from '../../../scripts/testbed/mount.ts';
import { ALIAS_BOMB } from '../../support/hostile-yaml.ts';
import { eventually } from '../../support/eventually.ts';

const root = mkdtempSync(join(tmpdir(), 'kcr-policy-'));
// Closed here too, so that a failed test leaves no watcher holding the process open.
const opened: PolicySource[] = [];
after(async () => {
  await Promise.all(opened.map((source) => source.close()));
  rmSync(root, { recursive: true, force: true });
});

const policy = (commonName: string, signerName = 'kubernetes.io/kube-apiserver-client') => `
signerName: ${signerName}
policies:
  - name: a
    bootstrap: { groups: ['system:bootstrappers:a'] }
    identity: { commonNames: [${commonName}] }
`;

/** Waits until `check` stops throwing (the watcher and its debounce take a moment). */
const until = (check: () => void) => eventually(check, { timeoutMs: 5_000, intervalMs: 20 });

// Reads of the policy file, counted by a spy on fs/promises' readFile (which the source imports): a re-read of
// an unchanged file shows nowhere else.
const readFileSpy = mock.method(fsPromises, 'readFile');
syncBuiltinESMExports();
after(() => {
  readFileSpy.mock.restore();
  syncBuiltinESMExports();
});
const readsOf = (path: string) => readFileSpy.mock.calls.filter((call) => call.arguments[0] === path).length;

/** A source on a fresh mounted policy, once its watch is ready; re-read every 200 ms unless said. */
async function start(name: string, content: string, rereadIntervalMs = 200) {
  const dir = join(root, name);
  const path = writeKubeletMount(dir, { 'policy.yaml': content })['policy.yaml'] ?? assert.fail();
  const changes: number[] = [];
  const rejections: (readonly Problem[])[] = [];
  const source = watchPolicyFile({
    path,
    initial: readPolicy(path),
    logger: createLogger({ name: 'test', level: 'silent' }),
    onChange: (current) => changes.push(current.generation),
    onRejected: (problems) => rejections.push(problems),
    debounceMs: 50,
    rereadIntervalMs,
  });
  opened.push(source);
  await source.ready;
  const commonNames = () => source.current.file.policies[0]?.identity.commonNames;
  return { dir, path, source, changes, rejections, commonNames };
}

describe('the policy file is hot-reloaded', () => {
  it('a valid change mounted by a ..data swap takes effect, with a new generation', async () => {
    const { dir, source, changes, commonNames } = await start('valid', policy('agent-a'));
    assert.deepEqual([source.current.generation, commonNames()], [1, ['agent-a']]);
    writeKubeletMount(dir, { 'policy.yaml': policy('agent-b') });
    await until(() => {
      assert.deepEqual(commonNames(), ['agent-b']);
    });
    assert.equal(source.current.generation, 2);
    writeKubeletMount(dir, { 'policy.yaml': policy('agent-c') });
    await until(() => {
      assert.deepEqual(commonNames(), ['agent-c']);
    });
    assert.deepEqual(changes, [2, 3]);
    await source.close();
  });

  it('a ..data swap is seen by the watch, without waiting for the periodic re-read', async () => {
    const { dir, source, commonNames } = await start('watched', policy('agent-a'), 600_000);
    writeKubeletMount(dir, { 'policy.yaml': policy('agent-b') });
    await until(() => {
      assert.deepEqual(commonNames(), ['agent-b']);
    });
    assert.equal(source.current.generation, 2);
    await source.close();
  });

  it('an invalid file keeps the current policy and is reported once, however often it is re-read', async () => {
    const { dir, path, source, rejections, commonNames } = await start('invalid', policy('agent-a'));
    writeKubeletMount(dir, { 'policy.yaml': 'policies:\n  - name: a\n    identity: { commonNames: [] }\n' });
    await until(() => {
      assert.equal(rejections.length, 1);
    });
    // Re-reads are serial, so once the third after the report has begun, two have come to their conclusion.
    const reads = readsOf(path);
    await eventually(() => readsOf(path) >= reads + 3, { timeoutMs: 5_000, intervalMs: 20, description: 're-reads' });
    assert.equal(rejections.length, 1, 'the same bad file, re-read, is not reported again');
    assert.deepEqual(
      rejections[0]?.map((problem) => problem.path),
      ['policies[0].identity.commonNames'],
    );
    assert.deepEqual([source.current.generation, commonNames()], [1, ['agent-a']]);
    writeKubeletMount(dir, { 'policy.yaml': policy('agent-b') });
    await until(() => {
      assert.deepEqual(commonNames(), ['agent-b']);
    });
    await source.close();
  });

  it('a YAML alias bomb is rejected like any invalid file; the policy stays and later changes still apply', async () => {
    const { dir, source, rejections, commonNames } = await start('bomb', policy('agent-a'));
    writeKubeletMount(dir, { 'policy.yaml': ALIAS_BOMB });
    await until(() => {
      assert.equal(rejections.length, 1);
    });
    assert.match(rejections[0]?.[0]?.message ?? '', /invalid YAML: Excessive alias count/);
    assert.deepEqual([source.current.generation, commonNames()], [1, ['agent-a']]);
    writeKubeletMount(dir, { 'policy.yaml': policy('agent-b') });
    await until(() => {
      assert.deepEqual(commonNames(), ['agent-b']);
    });
    await source.close();
  });

  it('a new signer is refused: it needs a restart and RBAC of its own', async () => {
    const { dir, source, rejections, commonNames } = await start('signer', policy('agent-a'));
    writeKubeletMount(dir, { 'policy.yaml': policy('agent-b', 'example.com/other') });
    await until(() => {
      assert.equal(rejections.length, 1);
    });
    assert.match(
      rejections[0]?.[0]?.message ?? '',
      /changes from kubernetes.io\/kube-apiserver-client; a new signer needs a restart/,
    );
    assert.deepEqual(commonNames(), ['agent-a']);
    await source.close();
  });

  it('a vanished file keeps the current policy and is reported', async () => {
    const { path, source, rejections, commonNames } = await start('vanished', policy('agent-a'));
    unlinkSync(path);
    await until(() => {
      assert.equal(rejections.length, 1);
    });
    assert.match(rejections[0]?.[0]?.message ?? '', /cannot be read: .*ENOENT/);
    assert.deepEqual(commonNames(), ['agent-a']);
    await source.close();
  });

  it('a bad file at start is refused with every problem by field path and line', () => {
    const dir = join(root, 'bad-start');
    const path =
      writeKubeletMount(dir, {
        'policy.yaml': 'policies:\n  - name: A\n    identity: { commonNames: [x] }\n    colour: blue\n',
      })['policy.yaml'] ?? assert.fail();
    assert.throws(
      () => readPolicy(path),
      (error: Error) => {
        assert.match(error.message, /policy.yaml: 2 problems\n/);
        assert.match(error.message, /policy.yaml:2:11: policies\[0\]\.name: must be lowercase/);
        assert.match(error.message, /policy.yaml:4:13: policies\[0\]\.colour: unknown field/);
        return true;
      },
    );
    const bomb = writeKubeletMount(join(root, 'bomb-start'), { 'policy.yaml': ALIAS_BOMB })['policy.yaml'] ?? '';
    assert.throws(
      () => readPolicy(bomb),
      /policy.yaml: 1 problem\n {2}.*policy.yaml: invalid YAML: Excessive alias count/,
    );
    assert.throws(
      () => readPolicy(join(dir, 'missing.yaml')),
      /missing.yaml: 1 problem\n {2}.*missing.yaml: cannot be read: ENOENT/,
    );
  });
});
