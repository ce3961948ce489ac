// Durable file writes: content and mode set explicitly (a umask must not change what readers may open),
// flushed to disk before the caller makes the file visible by renaming or linking it.
import { open } from 'node:fs/promises';

/** Writes a file and fsyncs it. `flag` 'wx' refuses to overwrite; 'w' replaces. */
export async function writeFileDurably(
  path: string,
  content: string,
  mode: number,
  flag: 'w' | 'wx' = 'wx',
): Promise<void> {
  const handle = await open(path, flag, mode);
  try {
    await handle.chmod(mode);
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes the directory's entries (a rename, a new link) durable. */
export async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
