// The directory sink on a real temporary directory, with the cases the kubelet's atomic writer is tested
// for (k8s.io/kubernetes pkg/volume/util/atomic_writer_test.go): the first and later writes, a damaged or
// redirected ..data link or stable link, leftovers of an interrupted write, pruning of old versions, and a
// failed write that leaves the old set in place.
import assert from 'node:assert/strict';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import type { CredentialBundle } from '../../../../src/core/kubeconfig/bundle.ts';
import { DirectorySink } from '../../../../src/sidecar/sinks/directory.ts';
import { certPemOf, credentialBundle, keyPemOf } from '../../../support/credential-bundle.ts';
import { opensslCa } from '../../../support/openssl-ca.ts';
import { leaseToken } from '../../../support/tokens.ts';

const ca = opensslCa('directory-sink-ca');
const scratch = mkdtempSync(join(tmpdir(), 'kcr-directory-sink-'));
after(() => {
  ca.dispose();
  rmSync(scratch, { recursive: true, force: true });
});

const NOW = Date.now();
const bundles = Array.from({ length: 3 }, (_, index) =>
  credentialBundle(ca, { notBefore: NOW - 300_000, notAfter: NOW + (index + 1) * 3_600_000 }),
);
const [first, second, third] = bundles as [CredentialBundle, CredentialBundle, CredentialBundle];
const FILES = ['tls.crt', 'tls.key', 'ca.crt', 'kubeconfig'];
const VERSION = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[0-9a-f]+$/;

let dir: string;
let sink: DirectorySink;
let steps: string[];
beforeEach(() => {
  dir = mkdtempSync(join(scratch, 'out-'));
  steps = [];
  sink = new DirectorySink({ path: dir, embed: false, onStep: (step) => steps.push(step) });
});

const versions = () => readdirSync(dir).filter((entry) => VERSION.test(entry));
const current = () => readlinkSync(join(dir, '..data'));

/** What a reader going through the stable paths sees. */
function readThroughStablePaths(): Record<string, string> {
  return Object.fromEntries(FILES.map((name) => [name, readFileSync(join(dir, name), 'utf8')]));
}

describe('the directory sink', () => {
  it('first write: a version directory, ..data pointing at it, stable links through ..data, the key 0600', async () => {
    await sink.write(first);
    assert.match(current(), VERSION);
    assert.deepEqual(versions(), [current()]);
    for (const name of FILES) assert.equal(readlinkSync(join(dir, name)), `..data/${name}`);
    assert.equal(statSync(join(dir, current(), 'tls.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, current(), 'tls.crt')).mode & 0o777, 0o644);
    assert.equal(readThroughStablePaths()['tls.crt'], certPemOf(first));
    assert.match(readThroughStablePaths().kubeconfig ?? '', /client-certificate: tls.crt/);
    assert.equal(await sink.check(first), 'current');
    assert.equal(certPemOf(await sink.read()), certPemOf(first));
    assert.deepEqual(steps.slice(-4), [
      'data-link-created',
      'data-link-swapped',
      'links-ensured',
      'old-versions-removed',
    ]);
  });

  it('later writes swap ..data and keep only the current set and the one before it', async () => {
    await sink.write(first);
    const firstVersion = current();
    await sink.write(second);
    const secondVersion = current();
    assert.notEqual(secondVersion, firstVersion);
    assert.deepEqual(
      versions().sort(),
      [firstVersion, secondVersion].sort(),
      'the previous set stays for readers mid-read',
    );
    await sink.write(third);
    assert.deepEqual(versions().sort(), [secondVersion, current()].sort(), 'the oldest set is pruned');
    assert.equal(readThroughStablePaths()['tls.key'], keyPemOf(third));
    assert.equal(await sink.check(third), 'current');
    assert.equal(await sink.check(second), 'damaged', 'an older set is not the current one');
  });

  it('a missing ..data link: nothing to read, the output is missing, and a write restores it', async () => {
    await sink.write(first);
    unlinkSync(join(dir, '..data'));
    assert.equal(await sink.read(), undefined);
    assert.equal(await sink.check(first), 'missing');
    await sink.write(first);
    assert.equal(await sink.check(first), 'current');
    assert.equal(readThroughStablePaths()['tls.crt'], certPemOf(first));
  });

  it('..data redirected outside the version directories is not followed, and a write points it back', async () => {
    await sink.write(first);
    const elsewhere = mkdtempSync(join(scratch, 'elsewhere-'));
    for (const name of FILES) writeFileSync(join(elsewhere, name), 'planted');
    unlinkSync(join(dir, '..data'));
    symlinkSync(elsewhere, join(dir, '..data'));
    assert.equal(await sink.read(), undefined, 'a redirected ..data is never read');
    assert.equal(await sink.check(first), 'missing');
    await sink.write(first);
    assert.match(current(), VERSION);
    assert.equal(readThroughStablePaths()['tls.crt'], certPemOf(first));
    assert.equal(readFileSync(join(elsewhere, 'tls.crt'), 'utf8'), 'planted', 'the link target is left alone');
  });

  it('..data pointing at an older version, a changed file, or a redirected stable link: damaged, and rewritten', async () => {
    await sink.write(first);
    const firstVersion = current();
    await sink.write(second);
    unlinkSync(join(dir, '..data'));
    symlinkSync(firstVersion, join(dir, '..data'));
    assert.equal(await sink.check(second), 'damaged');
    await sink.write(second);
    assert.equal(await sink.check(second), 'current');

    writeFileSync(join(dir, current(), 'ca.crt'), 'changed by someone');
    assert.equal(await sink.check(second), 'damaged');
    await sink.write(second);
    assert.equal(await sink.check(second), 'current');

    unlinkSync(join(dir, 'tls.crt'));
    writeFileSync(join(dir, 'tls.crt'), certPemOf(second) ?? '');
    assert.equal(await sink.check(second), 'damaged', 'a stable path that is not a link into ..data');
    await sink.write(second);
    assert.equal(readlinkSync(join(dir, 'tls.crt')), '..data/tls.crt');
    assert.equal(await sink.check(second), 'current');
  });

  it('leftovers of an interrupted write (a version never linked, temporary links) are ignored, then removed', async () => {
    await sink.write(first);
    const orphan = '..2020_01_01_00_00_00.0123456789ab';
    mkdirSync(join(dir, orphan));
    writeFileSync(join(dir, orphan, 'tls.crt'), 'half written');
    symlinkSync(orphan, join(dir, '..data_tmp'));
    symlinkSync('..data/tls.crt', join(dir, '.tls.crt.deadbeef.tmp'));
    assert.equal(await sink.check(first), 'current', 'leftovers do not change what readers see');
    assert.equal(certPemOf(await sink.read()), certPemOf(first));
    const before = current();
    await sink.write(second);
    assert.deepEqual(readdirSync(dir).sort(), ['..data', before, current(), ...FILES].sort());
  });

  it('a stray temporary directory where the new link is made does not block writes', async () => {
    await sink.write(first);
    mkdirSync(join(dir, '..data_tmp'));
    writeFileSync(join(dir, '..data_tmp', 'tls.crt'), 'stray');
    await sink.write(second);
    assert.equal(readThroughStablePaths()['tls.crt'], certPemOf(second));
    assert.equal(readdirSync(dir).includes('..data_tmp'), false);
  });

  it('a write that fails its check leaves the old set in place, and the next write cleans up after it', async () => {
    await sink.write(first);
    const before = current();
    // The key read back does not match the certificate: the write must stop before the swap.
    await assert.rejects(
      sink.write({ ...second, credential: { certPem: certPemOf(second) ?? '', keyPem: keyPemOf(first) ?? '' } }),
      /the key read back does not match the certificate/,
    );
    assert.equal(current(), before);
    assert.equal(await sink.check(first), 'current');
    assert.deepEqual(
      readThroughStablePaths(),
      Object.fromEntries(FILES.map((name) => [name, readFileSync(join(dir, before, name), 'utf8')])),
    );
    assert.equal(versions().length, 2, 'the failed version directory is still there');
    assert.equal(steps.includes('data-link-created'), true);
    await sink.write(second);
    assert.deepEqual(versions().sort(), [before, current()].sort(), 'the failed version is pruned by the next write');
  });

  it('a write into a path that cannot be a directory fails and publishes nothing', async () => {
    const file = join(scratch, `not-a-directory-${String(Date.now())}`);
    writeFileSync(file, '');
    const blocked = new DirectorySink({ path: join(file, 'out'), embed: false });
    await assert.rejects(blocked.write(first), { code: 'ENOTDIR' });
    assert.equal(await blocked.read(), undefined);
  });

  it('embed: a self-contained kubeconfig, 0600 since it holds the key', async () => {
    const embedded = new DirectorySink({ path: dir, embed: true });
    await embedded.write(first);
    const kubeconfig = readFileSync(join(dir, 'kubeconfig'), 'utf8');
    assert.match(kubeconfig, /client-key-data: /);
    assert.equal(statSync(join(dir, current(), 'kubeconfig')).mode & 0o777, 0o600);
    assert.equal(await embedded.check(first), 'current');
    assert.equal(await sink.check(first), 'damaged', 'a file-referencing sink sees the embedded file as different');
  });

  it('a token target: token (0600), ca.crt and a kubeconfig naming the token file; the links of the certificate files go', async () => {
    await sink.write(first);
    const token = leaseToken({ issuedAt: NOW, lifetimeSeconds: 3600 });
    const tokenBundle: CredentialBundle = { ...first, credential: { token } };
    await sink.write(tokenBundle);
    assert.equal(readFileSync(join(dir, 'token'), 'utf8'), token);
    assert.equal(statSync(join(dir, current(), 'token')).mode & 0o777, 0o600);
    assert.match(readFileSync(join(dir, 'kubeconfig'), 'utf8'), /tokenFile: token/);
    assert.deepEqual(
      readdirSync(dir)
        .filter((entry) => !entry.startsWith('..'))
        .sort(),
      ['ca.crt', 'kubeconfig', 'token'],
    );
    assert.deepEqual((await sink.read())?.credential, { token });
    assert.equal(await sink.check(tokenBundle), 'current');
    assert.equal(await sink.check(first), 'damaged');
  });

  // Issue 22: a restart without the bootstrap kubeconfig takes the server (and its name) from what it published.
  it("publishes the target's tls-server-name and reads it back; the same set without it is damaged", async () => {
    const named: CredentialBundle = { ...first, tlsServerName: 'api.east.internal' };
    await sink.write(named);
    assert.match(readFileSync(join(dir, 'kubeconfig'), 'utf8'), /tls-server-name: api.east.internal/);
    assert.equal((await sink.read())?.tlsServerName, 'api.east.internal');
    assert.equal(await sink.check(named), 'current');
    assert.equal(await sink.check(first), 'damaged');
  });

  it('records the next rotation in the version (rotation.json, written before the swap); another time is damaged', async () => {
    const nextRotation = NOW + 1_800_000;
    const scheduled: CredentialBundle = { ...first, nextRotation };
    await sink.write(scheduled);
    const recorded = JSON.parse(readFileSync(join(dir, '..data', 'rotation.json'), 'utf8')) as unknown;
    assert.deepEqual(recorded, { nextRotation: new Date(nextRotation).toISOString() });
    assert.ok(steps.indexOf('wrote-rotation.json') < steps.indexOf('data-link-swapped'), steps.join(', '));
    assert.equal(await sink.check(scheduled), 'current');
    assert.equal(await sink.check({ ...first, nextRotation: nextRotation + 1000 }), 'damaged');
    assert.equal(await sink.check(first), 'damaged');
  });
});
