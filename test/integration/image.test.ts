// The container image's final stage, reproduced without Docker (there is no engine here): the compiled
// JavaScript plus a production-only install in a clean directory, run with the same Node. Proves the
// runtime needs no dev dependency, imports nothing that does not ship (the testbed, the demo), and writes
// nothing outside the paths it is configured with.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { testCluster } from '../support/clusters.ts';
import { assertNoSecretsInLogs } from '../support/log-hygiene.ts';
import { outputDir, prepareTarget, scratchDir, TestApprover, writeSidecarConfig } from '../support/sidecar.ts';

const execute = promisify(execFile);
const scratch = scratchDir('image');
const app = join(scratch.path, 'app');
// A HOME and TMPDIR that do not exist: a write there would fail, as on a read-only root filesystem.
const imageEnv = {
  PATH: process.env.PATH ?? '',
  HOME: '/nonexistent-home',
  TMPDIR: '/nonexistent-tmp',
  NODE_ENV: 'production',
};
/** The image's entrypoint, with this checkout's Node 24. */
const entrypoint = (...args: string[]) =>
  execute(process.execPath, ['--optimize-for-size', join(app, 'dist/cli.js'), ...args], { env: imageEnv, cwd: '/' });

before(async () => {
  const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  // The steps below mirror these Dockerfile lines; if they change, this test must change with them.
  for (const line of [
    'RUN npm run build',
    'RUN npm ci --omit=dev --ignore-scripts',
    'COPY --from=build /src/dist ./dist',
    'ENTRYPOINT ["node", "--optimize-for-size", "/app/dist/cli.js"]',
  ]) {
    assert.ok(dockerfile.includes(line), `Dockerfile has "${line}"`);
  }
  await execute(join(REPO_ROOT, 'node_modules/.bin/tsc'), [
    '-p',
    join(REPO_ROOT, 'tsconfig.build.json'),
    '--outDir',
    join(app, 'dist'),
  ]);
  for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(REPO_ROOT, file), join(app, file));
  await execute('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app });
});

after(() => {
  scratch.dispose();
});

describe('the image runtime (final Dockerfile stage)', () => {
  it('holds production dependencies only', () => {
    const installed = readdirSync(join(app, 'node_modules'));
    for (const dev of ['typescript', 'eslint', 'typescript-eslint', 'node'])
      assert.ok(!installed.includes(dev), `${dev} is not installed`);
    for (const runtime of ['chokidar', 'pino', 'prom-client', 'yaml', 'zod', 'node-forge'])
      assert.ok(installed.includes(runtime), `${runtime} is installed`);
    assert.ok(existsSync(join(app, 'node_modules/@kubernetes/client-node')));
  });

  it('imports only its own files, Node built-ins and production dependencies: no testbed, demo or dev tool', () => {
    const dist = join(app, 'dist');
    const { dependencies } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const files = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.js'));
    assert.ok(
      files.includes('cli.js') && files.length > 20,
      `dist holds the compiled sources (${String(files.length)} files)`,
    );
    const problems: string[] = [];
    for (const file of files) {
      if (/(^|\/)(testbed|demo)(\/|$)/.test(file)) problems.push(`${file} is shipped`);
      const source = readFileSync(join(dist, file), 'utf8');
      // Static imports and re-exports (`from '...'`, `import '...'`) and dynamic `import('...')`.
      for (const [, specifier = ''] of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)['"]([^'"]+)['"]/gm)) {
        if (specifier.startsWith('node:')) continue;
        if (specifier.startsWith('.')) {
          const target = resolve(dirname(join(dist, file)), specifier);
          if (!target.startsWith(dist + sep) || !existsSync(target))
            problems.push(`${file} imports ${specifier} (${relative(dist, target)}), which is not in dist`);
          continue;
        }
        const name = specifier
          .split('/')
          .slice(0, specifier.startsWith('@') ? 2 : 1)
          .join('/');
        if (!(name in dependencies)) problems.push(`${file} imports ${specifier}, not a production dependency`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('runs the CLI: --help and --version', async () => {
    const help = await entrypoint('--help');
    assert.match(help.stdout, /usage: kubeconfig-rotator <command>/);
    const version = await entrypoint('--version');
    assert.equal(
      version.stdout.trim(),
      (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    );
  });

  it('sidecar --once gets a certificate from the test cluster and exits 0', async () => {
    const target = testCluster('target');
    const prepared = await prepareTarget(target);
    const approver = new TestApprover(target.admin(), prepared.name);
    try {
      const result = await entrypoint('sidecar', '--once', '--config', writeSidecarConfig(prepared));
      assert.match(result.stdout, /"msg":"certificate rotated"/);
      assert.match(result.stdout, /"msg":"published"/);
      assert.match(readFileSync(join(outputDir(prepared), 'kubeconfig'), 'utf8'), /client-certificate: tls.crt/);
      const log = join(scratch.path, 'once.log');
      writeFileSync(log, result.stdout + result.stderr);
      assertNoSecretsInLogs(
        [log],
        [prepared.bootstrap.token.secret, readFileSync(join(outputDir(prepared), 'tls.key'), 'utf8')],
      );
    } finally {
      await approver.stop();
    }
  });
});
