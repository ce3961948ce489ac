// Reading an OCI image archive (oci-layout, index.json, blobs/sha256/...) as a runtime would: its one
// manifest, its config and its layers unpacked in order into a root filesystem.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeConfig } from '../../scripts/image/oci.ts';

export interface OpenedImage {
  readonly name: string;
  readonly config: RuntimeConfig;
  /** The layer blobs' paths, base first. */
  readonly layers: readonly string[];
}

function blob(layout: string, digest: string): string {
  return join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
}

/** Unpacks the archive into `dir` and reads its single manifest. */
export function openImage(archive: string, dir: string): OpenedImage {
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xf', archive, '-C', dir]);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const [entry, ...others] = index.manifests;
  if (entry === undefined || others.length > 0)
    throw new Error(`${archive} holds ${String(index.manifests.length)} manifests, not one`);
  const manifest = JSON.parse(readFileSync(blob(dir, entry.digest), 'utf8')) as {
    config: { digest: string };
    layers: { digest: string }[];
  };
  const config = JSON.parse(readFileSync(blob(dir, manifest.config.digest), 'utf8')) as { config: RuntimeConfig };
  return {
    name: entry.annotations?.['io.containerd.image.name'] ?? '',
    config: config.config,
    layers: manifest.layers.map((layer) => blob(dir, layer.digest)),
  };
}

/** The paths a layer holds, as absolute paths without a trailing slash. */
export function layerPaths(layer: string): string[] {
  return execFileSync('tar', ['-tzf', layer], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => `/${line.replace(/\/$/, '')}`);
}

/** The image's root filesystem, its layers applied in order (as root, so owners and modes are kept). */
export function unpackRootfs(image: OpenedImage, rootfs: string): string {
  mkdirSync(rootfs, { recursive: true });
  for (const layer of image.layers) execFileSync('tar', ['--same-owner', '-xzpf', layer, '-C', rootfs]);
  return rootfs;
}
