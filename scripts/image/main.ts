// `npm run image [-- --pause]`: builds the project image (or the pause image) as an OCI archive without an
// engine and prints its reference, digest, size and path (progress goes to stderr). docs/image.md.
import { runMain } from '../testbed/main.ts';
import { buildPauseImage, buildProjectImage, contentsPath, type ImageArchive } from './build.ts';

const USAGE = `usage: npm run image [-- --pause | --rebuild]
  (none)     build the project image, or reuse the archive built from the same inputs
  --rebuild  build it even so (two builds of one commit give the same digest)
  --pause    build the test node's pause image
`;

const progress = (line: string) => process.stderr.write(`${line}\n`);

async function main(argv: string[]): Promise<number> {
  if (argv.length > 1 || (argv.length === 1 && argv[0] !== '--pause' && argv[0] !== '--rebuild')) {
    process.stderr.write(USAGE);
    return 2;
  }
  const pause = argv[0] === '--pause';
  const image: ImageArchive = pause
    ? await buildPauseImage({ onProgress: progress })
    : await buildProjectImage({ onProgress: progress, rebuild: argv[0] === '--rebuild' });
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
