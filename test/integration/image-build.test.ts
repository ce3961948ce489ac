// The image built without an engine (scripts/image/build.ts, `npm run image`): reproducible to the byte,
// in step with the Dockerfile (the recipe for people with an engine), and runnable: its entrypoint under
// chroot as the image's user, the pause image as PID 1 of a PID namespace of its own. Needs root (chroot,
// unshare), as the node tests do. The two project builds take about 2 minutes.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import {
  buildPauseImage,
  buildProjectImage,
  chartImageReference,
  contentsPath,
  type ImageArchive,
  type ImageContents,
} from '../../scripts/image/build.ts';
import { nodeBase, parseFinalStage } from '../../scripts/image/dockerfile.ts';
import { REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { eventually } from '../support/kube.ts';
import { layerPaths, openImage, unpackRootfs, type OpenedImage } from '../support/oci-archive.ts';
import { scratchDir } from '../support/sidecar.ts';

const execute = promisify(execFile);
const scratch = scratchDir('image-build');
const stage = parseFinalStage(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
let first: ImageArchive;
let image: OpenedImage;
let rootfs: string;

async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A program of the unpacked image, run under chroot as `user` with the image's environment. */
function inImage(user: string, command: readonly string[]) {
  const env: Record<string, string> = {};
  for (const pair of image.config.Env ?? []) env[pair.slice(0, pair.indexOf('='))] = pair.slice(pair.indexOf('=') + 1);
  return execute('chroot', [`--userspec=${user}`, rootfs, ...command], { env, cwd: '/' });
}

/** Retries a synchronous check until it passes (at most 15 s). */
const until = <T>(check: () => T): Promise<T> => eventually(() => Promise.resolve().then(check));

before(async () => {
  first = await buildProjectImage({ outDir: join(scratch.path, 'first') });
  image = openImage(first.path, join(scratch.path, 'opened'));
  rootfs = unpackRootfs(image, join(scratch.path, 'rootfs'));
});

after(() => {
  scratch.dispose();
});

describe('the engine-free image build', () => {
  it('gives the same archive, byte for byte, when built twice', async () => {
    const second = await buildProjectImage({ outDir: join(scratch.path, 'second') });
    assert.equal(second.digest, first.digest);
    assert.equal(second.sizeBytes, first.sizeBytes);
    assert.equal(await fileDigest(second.path), await fileDigest(first.path));
    // Built already from the same inputs: reused, not rebuilt.
    const progress: string[] = [];
    const again = await buildProjectImage({
      outDir: join(scratch.path, 'second'),
      onProgress: (line) => progress.push(line),
    });
    assert.deepEqual(again, second);
    assert.match(progress.join('\n'), /is up to date/);
  });

  it('is named as the charts deploy it by default', () => {
    assert.equal(first.reference, chartImageReference());
    assert.equal(image.name, first.reference);
  });

  it("agrees with the Dockerfile's final stage: user, entrypoint and flags, command, env, workdir, /app contents", () => {
    assert.equal(image.config.User, stage.user);
    assert.deepEqual(image.config.Entrypoint, stage.entrypoint);
    assert.deepEqual(image.config.Cmd, stage.cmd);
    assert.equal(image.config.WorkingDir, stage.workdir);
    for (const pair of stage.env) assert.ok(image.config.Env?.includes(pair), `the image's env has ${pair}`);
    const underWorkdir = new Set(
      image.layers
        .flatMap(layerPaths)
        .filter((path) => path.startsWith(`${stage.workdir}/`))
        .map((path) =>
          path
            .split('/')
            .slice(0, stage.workdir.split('/').length + 1)
            .join('/'),
        ),
    );
    assert.deepEqual([...underWorkdir].sort(), [...stage.contents].sort());
  });

  it("has the Dockerfile base's Node version and Debian release, and lists what it holds", async () => {
    const base = nodeBase(stage.base);
    const { stdout } = await inImage('1000:1000', ['node', '--version']);
    assert.equal(stdout.trim(), `v${base.nodeVersion}`);
    const contents = JSON.parse(readFileSync(contentsPath(first.path), 'utf8')) as ImageContents;
    assert.equal(contents.digest, first.digest);
    assert.equal(contents.node.version, base.nodeVersion);
    assert.equal(contents.debian.release, base.debianRelease);
    assert.deepEqual(
      contents.debian.packages.map((pkg) => pkg.name),
      ['libc6', 'libgcc-s1', 'libstdc++6'],
    );
    const { dependencies } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const npm = new Set(contents.npm.map((pkg) => pkg.name));
    for (const name of Object.keys(dependencies)) assert.ok(npm.has(name), `the contents list ${name}`);
    assert.ok(!npm.has('typescript'), 'no dev dependency is listed');
  });

  it('runs its entrypoint as its user from the image alone (chroot): --version', async () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const { stdout } = await inImage(image.config.User ?? '', [...(image.config.Entrypoint ?? []), '--version']);
    assert.equal(stdout.trim(), version);
  });
});

describe('the pause image', () => {
  it('is reproducible, reaps orphaned children as PID 1 and exits 0 on SIGTERM', async () => {
    const pause = await buildPauseImage({ outDir: join(scratch.path, 'pause-1') });
    const again = await buildPauseImage({ outDir: join(scratch.path, 'pause-2') });
    assert.equal(again.digest, pause.digest);
    const pauseRoot = unpackRootfs(
      openImage(pause.path, join(scratch.path, 'pause-opened')),
      join(scratch.path, 'pause-root'),
    );
    // PID 1 of a new PID namespace: the shell leaves an orphan (sleep), then becomes the pause program.
    const holder = spawn(
      'unshare',
      ['--pid', '--fork', '--kill-child', 'sh', '-c', `(sleep 1 &); exec ${join(pauseRoot, 'pause')}`],
      { stdio: 'ignore' },
    );
    const exited = new Promise<number | null>((resolve) => holder.once('exit', resolve));
    try {
      const children = (pid: number) =>
        readFileSync(`/proc/${String(pid)}/task/${String(pid)}/children`, 'utf8')
          .trim()
          .split(/\s+/)
          .filter(Boolean);
      const pid = await until(() => {
        const [child] = children(holder.pid ?? 0);
        assert.ok(child !== undefined);
        assert.match(readFileSync(`/proc/${child}/cmdline`, 'utf8'), /pause/);
        return Number(child);
      });
      await until(() => {
        assert.equal(children(pid).length, 1, 'the orphaned sleep is its child');
      });
      // The sleep ends after a second; its zombie stays a child until pause reaps it.
      await until(() => {
        assert.deepEqual(children(pid), [], 'the ended child was reaped');
      });
      process.kill(pid, 'SIGTERM');
      assert.equal(await Promise.race([exited, sleep(5_000, 'timeout')]), 0);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
