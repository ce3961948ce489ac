// The key of a request still waiting for its certificate, kept on a private volume (0600 in a 0700
// directory) so that a restarted sidecar can complete the same CSR instead of creating another. It never
// leaves the pod: an emptyDir, not a Secret.
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyAlgorithm } from '../core/pki/keys.ts';
import type { Subject } from '../core/pki/subject.ts';
import { fsyncDirectory, writeFileDurably } from '../io/fs.ts';

export interface PendingRequest {
  readonly keyPem: string;
  readonly algorithm: KeyAlgorithm;
  readonly subject: Subject;
  readonly signerName: string;
  readonly expirationSeconds: number;
  readonly csrName: string;
  /** Milliseconds since the epoch, when the request was first made. */
  readonly createdAt: number;
}

export interface PendingStore {
  load(): Promise<PendingRequest | undefined>;
  save(request: PendingRequest): Promise<void>;
  clear(): Promise<void>;
}

export class FilePendingStore implements PendingStore {
  readonly #directory: string;
  readonly #file: string;

  constructor(stateDir: string, target: string) {
    this.#directory = join(stateDir, target);
    this.#file = join(this.#directory, 'pending.json');
  }

  async load(): Promise<PendingRequest | undefined> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch {
      return undefined;
    }
    try {
      const parsed = JSON.parse(text) as Partial<PendingRequest>;
      const complete =
        typeof parsed.keyPem === 'string' &&
        typeof parsed.algorithm === 'string' &&
        typeof parsed.csrName === 'string' &&
        typeof parsed.signerName === 'string' &&
        typeof parsed.expirationSeconds === 'number' &&
        typeof parsed.createdAt === 'number' &&
        typeof parsed.subject?.commonName === 'string' &&
        Array.isArray(parsed.subject.organizations);
      // An unreadable record is as good as none: the next attempt makes a fresh request.
      return complete ? (parsed as PendingRequest) : undefined;
    } catch {
      return undefined;
    }
  }

  async save(request: PendingRequest): Promise<void> {
    await mkdir(this.#directory, { recursive: true, mode: 0o700 });
    const temporary = `${this.#file}.tmp`;
    await writeFileDurably(temporary, JSON.stringify(request), 0o600, 'w');
    await rename(temporary, this.#file);
    await fsyncDirectory(this.#directory);
  }

  async clear(): Promise<void> {
    await rm(this.#file, { force: true });
  }
}
