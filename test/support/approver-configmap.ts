// A directory laid out as the kubelet mounts a ConfigMap: files are symlinks into ..data, itself a symlink to
// a timestamped directory, and an update swaps ..data with one rename.
import { mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

let version = 0;

function writeVersion(dir: string, files: Readonly<Record<string, string>>): string {
  const name = `..2026_01_01_00_00_00.${String(++version).padStart(9, '0')}`;
  mkdirSync(join(dir, name));
  for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, name, file), content);
  return name;
}

/** Creates the mount with `files`; returns the path of each file as a consumer sees it. */
export function mountConfigMap(dir: string, files: Readonly<Record<string, string>>): Record<string, string> {
  mkdirSync(dir, { recursive: true });
  symlinkSync(writeVersion(dir, files), join(dir, '..data'));
  for (const file of Object.keys(files)) symlinkSync(join('..data', file), join(dir, file));
  return Object.fromEntries(Object.keys(files).map((file) => [file, join(dir, file)]));
}

/** Replaces every file at once, as the kubelet does when the ConfigMap changes. */
export function updateConfigMap(dir: string, files: Readonly<Record<string, string>>): void {
  const previous = readlinkSync(join(dir, '..data'));
  symlinkSync(writeVersion(dir, files), join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  rmSync(join(dir, previous), { recursive: true });
}
