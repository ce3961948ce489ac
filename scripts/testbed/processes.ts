// Detached processes identified by pid and a marker in their command line, so a later command (or another
// process) can find and stop them safely even after the pid has been reused by something else.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SpawnedProcess {
  readonly pid: number;
  /** Resolves with a description when the process exits (used to fail a startup early). */
  readonly exited: Promise<string>;
}

export function spawnDetached(bin: string, args: readonly string[], logFile: string): SpawnedProcess {
  const log = openSync(logFile, 'a');
  try {
    const child = spawn(bin, args, { detached: true, stdio: ['ignore', log, log] });
    const exited = new Promise<string>((resolve) => {
      child.once('exit', (code, signal) => {
        resolve(signal === null ? `exited with code ${String(code)}` : `was killed by ${signal}`);
      });
      child.once('error', (error) => {
        resolve(`could not start: ${error.message}`);
      });
    });
    child.unref();
    if (child.pid === undefined) return { pid: -1, exited };
    return { pid: child.pid, exited };
  } finally {
    closeSync(log);
  }
}

/** True while the pid is alive (not a zombie) and its command line contains the marker. */
export function isRunning(pid: number, marker: string): boolean {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    return readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8').includes(marker);
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. */
export async function stopProcess(pid: number, marker: string, graceMs = 10_000): Promise<void> {
  if (!isRunning(pid, marker)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isRunning(pid, marker)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
    }
    await sleep(50);
  }
}

/** Distinct free loopback ports: all listeners stay open until every port is chosen. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => {
            resolve(server);
          });
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('listener has no TCP address');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

export function tailOfFile(path: string, lines = 25): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (error) {
    return `(no log at ${path}: ${(error as Error).message})`;
  }
}
