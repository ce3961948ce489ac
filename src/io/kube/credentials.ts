// The credential and TLS material each request of rest.ts is sent with, resolved from a ClientConfig: files
// (client certificate, key, CA) read again when they change on disk (checked at most once a second, and at
// once after a 401), a tokenFile (the in-cluster token included, a projected token the kubelet rotates) read
// again every minute as client-go does, and an exec plugin run when its credential is missing, expired, or
// refused by the API.
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import {
  ClientConfigError,
  execCredentialStale,
  execInfo,
  parseExecCredential,
  tokenFileStale,
  type ClientConfig,
  type ExecConfig,
  type ExecCredential,
} from '../../core/kubeconfig/client-config.ts';
import type { PemSource } from '../../core/kubeconfig/render.ts';
import { systemClock, type Clock } from '../clock.ts';

export interface Authentication {
  readonly caPem?: string;
  readonly certPem?: string;
  readonly keyPem?: string;
  readonly token?: string;
}

export interface Credentials {
  current(): Promise<Authentication>;
  /** The API answered 401: forget what may be stale. True when new material may be accepted (worth a retry). */
  refused(): boolean;
}

// A plugin that hangs must not hold a request (and shutdown) forever.
const EXEC_TIMEOUT_MS = 60_000;

// How often a certificate, key or CA file is checked for a change. A check per request cost 0.1-0.25 ms (three
// stat calls through the thread pool, the most after idle) of a 1-2 ms request; client-go looks every 5 minutes.
const FILE_CHECK_INTERVAL_MS = 1_000;

interface FileReader {
  read(): Promise<string>;
  /** The next read checks the file at once. */
  recheck(): void;
}

/** A file read again only when its identity, size or modification time changed, checked at most once a second. */
function changedFileReader(path: string, clock: Pick<Clock, 'monotonic'>): FileReader {
  let cached: { key: string; text: string; checkedAt: number } | undefined;
  return {
    async read() {
      if (cached !== undefined && clock.monotonic() - cached.checkedAt < FILE_CHECK_INTERVAL_MS) return cached.text;
      const info = await stat(path);
      const key = `${String(info.ino)}:${String(info.size)}:${String(info.mtimeMs)}`;
      const text = cached?.key === key ? cached.text : await readFile(path, 'utf8');
      cached = { key, text, checkedAt: clock.monotonic() };
      return text;
    },
    recheck() {
      if (cached !== undefined) cached = { ...cached, checkedAt: -Infinity };
    },
  };
}

function pemReader(source: PemSource | undefined, clock: Pick<Clock, 'monotonic'>): FileReader | undefined {
  if (source === undefined) return undefined;
  if ('pem' in source) return { read: () => Promise.resolve(source.pem), recheck: () => undefined };
  return changedFileReader(source.file, clock);
}

export interface CredentialOptions {
  readonly clock?: Pick<Clock, 'monotonic' | 'now'>;
  /** The environment exec plugins inherit. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export function kubeCredentials(config: ClientConfig, options: CredentialOptions = {}): Credentials {
  const clock = options.clock ?? systemClock;
  const { user } = config;
  const ca = pemReader(config.certificateAuthority, clock);
  const cert = pemReader(user.clientCertificate, clock);
  const key = pemReader(user.clientKey, clock);
  const tokenFile = user.token !== undefined && 'file' in user.token ? user.token.file : undefined;
  const inlineToken = user.token !== undefined && 'value' in user.token ? user.token.value : undefined;
  let token: { value: string; readAt: number } | undefined;
  let execCached: ExecCredential | undefined;
  let execRunning: Promise<ExecCredential> | undefined;

  async function readToken(file: string): Promise<string> {
    if (token === undefined || tokenFileStale(token.readAt, clock.monotonic()))
      token = { value: (await readFile(file, 'utf8')).trim(), readAt: clock.monotonic() };
    return token.value;
  }

  async function execCredential(plugin: ExecConfig, caPem: string | undefined): Promise<ExecCredential> {
    if (execCached !== undefined && !execCredentialStale(execCached, clock.now())) return execCached;
    // Concurrent requests share one run; a failed run is not cached, so the next request runs it again.
    execRunning ??= runPlugin(plugin, execInfo(plugin, config, caPem), options.env ?? process.env).finally(() => {
      execRunning = undefined;
    });
    execCached = await execRunning;
    return execCached;
  }

  return {
    async current() {
      const caPem = await ca?.read();
      const plugin = user.exec;
      const fromPlugin = plugin === undefined ? undefined : await execCredential(plugin, caPem);
      const certPem = fromPlugin?.clientCertificatePem ?? (await cert?.read());
      const keyPem = fromPlugin?.clientKeyPem ?? (await key?.read());
      const bearer =
        fromPlugin?.token ?? inlineToken ?? (tokenFile === undefined ? undefined : await readToken(tokenFile));
      return {
        ...(caPem === undefined ? {} : { caPem }),
        ...(certPem === undefined || keyPem === undefined ? {} : { certPem, keyPem }),
        ...(bearer === undefined || bearer === '' ? {} : { token: bearer }),
      };
    },
    refused() {
      const renewable = user.exec !== undefined || tokenFile !== undefined;
      execCached = undefined;
      token = undefined;
      for (const file of [ca, cert, key]) file?.recheck();
      return renewable;
    },
  };
}

function runPlugin(
  plugin: ExecConfig,
  info: string,
  inherited: Readonly<Record<string, string | undefined>>,
): Promise<ExecCredential> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(inherited)) if (value !== undefined) env[name] = value;
  for (const { name, value } of plugin.env) env[name] = value;
  env.KUBERNETES_EXEC_INFO = info;
  return new Promise((resolve, reject) => {
    const child = execFile(
      plugin.command,
      [...plugin.args],
      { env, timeout: EXEC_TIMEOUT_MS, maxBuffer: 1024 * 1024, windowsHide: true },
      (error, stdout) => {
        // Neither its output nor its stderr is quoted: either may hold the credential.
        if (error !== null) {
          const how = error.killed ? 'was killed (timeout)' : `failed (exit code ${String(error.code ?? '?')})`;
          reject(new ClientConfigError(`exec plugin ${plugin.command} ${how}`, { cause: withoutOutput(error) }));
          return;
        }
        try {
          resolve(parseExecCredential(stdout, plugin.apiVersion));
        } catch (parseError) {
          reject(parseError instanceof Error ? parseError : new Error(String(parseError)));
        }
      },
    );
    // Never interactive (interactiveMode Always is refused): stdin is empty and closed, as client-go leaves it.
    child.stdin?.end();
  });
}

/** execFile's error quotes the command's output; only its exit code or system error code is kept. */
const withoutOutput = (error: { readonly code?: string | number | null }) =>
  Object.assign(new Error('exec failed'), typeof error.code === 'string' ? { code: error.code } : {});
