// A reproducible tar writer: the same entries give the same bytes on any machine. Every entry has mtime 0,
// owner 0:0 unless stated, no user or group names, and normalized modes; entries come out sorted by path.
// ustar headers, with a PAX record for a path or link target that does not fit them.
import { createReadStream, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

interface EntryBase {
  /** Relative, '/'-separated, no leading or trailing slash. */
  readonly path: string;
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
}
export type TarEntry =
  | (EntryBase & { readonly kind: 'dir' })
  | (EntryBase & { readonly kind: 'symlink'; readonly target: string })
  | (EntryBase & { readonly kind: 'file'; readonly size: number; readonly data: Buffer })
  | (EntryBase & { readonly kind: 'file'; readonly size: number; readonly source: string });

const BLOCK = 512;

export function fileEntry(path: string, data: Buffer | string, mode = 0o644): TarEntry {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  return { kind: 'file', path, mode, size: bytes.length, data: bytes };
}

export function dirEntry(path: string, mode = 0o755, owner = 0): TarEntry {
  return { kind: 'dir', path, mode, uid: owner, gid: owner };
}

/**
 * The tree under `root`, placed at `prefix` in the archive. Modes are normalized (0755 for directories and
 * executables, 0644 otherwise; the sticky bit kept) so a umask or the machine's owners never reach an image.
 */
export function treeEntries(root: string, prefix: string): TarEntry[] {
  const entries: TarEntry[] = [];
  const walk = (dir: string, at: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const path = at === '' ? name : `${at}/${name}`;
      const stat = lstatSync(full);
      if (stat.isDirectory()) {
        entries.push(dirEntry(path, stat.mode & 0o1000 ? 0o1777 : 0o755));
        walk(full, path);
      } else if (stat.isSymbolicLink()) {
        entries.push({ kind: 'symlink', path, mode: 0o777, target: readlinkSync(full) });
      } else if (stat.isFile()) {
        entries.push({ kind: 'file', path, mode: stat.mode & 0o111 ? 0o755 : 0o644, size: stat.size, source: full });
      } else {
        throw new Error(`${full}: only directories, regular files and symbolic links can go into an image`);
      }
    }
  };
  walk(root, prefix);
  return prefix === '' ? entries : [...parentDirs([prefix]), dirEntry(prefix), ...entries];
}

/** The directories above each path (for "a/b/c": "a" and "a/b"), each once. */
function parentDirs(paths: readonly string[]): TarEntry[] {
  const dirs = new Set<string>();
  for (const path of paths) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].map((dir) => dirEntry(dir));
}

/**
 * Sorts the entries by path, adds missing parent directories, and refuses duplicate paths (two layers'
 * worth of the same file would make the result depend on which one was listed last).
 */
export function normalizeEntries(entries: readonly TarEntry[]): TarEntry[] {
  const byPath = new Map<string, TarEntry>();
  for (const entry of [...parentDirs(entries.map((entry) => entry.path)), ...entries]) {
    if (entry.path === '' || entry.path.startsWith('/') || entry.path.endsWith('/') || entry.path.includes('//'))
      throw new Error(`tar entry path "${entry.path}" is not a relative path`);
    const existing = byPath.get(entry.path);
    if (existing !== undefined && !(existing.kind === 'dir' && entry.kind === 'dir'))
      throw new Error(`tar entry "${entry.path}" is listed twice`);
    // An explicit directory entry (its mode, its owner) wins over an implied parent.
    byPath.set(entry.path, entry);
  }
  return [...byPath.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/** The archive's bytes, in order: headers, file contents (read as they are reached), then the end marker. */
export async function* tarStream(entries: readonly TarEntry[]): AsyncGenerator<Buffer> {
  for (const entry of normalizeEntries(entries)) {
    const name = entry.kind === 'dir' ? `${entry.path}/` : entry.path;
    const target = entry.kind === 'symlink' ? entry.target : '';
    const size = entry.kind === 'file' ? entry.size : 0;
    const pax: string[] = [];
    if (Buffer.byteLength(name) > 100) pax.push(paxRecord('path', name));
    if (Buffer.byteLength(target) > 100) pax.push(paxRecord('linkpath', target));
    if (pax.length > 0) {
      const body = Buffer.from(pax.join(''));
      yield header({ name: 'PaxHeader', mode: 0o644, size: body.length, type: 'x', target: '', uid: 0, gid: 0 });
      yield padded(body);
    }
    const type = entry.kind === 'dir' ? '5' : entry.kind === 'symlink' ? '2' : '0';
    yield header({ name, mode: entry.mode, size, type, target, uid: entry.uid ?? 0, gid: entry.gid ?? 0 });
    if (entry.kind === 'file') yield* fileContents(entry);
  }
  yield Buffer.alloc(BLOCK * 2);
}

async function* fileContents(entry: Extract<TarEntry, { kind: 'file' }>): AsyncGenerator<Buffer> {
  if ('data' in entry) {
    yield padded(entry.data);
    return;
  }
  let read = 0;
  for await (const chunk of createReadStream(entry.source)) {
    const bytes = chunk as Buffer;
    read += bytes.length;
    if (read > entry.size) break;
    yield bytes;
  }
  // A file that changed size while it was read would make a corrupt archive.
  if (read !== entry.size) throw new Error(`${entry.source} changed size while it was archived`);
  yield Buffer.alloc((BLOCK - (entry.size % BLOCK)) % BLOCK);
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
}

/** A PAX record is "<length> <key>=<value>\n", where length counts the record itself, its own digits too. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(rest);
  while (String(length).length + Buffer.byteLength(rest) !== length)
    length = String(length).length + Buffer.byteLength(rest);
  return `${String(length)}${rest}`;
}

interface Header {
  readonly name: string;
  readonly mode: number;
  readonly size: number;
  readonly type: string;
  readonly target: string;
  readonly uid: number;
  readonly gid: number;
}

function header(fields: Header): Buffer {
  const block = Buffer.alloc(BLOCK);
  const put = (text: string, offset: number, length: number) => {
    block.write(text.slice(0, length), offset, length, 'utf8');
  };
  const octal = (value: number, offset: number, length: number) => {
    put(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length);
  };
  // A long name is in the PAX record; the header keeps a truncated copy for readers that ignore PAX.
  put(Buffer.from(fields.name).subarray(0, 100).toString('utf8'), 0, 100);
  octal(fields.mode, 100, 8);
  octal(fields.uid, 108, 8);
  octal(fields.gid, 116, 8);
  octal(fields.size, 124, 12);
  octal(0, 136, 12);
  put(fields.type, 156, 1);
  put(Buffer.from(fields.target).subarray(0, 100).toString('utf8'), 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  octal(0, 329, 8);
  octal(0, 337, 8);
  // The checksum is computed with its own field as spaces.
  block.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return block;
}
