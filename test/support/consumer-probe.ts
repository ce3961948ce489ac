// A consumer probe (scripts/consumers, built by ensureConsumerProbes) as a test runs it: the tool's own client
// code reading what the sidecar publishes, one JSON line per call, rotation and log line, kept in a file.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/** One line a probe writes. */
export interface ProbeLine {
  /** The tool it plays, where the probe plays several. */
  readonly tool?: string;
  readonly event: 'start' | 'call' | 'rotation' | 'log' | 'stop' | 'fatal';
  readonly ok: boolean;
  /** When a call started; `time` is when it ended. */
  readonly started?: string;
  readonly user?: string;
  /** A digest of the credential the client used, where the probe can see it ('' where it cannot). */
  readonly credential?: string;
  readonly error?: string;
  /** What the tool's own code logged (`log` lines). */
  readonly message?: string;
  readonly time?: string;
}

export interface ProbeOptions {
  readonly bin: string;
  /** Where its lines (and its stderr, e.g. an exec plugin's) go. */
  readonly logFile: string;
  /** The probe's own flags; -source-kubeconfig and -interval follow them. */
  readonly args: readonly string[];
  readonly sourceKubeconfig: string;
  /** Between calls, as Go reads it (e.g. 2s). */
  readonly interval: string;
  /** Its environment; the test's own unless given. */
  readonly env?: NodeJS.ProcessEnv;
}

/** One probe process, running until stop(). */
export class Probe {
  readonly logFile: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;

  constructor(options: ProbeOptions) {
    this.logFile = options.logFile;
    const out = openSync(this.logFile, 'a');
    const args = [...options.args, '-source-kubeconfig', options.sourceKubeconfig, '-interval', options.interval];
    this.#child = spawn(options.bin, args, {
      stdio: ['ignore', out, out],
      ...(options.env === undefined ? {} : { env: options.env }),
    });
    closeSync(out);
    this.#exited = new Promise((resolve) =>
      this.#child.once('exit', () => {
        resolve();
      }),
    );
  }

  lines(): ProbeLine[] {
    return readFileSync(this.logFile, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as ProbeLine);
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null) this.#child.kill('SIGTERM');
    await this.#exited;
  }
}
