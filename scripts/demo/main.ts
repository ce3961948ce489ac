// `npm run demo`: the two-cluster demo, from a checkout only (it builds the control plane with Go), so it is
// a development script, not a subcommand of the shipped CLI. Exit status: 0 when the agent saw no failed
// call, 1 otherwise, 2 for a bad flag.
import { parseArgs } from 'node:util';
import { shutdownSignal } from '../../src/io/lifecycle.ts';
import { runDemo } from './run.ts';

const DEMO_USAGE =
  'usage: npm run demo -- [--credential certificate|token] [--duration SECONDS] [--rotate-every SECONDS] [--keep-clusters]';

interface DemoArguments {
  readonly credential: 'certificate' | 'token';
  readonly durationSeconds: number | undefined;
  readonly rotateEverySeconds: number;
  readonly keepClusters: boolean;
}

/** The demo's flags; throws an Error naming the flag that is wrong. */
function parseDemoArguments(args: readonly string[]): DemoArguments {
  const { values } = parseArgs({
    args: [...args],
    options: {
      duration: { type: 'string' },
      'rotate-every': { type: 'string' },
      'keep-clusters': { type: 'boolean' },
      credential: { type: 'string', default: 'certificate' },
    },
    strict: true,
  });
  const seconds = (name: 'duration' | 'rotate-every', minimum: number): number | undefined => {
    const text = values[name];
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isInteger(value) || value < minimum)
      throw new Error(`--${name} must be a whole number of seconds >= ${String(minimum)}`);
    return value;
  };
  const { credential } = values;
  if (credential !== 'certificate' && credential !== 'token')
    throw new Error(`--credential must be certificate or token, not "${credential}"`);
  return {
    credential,
    durationSeconds: seconds('duration', 10),
    rotateEverySeconds: seconds('rotate-every', 5) ?? 15,
    keepClusters: values['keep-clusters'] === true,
  };
}

async function main(args: readonly string[]): Promise<number> {
  let parsed: DemoArguments;
  try {
    parsed = parseDemoArguments(args);
  } catch (error) {
    process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n${DEMO_USAGE}\n`);
    return 2;
  }
  const shutdown = shutdownSignal();
  try {
    return await runDemo({ ...parsed, signal: shutdown.abort, out: process.stdout });
  } finally {
    shutdown.dispose();
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
