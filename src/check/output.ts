// What the check commands (check, check --config, check --approver-policy) share: the report's form and where
// it goes, read from the same flags and written the same way.
import { exitCode, renderJson, renderText, type CheckResult } from '../core/check/model.ts';

export interface CheckOutputOptions {
  /** --output: text or json. */
  readonly output: string;
  readonly strict: boolean;
  readonly now: () => number;
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
}

/** The problem with --output, if any. */
export function outputProblems(output: string): string[] {
  return output === 'text' || output === 'json' ? [] : [`--output ${output} must be text or json`];
}

/** Bad flags or files: every problem on err, and the exit code 2. */
export function invalidUsage(err: NodeJS.WritableStream, problems: readonly string[]): number {
  err.write(`kubeconfig-rotator check: invalid usage\n${problems.map((line) => `  ${line}\n`).join('')}`);
  return 2;
}

/** The report on out, in the chosen form; returns the exit code. */
export function writeResults(results: readonly CheckResult[], options: CheckOutputOptions): number {
  options.out.write(
    options.output === 'json' ? renderJson(results, options.strict, options.now()) : renderText(results),
  );
  return exitCode(results, options.strict);
}
