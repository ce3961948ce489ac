// Files written the way the kubelet mounts and updates a Secret or ConfigMap volume, for tests and the demo.
import { existsSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/**
 * Writes files the way the kubelet updates a mounted Secret or ConfigMap: a new version directory, a
 * ..data symlink renamed over the old one, stable links to ..data/<file>, the old version removed.
 */
export function writeKubeletMount(dir: string, files: Readonly<Record<string, string>>): Record<string, string> {
  mkdirSync(dir, { recursive: true });
  const previous = existsSync(join(dir, '..data')) ? readlinkSync(join(dir, '..data')) : undefined;
  const version = `..${new Date().toISOString().replace(/[-:T.Z]/g, '_')}${randomBytes(4).toString('hex')}`;
  mkdirSync(join(dir, version));
  for (const [name, content] of Object.entries(files))
    writeFileSync(join(dir, version, name), content, { mode: 0o600 });
  symlinkSync(version, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const name of Object.keys(files))
    if (!existsSync(join(dir, name))) symlinkSync(join('..data', name), join(dir, name));
  if (previous !== undefined) rmSync(join(dir, previous), { recursive: true, force: true });
  // The path of each file as a consumer of the volume sees it.
  return Object.fromEntries(Object.keys(files).map((name) => [name, join(dir, name)]));
}
