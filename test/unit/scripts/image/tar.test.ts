// The reproducible tar writer behind the engine-free image build: what GNU tar reads back from it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  dirEntry,
  fileEntry,
  normalizeEntries,
  tarStream,
  treeEntries,
  type TarEntry,
} from '../../../../scripts/image/tar.ts';

const root = mkdtempSync(join(tmpdir(), 'kcr-tar-'));
after(() => {
  rmSync(root, { recursive: true, force: true });
});

async function archive(entries: readonly TarEntry[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of tarStream(entries)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function gnuTarList(bytes: Buffer): string[] {
  const file = join(root, `${createHash('sha256').update(bytes).digest('hex')}.tar`);
  writeFileSync(file, bytes);
  return execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', file], { encoding: 'utf8', env: { TZ: 'UTC' } })
    .trim()
    .split('\n');
}

describe('tarStream', () => {
  it('writes sorted entries with their parents, mtime 0 and owner 0:0 that GNU tar reads back', async () => {
    const list = gnuTarList(
      await archive([
        fileEntry('b/z.txt', 'zz'),
        fileEntry('a.txt', 'a', 0o755),
        { kind: 'symlink', path: 'b/link', mode: 0o777, target: '/x' },
      ]),
    );
    assert.deepEqual(
      list.map((line) => line.replace(/\s+/g, ' ')),
      [
        '-rwxr-xr-x 0/0 1 1970-01-01 00:00:00 a.txt',
        'drwxr-xr-x 0/0 0 1970-01-01 00:00:00 b/',
        'lrwxrwxrwx 0/0 0 1970-01-01 00:00:00 b/link -> /x',
        '-rw-r--r-- 0/0 2 1970-01-01 00:00:00 b/z.txt',
      ],
    );
  });

  it('carries paths and link targets longer than the ustar fields in PAX records', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(130)}.js`;
    const target = `../${'t'.repeat(150)}`;
    const bytes = await archive([fileEntry(long, 'x'), { kind: 'symlink', path: 'l', mode: 0o777, target }]);
    const list = gnuTarList(bytes);
    assert.ok(
      list.some((line) => line.endsWith(` ${long}`)),
      list.join('\n'),
    );
    assert.ok(
      list.some((line) => line.endsWith(`l -> ${target}`)),
      list.join('\n'),
    );
  });

  it('gives the same bytes for the same entries listed in another order', async () => {
    const entries = [fileEntry('x/1', 'one'), dirEntry('x'), fileEntry('y', 'two')];
    assert.deepEqual(await archive(entries), await archive([...entries].reverse()));
  });

  it('keeps an owner given to a directory and refuses a path listed twice or not relative', () => {
    assert.equal(
      normalizeEntries([dirEntry('home/node', 0o755, 1000)]).find((entry) => entry.path === 'home/node')?.uid,
      1000,
    );
    assert.throws(() => normalizeEntries([fileEntry('a', '1'), fileEntry('a', '2')]), /"a" is listed twice/);
    assert.throws(() => normalizeEntries([fileEntry('/etc/passwd', '')]), /not a relative path/);
  });
});

describe('treeEntries', () => {
  it('reads a tree with normalized modes, owners and times, under a prefix with its parents', async () => {
    const tree = join(root, 'tree');
    mkdirSync(join(tree, 'bin'), { recursive: true });
    writeFileSync(join(tree, 'bin', 'tool'), '#!/bin/sh\n');
    chmodSync(join(tree, 'bin', 'tool'), 0o700);
    writeFileSync(join(tree, 'data'), 'x');
    chmodSync(join(tree, 'data'), 0o600);
    symlinkSync('bin/tool', join(tree, 'tool'));
    const list = gnuTarList(await archive(treeEntries(tree, 'app/lib')));
    assert.deepEqual(
      list.map((line) => line.replace(/\s+/g, ' ').replace(/ 1970-01-01 00:00:00/, '')),
      [
        'drwxr-xr-x 0/0 0 app/',
        'drwxr-xr-x 0/0 0 app/lib/',
        'drwxr-xr-x 0/0 0 app/lib/bin/',
        '-rwxr-xr-x 0/0 10 app/lib/bin/tool',
        '-rw-r--r-- 0/0 1 app/lib/data',
        'lrwxrwxrwx 0/0 0 app/lib/tool -> bin/tool',
      ],
    );
    assert.equal(readFileSync(join(tree, 'data'), 'utf8'), 'x');
  });
});
