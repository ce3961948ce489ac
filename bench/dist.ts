// What the benchmarks run: dist/cli.js as `npm run build` makes it, under the image's ENTRYPOINT flags.
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../scripts/testbed/binaries.ts';

/** The flags of the image's ENTRYPOINT (`node FLAGS /app/dist/cli.js`): what users run. */
export function imageFlags(): string[] {
  const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
  if (entrypoint === undefined) throw new Error('the Dockerfile has no exec-form ENTRYPOINT');
  const words = JSON.parse(entrypoint) as string[];
  return words.slice(
    1,
    words.findIndex((word) => word.endsWith('/cli.js')),
  );
}

/** dist/cli.js as `npm run build` makes it, inside the repo so that its imports resolve to node_modules. */
export async function buildDist(): Promise<{ entry: string; dispose(): void }> {
  const outDir = join(REPO_ROOT, '.scratch', `bench-dist-${String(process.pid)}`);
  await promisify(execFile)(join(REPO_ROOT, 'node_modules/.bin/tsc'), [
    '-p',
    join(REPO_ROOT, 'tsconfig.build.json'),
    '--outDir',
    outDir,
  ]);
  return {
    entry: join(outDir, 'cli.js'),
    dispose: () => {
      rmSync(outDir, { recursive: true, force: true });
    },
  };
}
