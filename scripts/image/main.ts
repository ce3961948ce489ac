// `npm run image [-- --pause]`: builds the project image (or the pause image) as an OCI archive without an
// engine and prints its reference, digest, size and path (progress goes to stderr). docs/image.md.
import { runMain } from '../testbed/main.ts';
import { buildPauseImage, buildProjectImage, contentsPath, type ImageArchive } from './build.ts';

const USAGE = 'usage: npm run image [-- --pause]\n';

const progress = (line: string) => process.stderr.write(`${line}\n`);

async function main(argv: string[]): Promise<number> {
  if (argv.length > 1 || (argv.length === 1 && argv[0] !== '--pause')) {
    process.stderr.write(USAGE);
    return 2;
  }
  const pause = argv[0] === '--pause';
  const image: ImageArchive = pause
    ? await buildPauseImage({ onProgress: progress })
    : await buildProjectImage({ onProgress: progress });
  const lines = [
    `reference ${image.reference}`,
    `digest    ${image.digest}`,
    `size      ${(image.sizeBytes / 1024 / 1024).toFixed(1)} MiB (${String(image.sizeBytes)} bytes)`,
    `archive   ${image.path}`,
  ];
  if (!pause) lines.push(`contents  ${contentsPath(image.path)}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

runMain(main);
