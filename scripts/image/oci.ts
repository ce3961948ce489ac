// An OCI image layout written as one tar (an "oci-archive": oci-layout, index.json, blobs/sha256/...), the
// format `skopeo copy oci-archive:`, `ctr images import` and `kind load image-archive` read. Everything in it
// is a function of its inputs: gzip streams carry no time or name, JSON is written with sorted keys.
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zlib } from 'node:zlib';
import { tarStream, treeEntries, type TarEntry } from './tar.ts';

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** The runtime part of an image config (the OCI field names). */
export interface RuntimeConfig {
  readonly User?: string;
  readonly Env?: readonly string[];
  readonly Entrypoint?: readonly string[];
  readonly Cmd?: readonly string[];
  readonly WorkingDir?: string;
}

export interface ImageSpec {
  /** name:tag, as a runtime should import it. */
  readonly reference: string;
  readonly layers: readonly (readonly TarEntry[])[];
  readonly config: RuntimeConfig;
}

export interface WrittenImage {
  /** The manifest's digest: what a runtime and a registry call the image. */
  readonly digest: string;
  /** sha256 of the archive file itself. */
  readonly archiveDigest: string;
  readonly sizeBytes: number;
}

interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

/** JSON with keys sorted at every level, so equal values always give equal bytes. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Passes bytes through, hashing and counting them. */
function hashing(): Transform & { result: () => { digest: string; size: number } } {
  const hash = createHash('sha256');
  let size = 0;
  const transform = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  return Object.assign(transform, { result: () => ({ digest: `sha256:${hash.digest('hex')}`, size }) });
}

/** Writes one gzipped layer into blobs/ and returns its descriptor and its uncompressed digest (diff_id). */
async function writeLayer(
  blobs: string,
  entries: readonly TarEntry[],
): Promise<{ descriptor: Descriptor; diffId: string }> {
  const temporary = join(blobs, `layer-${String(process.pid)}.partial`);
  const uncompressed = hashing();
  const compressed = hashing();
  // zlib's default level 6, as engines use: level 9 took three times the CPU (15 s instead of 5 s for the node
  // binary) for 0.6% less. zlib's gzip header holds mtime 0 and no file name.
  await pipeline(
    tarStream(entries),
    uncompressed,
    createGzip({ level: zlib.Z_DEFAULT_COMPRESSION }),
    compressed,
    createWriteStream(temporary),
  );
  const { digest, size } = compressed.result();
  renameSync(temporary, join(blobs, digest.slice('sha256:'.length)));
  return { descriptor: { mediaType: LAYER_TYPE, digest, size }, diffId: uncompressed.result().digest };
}

function writeBlob(blobs: string, mediaType: string, data: string): Descriptor {
  const digest = sha256(data);
  writeFileSync(join(blobs, digest.slice('sha256:'.length)), data);
  return { mediaType, digest, size: Buffer.byteLength(data) };
}

/** Splits "registry/name:tag" into its name and tag (a port in the registry is not a tag). */
export function splitReference(reference: string): { name: string; tag: string } {
  const colon = reference.lastIndexOf(':');
  if (colon <= reference.lastIndexOf('/') || colon === reference.length - 1)
    throw new Error(`image reference "${reference}" has no tag`);
  return { name: reference.slice(0, colon), tag: reference.slice(colon + 1) };
}

/**
 * Writes the image as an OCI archive at `archive` (through a `.partial` file beside it, renamed when complete,
 * so an interrupted build never leaves an archive that looks whole). `work` is an empty scratch directory.
 */
export async function writeOciArchive(spec: ImageSpec, work: string, archive: string): Promise<WrittenImage> {
  const { tag } = splitReference(spec.reference);
  const layout = join(work, 'layout');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const layers = [];
  for (const entries of spec.layers) layers.push(await writeLayer(blobs, entries));
  const config = writeBlob(
    blobs,
    CONFIG_TYPE,
    canonicalJson({
      architecture: 'amd64',
      os: 'linux',
      config: spec.config,
      rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
    }),
  );
  const manifest = writeBlob(
    blobs,
    MANIFEST_TYPE,
    canonicalJson({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config,
      layers: layers.map((layer) => layer.descriptor),
    }),
  );
  writeFileSync(
    join(layout, 'index.json'),
    canonicalJson({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          ...manifest,
          // containerd's import names the image by the first; skopeo's oci-archive:PATH:TAG by the second.
          annotations: { 'io.containerd.image.name': spec.reference, 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  writeFileSync(join(layout, 'oci-layout'), canonicalJson({ imageLayoutVersion: '1.0.0' }));

  // Unique: two builds of the same image may run at once (each renames a whole archive into place).
  const partial = `${archive}.${String(process.pid)}-${basename(work)}.partial`;
  const hash = hashing();
  await pipeline(tarStream(treeEntries(layout, '')), hash, createWriteStream(partial));
  renameSync(partial, archive);
  return { digest: manifest.digest, archiveDigest: hash.result().digest, sizeBytes: statSync(archive).size };
}
