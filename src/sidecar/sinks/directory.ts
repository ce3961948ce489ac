// Publishing into a directory with the kubelet's projected-volume layout:
//
//   DIR/..2026_11_28_16_40_00.3f9a1c/{tls.crt,tls.key,ca.crt,kubeconfig}   one complete set per version
//                                                                          (a token target: token, not tls.*)
//   DIR/..2026_11_28_16_40_00.3f9a1c/rotation.json                         its next rotation, for the exec
//                                                                          credential plugin (src/credential)
//   DIR/..data -> ..2026_11_28_16_40_00.3f9a1c                             swapped with one rename
//   DIR/tls.crt -> ..data/tls.crt (and the other three)                    stable paths for readers
//
// A new version is written and fsynced in full, read back and checked, and only then made current by
// renaming a new ..data link over the old one; a crash at any point leaves ..data on a complete set.
// The previous version is kept until the next swap, so a reader that resolved ..data a moment before the
// swap still finds its files.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ROTATION_FILE, renderRotationFile } from '../../core/exec-credential/published.ts';
import { directoryFiles, FILE_NAMES, type CredentialBundle, type OutputFile } from '../../core/kubeconfig/bundle.ts';
import { fsyncDirectory, writeFileDurably } from '../../io/fs.ts';
import { watchDebounced } from '../../io/watch.ts';
import { storedCredential, type OutputState, type Sink, type StoredCredential } from './sink.ts';

const DATA_LINK = '..data';
const VERSION_DIR = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[0-9a-f]+$/;
const DEBOUNCE_MS = 200;

export interface DirectorySinkOptions {
  readonly path: string;
  readonly embed: boolean;
  /** Called after each step of a write (traced in logs; the crash-consistency test kills at each). */
  readonly onStep?: (step: string) => void;
}

export class DirectorySink implements Sink {
  readonly kind = 'directory';
  readonly description: string;
  readonly #path: string;
  readonly #embed: boolean;
  readonly #onStep: (step: string) => void;

  constructor(options: DirectorySinkOptions) {
    this.#path = options.path;
    this.#embed = options.embed;
    this.#onStep = options.onStep ?? (() => undefined);
    this.description = `directory ${options.path}`;
  }

  async read(): Promise<StoredCredential | undefined> {
    const files = await this.#readCurrent();
    return files === undefined ? undefined : storedCredential(files, FILE_NAMES.kubeconfig);
  }

  async check(bundle: CredentialBundle): Promise<OutputState> {
    const files = await this.#readCurrent();
    if (files === undefined) return 'missing';
    const expected = directoryFiles(bundle, this.#embed);
    for (const [name, file] of Object.entries(expected)) {
      if (files[name] !== file.content) return 'damaged';
      // The stable top-level path must lead to the same file.
      if ((await readlink(join(this.#path, name)).catch(() => undefined)) !== join(DATA_LINK, name)) return 'damaged';
    }
    // The version's own metadata (no stable link: only the plugin reads it, through ..data).
    if (files[ROTATION_FILE] !== rotationFile(bundle)?.content) return 'damaged';
    return 'current';
  }

  async write(bundle: CredentialBundle): Promise<void> {
    await mkdir(this.#path, { recursive: true, mode: 0o755 });
    const previous = await readlink(join(this.#path, DATA_LINK)).catch(() => undefined);
    const version = versionName(new Date());
    const versionPath = join(this.#path, version);
    await mkdir(versionPath, { mode: 0o755 });
    this.#onStep('version-directory-created');
    const files = directoryFiles(bundle, this.#embed);
    const rotation = rotationFile(bundle);
    const versionFiles = rotation === undefined ? files : { ...files, [ROTATION_FILE]: rotation };
    for (const [name, file] of Object.entries(versionFiles)) {
      await writeFileDurably(join(versionPath, name), file.content, file.mode);
      this.#onStep(`wrote-${name}`);
    }
    await fsyncDirectory(versionPath);
    await this.#verifyVersion(versionPath, versionFiles);
    this.#onStep('verified');

    // The swap: a new link under a temporary name, renamed over ..data (rename replaces atomically).
    const temporary = join(this.#path, `${DATA_LINK}_tmp`);
    // Recursive: a stray directory under that name (not one we make) must not block every write after it.
    await rm(temporary, { recursive: true, force: true });
    await symlink(version, temporary);
    this.#onStep('data-link-created');
    await rename(temporary, join(this.#path, DATA_LINK));
    await fsyncDirectory(this.#path);
    this.#onStep('data-link-swapped');

    for (const name of Object.keys(files)) await this.#ensureStableLink(name);
    // A target that changed kind (certificate to token, say) leaves no link into files that are gone.
    for (const name of Object.values(FILE_NAMES))
      if (!(name in files) && (await readlink(join(this.#path, name)).catch(() => undefined)) === join(DATA_LINK, name))
        await rm(join(this.#path, name), { force: true });
    await fsyncDirectory(this.#path);
    this.#onStep('links-ensured');
    await this.#removeVersionsExcept(new Set([version, ...(previous === undefined ? [] : [previous])]));
    this.#onStep('old-versions-removed');
  }

  async watch(onChange: () => void): Promise<{ close(): Promise<void> }> {
    await mkdir(this.#path, { recursive: true, mode: 0o755 });
    // A watcher error (the directory vanished, say) is left to the periodic re-read, which rewrites it.
    const watching = watchDebounced(this.#path, { depth: 1, debounceMs: DEBOUNCE_MS }, onChange);
    await watching.ready;
    return watching;
  }

  /** The files of the version ..data points at, read through that version's directory (one snapshot). */
  async #readCurrent(): Promise<Record<string, string> | undefined> {
    const version = await readlink(join(this.#path, DATA_LINK)).catch(() => undefined);
    if (version === undefined || !VERSION_DIR.test(version)) return undefined;
    const out: Record<string, string> = {};
    for (const name of [...Object.values(FILE_NAMES), ROTATION_FILE]) {
      const content = await readFile(join(this.#path, version, name), 'utf8').catch(() => undefined);
      if (content !== undefined) out[name] = content;
    }
    return out;
  }

  async #verifyVersion(versionPath: string, files: Record<string, { content: string }>): Promise<void> {
    const readBack: Record<string, string> = {};
    for (const [name, file] of Object.entries(files)) {
      readBack[name] = await readFile(join(versionPath, name), 'utf8');
      if (readBack[name] !== file.content) throw new Error(`${join(versionPath, name)} does not read back as written`);
    }
    if (storedCredential(readBack, FILE_NAMES.kubeconfig) === undefined)
      throw new Error(
        FILE_NAMES.token in files
          ? `${versionPath}: the token read back is not a readable token`
          : `${versionPath}: the key read back does not match the certificate`,
      );
  }

  async #ensureStableLink(name: string): Promise<void> {
    const path = join(this.#path, name);
    const wanted = join(DATA_LINK, name);
    if ((await readlink(path).catch(() => undefined)) === wanted) return;
    const temporary = join(this.#path, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
    await symlink(wanted, temporary);
    await rename(temporary, path);
  }

  async #removeVersionsExcept(keep: ReadonlySet<string>): Promise<void> {
    for (const entry of await readdir(this.#path)) {
      const stale = (VERSION_DIR.test(entry) && !keep.has(entry)) || /^\..*\.tmp$/.test(entry);
      if (stale) await rm(join(this.#path, entry), { recursive: true, force: true });
    }
  }
}

/** rotation.json: when the sidecar renews this credential, so the plugin's ExecCredential expires then. */
function rotationFile(bundle: CredentialBundle): OutputFile | undefined {
  return bundle.nextRotation === undefined
    ? undefined
    : { content: renderRotationFile(bundle.nextRotation), mode: 0o644 };
}

function versionName(now: Date): string {
  // 2026-11-28T16:40:00.123Z -> 2026_11_28_16_40_00, as the kubelet names its versions.
  const stamp = now.toISOString().slice(0, 19).replace(/[-:T]/g, '_');
  return `..${stamp}.${randomBytes(6).toString('hex')}`;
}
