// A kubeconfig-rotator command run as a child process, as users run it, with its JSON log lines parsed as
// they arrive (for tests, benchmarks and the demo). Output is also kept in a log file when one is given.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const CLI_PATH = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

export interface CliProcessOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** The entry point: the TypeScript sources by default, or a compiled dist/cli.js. */
  readonly entry?: string;
  /** Options for node itself, e.g. --optimize-for-size. */
  readonly nodeOptions?: readonly string[];
  /** stdout and stderr are appended here. */
  readonly logFile?: string;
  /** Shown in error messages, e.g. "sidecar". */
  readonly label?: string;
}

export class CliProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #label: string;
  #stderr = '';
  /** Set once the process has ended and its output has been read to the end. */
  #closed = false;

  constructor(args: readonly string[], options: CliProcessOptions = {}) {
    this.#label = options.label ?? args[0] ?? 'kubeconfig-rotator';
    this.child = spawn(process.execPath, [...(options.nodeOptions ?? []), options.entry ?? CLI_PATH, ...args], {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = options.logFile === undefined ? undefined : createWriteStream(options.logFile);
    let partial = '';
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      log?.write(chunk);
      partial += chunk;
      const complete = partial.split('\n');
      partial = complete.pop() ?? '';
      for (const line of complete) {
        if (line.trim() === '') continue;
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ level: 'raw', msg: line });
        }
      }
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      log?.write(chunk);
      this.#stderr += chunk;
    });
    // 'close', not 'exit': 'exit' can come before the last output has been read from the pipes.
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        this.#closed = true;
        log?.end();
        resolve({ code, signal });
      });
    });
  }

  get stderr(): string {
    return this.#stderr;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first log line (from index `from`, already seen or coming) that matches. */
  async waitForLog(match: (line: LogLine) => boolean, timeoutMs = 30_000, from = 0): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(from).find(match);
      if (found !== undefined) return found;
      if (this.#closed)
        throw new Error(
          `${this.#label} exited (${String(this.child.exitCode ?? this.child.signalCode)}) before the expected log line; stderr: ${this.#stderr}`,
        );
      if (Date.now() > deadline) {
        throw new Error(
          `${this.#label}: no matching log line within ${String(timeoutMs)} ms; last lines:\n${this.lines
            .slice(-5)
            .map((line) => JSON.stringify(line))
            .join('\n')}`,
        );
      }
      await sleep(50);
    }
  }

  count(match: (line: LogLine) => boolean): number {
    return this.lines.filter(match).length;
  }

  /** The port of /healthz, /readyz and /metrics, from the startup line that logs the listening address. */
  async port(): Promise<number> {
    const line = await this.waitForLog((entry) => typeof entry.address === 'string');
    return Number(String(line.address).split(':').pop());
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }
}
