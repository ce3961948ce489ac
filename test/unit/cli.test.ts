// The command line as a user meets it: spawned, with exit statuses and output checked.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  it('check refuses bad usage with every problem at once, exit 2, before touching a cluster', () => {
    const { status, stderr } = run(
      'check',
      '--source-name',
      'Bad_Name',
      '--target-name',
      'east',
      '--target-kubeconfig',
      '/nonexistent/kubeconfig',
      '--output',
      'yaml',
      '--service-account',
      'agent',
    );
    assert.equal(status, 2);
    assert.match(stderr, /kubeconfig-rotator check: 4 problems/);
    assert.match(stderr, /--output yaml must be text or json/);
    assert.match(stderr, /--source-name "Bad_Name" must be a DNS label/);
    assert.match(stderr, /--service-account agent must be NAMESPACE\/NAME/);
    assert.match(stderr, /--target-kubeconfig \/nonexistent\/kubeconfig: cannot be loaded/);
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

  it('sidecar: a sourceKubeconfig holding what the client does not support exits 2 naming the file and the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcr-cli-'));
    try {
      const kubeconfig = join(dir, 'source.kubeconfig');
      writeFileSync(
        kubeconfig,
        JSON.stringify({
          'current-context': 'c',
          contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
          clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443' } }],
          users: [{ name: 'u', user: { 'auth-provider': { name: 'oidc' } } }],
        }),
      );
      const config = join(dir, 'config.yaml');
      writeFileSync(
        config,
        `sourceKubeconfig: ${kubeconfig}\ntargets:\n  - { name: a, bootstrapKubeconfig: ${join(dir, 'missing')}, identity: { commonName: a }, sinks: { secret: { namespace: ns, name: s } } }\n`,
      );
      const { status, stderr } = run('sidecar', '--once', '--config', config);
      assert.equal(status, 2, stderr);
      assert.match(
        stderr,
        new RegExp(`sourceKubeconfig: kubeconfig ${kubeconfig}: users\\[u\\]\\.user\\.auth-provider: not supported`),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
