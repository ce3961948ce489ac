#!/usr/bin/env node
// The kubeconfig-rotator command line: one entry point, one subcommand per role. Exit status: 0 success,
// 1 failure at run time, 2 bad usage or configuration.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { bootstrapCommand, revokeCommand } from './cli/bootstrap.ts';
import { checkCommand } from './cli/check.ts';
import { UsageError, type Command } from './cli/command.ts';
import { approverCommand, injectorCommand, sidecarCommand } from './cli/in-cluster.ts';
import { credentialCommand, statusCommand } from './cli/published.ts';

export const EXIT_USAGE = 2;

/** Every subcommand, in the order the usage lists them; each one's flags and run function are in src/cli/. */
const COMMANDS: Record<string, Command> = {
  sidecar: sidecarCommand,
  approver: approverCommand,
  bootstrap: bootstrapCommand,
  revoke: revokeCommand,
  check: checkCommand,
  status: statusCommand,
  credential: credentialCommand,
  injector: injectorCommand,
};

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`);
  const forms = Object.values(COMMANDS).map((command) => `  kubeconfig-rotator ${command.usage}`);
  return [
    'usage: kubeconfig-rotator <command> [options]',
    '',
    'commands:',
    ...lines,
    '',
    ...forms,
    '',
    'options:',
    '  --help     show this help (also after a command)',
    '  --version  print the version',
    '',
  ].join('\n');
}

export async function main(
  argv: readonly string[],
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h') {
    out.write(usage());
    return 0;
  }
  if (first === '--version') {
    out.write(`${packageVersion()}\n`);
    return 0;
  }
  try {
    if (first === undefined) throw new UsageError('no command given');
    const command = COMMANDS[first];
    if (command === undefined) throw new UsageError(`unknown command "${first}"`);
    if (rest.includes('--help') || rest.includes('-h')) {
      out.write(`usage: kubeconfig-rotator ${command.usage}\n\n${command.summary}\n`);
      return 0;
    }
    const parsed = parseCommandLine(command, rest);
    return await command.run(parsed.values, parsed.positionals);
  } catch (error) {
    if (error instanceof UsageError) {
      err.write(`kubeconfig-rotator: ${error.message}\n\n${usage()}`);
      return EXIT_USAGE;
    }
    throw error;
  }
}

function parseCommandLine(
  command: Command,
  args: string[],
): { values: Record<string, unknown>; positionals: string[] } {
  try {
    return parseArgs({ args, options: command.options, allowPositionals: command.allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error), { cause: error });
  }
}

if (import.meta.main) {
  // Output piped into `head` and the like: a closed pipe ends the program quietly.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  main(process.argv.slice(2), process.stdout, process.stderr).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`kubeconfig-rotator: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
