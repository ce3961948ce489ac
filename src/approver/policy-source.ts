// The policy file, loaded at start and hot-reloaded. A mounted ConfigMap changes by swapping its ..data
// symlink, so the directory is watched (not the file), changes are debounced and the file re-read whole; a
// periodic re-read backs up the watcher. A new file that is invalid, unreadable or changes the signer keeps
// the current policy in force, is logged and counted.
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parsePolicyFile, policyFileSchema, type PolicyFile } from '../core/policy/schema.ts';
import type { Problem } from '../core/config/validate.ts';
import type { CurrentPolicy } from '../core/policy/csr-record.ts';
import { readConfigFile } from '../io/config-file.ts';
import { describeError } from '../io/kube/errors.ts';
import type { Logger } from '../io/log.ts';
import { watchDebounced } from '../io/watch.ts';

export interface PolicySourceOptions {
  readonly path: string;
  /** What readPolicy returned at start. */
  readonly initial: LoadedPolicy;
  readonly logger: Logger;
  /** A valid new policy is in force (generation counts from 1). */
  onChange(policy: CurrentPolicy): void;
  /** A new file was rejected; the current policy stays. */
  onRejected(problems: readonly Problem[]): void;
  readonly debounceMs?: number;
  readonly rereadIntervalMs?: number;
}

export interface PolicySource {
  readonly current: CurrentPolicy;
  /** Resolves once the directory watch has scanned it: a change after that is seen without a re-read. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

export interface LoadedPolicy {
  readonly text: string;
  readonly file: PolicyFile;
}

/** Reads and validates the policy file; throws ConfigError listing every problem. */
export function readPolicy(path: string): LoadedPolicy {
  const { text, value } = readConfigFile(path, policyFileSchema);
  return { text, file: value };
}

export function watchPolicyFile(options: PolicySourceOptions): PolicySource {
  const { path, logger } = options;
  let { text } = options.initial;
  let current: CurrentPolicy = { file: options.initial.file, generation: 1 };
  let rejected: string | undefined;
  let reading: Promise<void> = Promise.resolve();

  const reject = (problems: readonly Problem[]) => {
    const key = JSON.stringify(problems);
    // The same bad file is reported once, not at every event or periodic re-read.
    if (key === rejected) return;
    rejected = key;
    logger.error(
      {
        policy: path,
        problems: problems.map(
          (problem) =>
            `${problem.path === '' ? '' : `${problem.path}: `}${problem.message}${problem.line === undefined ? '' : ` (line ${String(problem.line)})`}`,
        ),
      },
      'new policy file rejected; the current policy stays in force',
    );
    options.onRejected(problems);
  };

  async function reload(): Promise<void> {
    let next: string;
    try {
      next = await readFile(path, 'utf8');
    } catch (error) {
      reject([{ path: '', message: `cannot be read: ${describeError(error)}` }]);
      return;
    }
    if (next === text) {
      rejected = undefined;
      return;
    }
    const parsed = parsePolicyFile(next);
    if (!parsed.ok) {
      reject(parsed.problems);
      return;
    }
    if (parsed.value.signerName !== current.file.signerName) {
      reject([
        {
          path: 'signerName',
          message: `changes from ${current.file.signerName}; a new signer needs a restart (and its RBAC)`,
        },
      ]);
      return;
    }
    text = next;
    rejected = undefined;
    current = { file: parsed.value, generation: current.generation + 1 };
    logger.info(
      { policy: path, generation: current.generation, policies: parsed.value.policies.map((policy) => policy.name) },
      'policy reloaded',
    );
    options.onChange(current);
  }

  const watching = watchDebounced(
    dirname(path),
    {
      depth: 0,
      debounceMs: options.debounceMs ?? 300,
      onError: (error) => {
        logger.warn(
          { policy: path, error: describeError(error) },
          'policy directory watch failed; the periodic re-read continues',
        );
      },
    },
    () => {
      reading = reading.then(reload);
    },
  );
  const reread = setInterval(() => {
    watching.trigger();
  }, options.rereadIntervalMs ?? 60_000);

  return {
    get current() {
      return current;
    },
    ready: watching.ready,
    async close() {
      clearInterval(reread);
      await watching.close();
      await reading;
    },
  };
}
