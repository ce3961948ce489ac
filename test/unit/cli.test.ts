// The command line as a user meets it: spawned, with exit statuses and output checked.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

function run(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('kubeconfig-rotator CLI', () => {
  it('--help lists every subcommand and exits 0', () => {
    const { status, stdout } = run('--help');
    assert.equal(status, 0);
    for (const command of ['sidecar', 'approver', 'bootstrap', 'status', 'injector']) {
      assert.match(stdout, new RegExp(`^  ${command} `, 'm'));
    }
  });

  it('has no demo command: the demo is a development script (npm run demo), not part of what ships', () => {
    const { status, stderr } = run('demo');
    assert.equal(status, 2);
    assert.match(stderr, /unknown command "demo"/);
    assert.doesNotMatch(run('--help').stdout, /demo/);
  });

  it('--version prints the package version', () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const { status, stdout } = run('--version');
    assert.equal(status, 0);
    assert.equal(stdout, `${version}\n`);
  });

  it('no command, an unknown command or an unknown flag prints usage and exits 2', () => {
    for (const [args, message] of [
      [[], 'no command given'],
      [['rotate'], 'unknown command "rotate"'],
      [['sidecar', '--bogus'], "Unknown option '--bogus'"],
      [['approver', 'extra'], 'positional'],
    ] as const) {
      const { status, stderr } = run(...args);
      assert.equal(status, 2, `${args.join(' ')}: exit status`);
      assert.ok(stderr.includes(message), `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, /usage: kubeconfig-rotator <command>/);
    }
  });

  it('<command> --help shows that command and exits 0', () => {
    const { status, stdout } = run('sidecar', '--help');
    assert.equal(status, 0);
    assert.match(stdout, /^usage: kubeconfig-rotator sidecar --config FILE/);
  });
});
