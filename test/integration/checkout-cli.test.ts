// The operator's commands from a checkout: right after `npm ci`, `npx kubeconfig-rotator ...` runs the CLI on
// the Node the `node` dev dependency pins, whatever `node` the machine has first on its PATH (README's
// install steps use it). Also: the package as published still has dist/cli.js as its bin.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { scratchDir } from '../support/sidecar.ts';

const execute = promisify(execFile);
const scratch = scratchDir('checkout-cli');
const checkout = join(scratch.path, 'checkout');
const nodeLog = join(scratch.path, 'machine-node.log');
const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

/** PATH without any node_modules/.bin: what a shell on the machine has. */
const machinePath = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((dir) => dir !== '' && !dir.includes('node_modules'))
  .join(delimiter);

/**
 * The machine's node (20 on this machine kind, which cannot run the sources), wrapped so that every program it
 * starts is logged: npm and npx themselves run on it, the CLI must not.
 */
function machineNodeFirst(): string {
  const machineNode =
    machinePath
      .split(delimiter)
      .map((dir) => join(dir, 'node'))
      .find((candidate) => existsSync(candidate)) ?? process.execPath;
  const wrapper = join(scratch.path, 'machine-node');
  mkdirSync(wrapper, { recursive: true });
  writeFileSync(join(wrapper, 'node'), `#!/bin/sh\nprintf '%s\\n' "$1" >> '${nodeLog}'\nexec '${machineNode}' "$@"\n`);
  chmodSync(join(wrapper, 'node'), 0o755);
  return `${wrapper}${delimiter}${machinePath}`;
}

const env = () => ({ ...process.env, PATH: machineNodeFirst(), npm_config_update_notifier: 'false' });

before(async () => {
  // The working tree as a fresh clone would have it: tracked and new files, nothing ignored (no node_modules,
  // no dist).
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((file) => file !== '' && existsSync(join(REPO_ROOT, file)));
  for (const file of files) {
    mkdirSync(dirname(join(checkout, file)), { recursive: true });
    copyFileSync(join(REPO_ROOT, file), join(checkout, file));
  }
  await execute('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: checkout, env: env() });
});

after(() => {
  // npx keeps the checkout it ran in its cache, one directory per project path: remove this run's.
  const npxCache = join(execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim(), '_npx');
  for (const dir of existsSync(npxCache) ? readdirSync(npxCache) : []) {
    const manifest = join(npxCache, dir, 'package.json');
    if (existsSync(manifest) && readFileSync(manifest, 'utf8').includes(checkout))
      rmSync(join(npxCache, dir), { recursive: true, force: true });
  }
  scratch.dispose();
});

describe('npx kubeconfig-rotator in a checkout', () => {
  it('runs the CLI on the pinned Node right after npm ci, from the checkout and from a subdirectory', async () => {
    writeFileSync(nodeLog, '');
    for (const cwd of [checkout, join(checkout, 'charts')]) {
      const { stdout } = await execute('npx', ['kubeconfig-rotator', '--version'], { cwd, env: env() });
      assert.equal(stdout.trim(), version);
    }
    const help = await execute('npx', ['kubeconfig-rotator', 'status', '--help'], { cwd: checkout, env: env() });
    assert.match(help.stdout, /usage: kubeconfig-rotator status/);
    const started = readFileSync(nodeLog, 'utf8').split('\n').filter(Boolean);
    assert.ok(started.length > 0, 'npx itself ran on the machine node');
    assert.deepEqual(
      started.filter((script) => /kubeconfig-rotator$|cli\.js$/.test(script)),
      [],
      'the CLI never ran on the machine node',
    );
  });

  it('publishes dist/cli.js as the bin, compiled and with its node shebang', async () => {
    const manifest = JSON.parse(readFileSync(join(checkout, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    assert.deepEqual(manifest.bin, { 'kubeconfig-rotator': 'dist/cli.js' });
    const { stdout } = await execute('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: checkout,
      env: env(),
    });
    const [packed] = JSON.parse(stdout) as { files: { path: string }[] }[];
    assert.ok(packed !== undefined, 'npm pack describes one package');
    assert.ok(
      packed.files.some((file) => file.path === 'dist/cli.js'),
      'dist/cli.js is in the package',
    );
    assert.ok(!packed.files.some((file) => file.path.startsWith('src/')), 'no source file is in the package');
    assert.match(readFileSync(join(checkout, 'dist', 'cli.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/);
  });
});
