// What the approver keeps of a CSR, and derives from it for the policy and for reporting: the CSR object (from a
// list, typed, or a watch, plain JSON: the same field names) mapped to a record at ingest. Pure: the types of
// @kubernetes/client-node describe the object, and nothing of the client is loaded.
import type {
  V1CertificateSigningRequest,
  V1CertificateSigningRequestCondition,
  V1ObjectMeta,
} from '@kubernetes/client-node';
import { parseCertificationRequest } from '../pki/csr-parse.ts';
import type { Decision } from './decision.ts';
import { decideUnread } from './evaluate.ts';
import type { RequestFacts, Requester } from './request-checks.ts';
import type { PolicyFile } from './schema.ts';

/** The policy in force, and its generation (each reload adds one). */
export interface CurrentPolicy {
  readonly file: PolicyFile;
  readonly generation: number;
}

/**
 * What the cache keeps of a CSR, transformed at ingest: never the request bytes nor the whole object, and the
 * request is parsed only when a policy could apply to its requester (anyone who may create CSRs could otherwise
 * fill the approver's memory with requests that no policy matches).
 */
export interface CsrRecord {
  readonly name: string;
  readonly uid: string;
  /** metadata.creationTimestamp, in milliseconds. */
  readonly createdAt: number;
  readonly decided: boolean;
  /** Present while undecided: what deciding it and writing the decision need. */
  readonly pending?: PendingCsr;
}

export type PendingCsr = ReadCsr | UnreadCsr;

/** A CSR a policy could apply to. */
export interface ReadCsr {
  readonly read: true;
  /** The request already parsed (or refused, an oversize one by its size alone). */
  readonly facts: RequestFacts;
  readonly write: WriteTarget;
}

/**
 * A CSR no policy of `generation` could apply to, known from its spec alone: the request was not parsed, and the
 * decision (left pending, or denied with denyUnmatched) is made. A later policy may apply: see isUnread.
 */
export interface UnreadCsr {
  readonly read: false;
  readonly generation: number;
  readonly username: string;
  readonly decision: Decision;
  /** Without metadata: the writer reads it again if a denial is written. */
  readonly write: WriteTarget;
}

/** Records a policy change may make readable: what the informer transforms again after a policy reload. */
export function isUnread(record: CsrRecord): boolean {
  return record.pending?.read === false;
}

export type CacheStats = Readonly<Record<'decided' | 'read' | 'unread', { csrs: number; bytes: number }>>;

/** About what a record keeps, in bytes: characters, byte lengths, 8 per number and 16 per property or element. */
export function keptBytes(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (typeof value !== 'object' || value === null) return 8;
  if (value instanceof Uint8Array) return value.byteLength;
  let total = 0;
  for (const entry of Array.isArray(value) ? (value as unknown[]) : Object.values(value))
    total += 16 + keptBytes(entry);
  return total;
}

/** The kind of record, as the cache_csrs and cache_bytes gauges count it. */
export function keptAs(record: CsrRecord): keyof CacheStats {
  return record.decided ? 'decided' : isUnread(record) ? 'unread' : 'read';
}

/** What an approval update needs: the apiserver keeps the stored spec and status, and takes only conditions. */
export interface WriteTarget {
  readonly name: string;
  /** The version the decision is made at: a write against any other fails with a conflict. */
  readonly resourceVersion: string;
  readonly conditions: readonly V1CertificateSigningRequestCondition[];
  /**
   * The metadata to send back (an update replaces labels and annotations), without managedFields, which the
   * server keeps; absent when larger than MAX_KEPT_METADATA_BYTES: the writer then reads it again.
   */
  readonly metadata?: V1ObjectMeta;
}

// Labels and annotations are the requester's to choose (up to 256 KiB of annotations): a bounded amount is kept.
const MAX_KEPT_METADATA_BYTES = 4096;

export function isDecided(csr: V1CertificateSigningRequest): boolean {
  // Any Approved, Denied or Failed condition, whatever its status, as kube-controller-manager reads them.
  return (csr.status?.conditions ?? []).some((condition) => ['Approved', 'Denied', 'Failed'].includes(condition.type));
}

function millis(time: unknown): number {
  if (time instanceof Date) return time.getTime();
  return typeof time === 'string' ? Date.parse(time) : Number.NaN;
}

/**
 * The cache's view of an object from a list (typed) or a watch (plain JSON): the same field names. Whether its
 * request is read depends on `policy`.
 */
export function csrRecord(csr: V1CertificateSigningRequest, policy: CurrentPolicy): CsrRecord {
  const base = {
    name: csr.metadata?.name ?? '',
    uid: csr.metadata?.uid ?? '',
    createdAt: millis(csr.metadata?.creationTimestamp),
  };
  if (isDecided(csr)) return { ...base, decided: true };
  const requester = requesterOf(csr);
  const decision = decideUnread(policy.file, csr.spec.signerName, requester);
  if (decision === undefined)
    return { ...base, decided: false, pending: { read: true, facts: requestFacts(csr), write: writeTarget(csr) } };
  const write = writeTarget(csr, false);
  const unread: UnreadCsr = {
    read: false,
    generation: policy.generation,
    username: requester.username,
    decision,
    write,
  };
  return { ...base, decided: false, pending: unread };
}

/** Metadata as an update sends it back: without managedFields, which the server keeps. */
export function withoutManagedFields(metadata: V1ObjectMeta | undefined): V1ObjectMeta {
  const copy = { ...metadata };
  delete copy.managedFields;
  return copy;
}

/** With `keepMetadata` false (a CSR not read), the writer reads the metadata again if it ever writes. */
export function writeTarget(csr: V1CertificateSigningRequest, keepMetadata = true): WriteTarget {
  const metadata = withoutManagedFields(csr.metadata);
  const small = keepMetadata && JSON.stringify(metadata).length <= MAX_KEPT_METADATA_BYTES;
  return {
    name: csr.metadata?.name ?? '',
    resourceVersion: csr.metadata?.resourceVersion ?? '',
    conditions: csr.status?.conditions ?? [],
    ...(small ? { metadata } : {}),
  };
}

function requesterOf({ spec }: V1CertificateSigningRequest): Requester {
  return {
    username: spec.username ?? '',
    groups: spec.groups ?? [],
    ...(spec.uid === undefined ? {} : { uid: spec.uid }),
    ...(spec.extra === undefined ? {} : { extra: spec.extra }),
  };
}

export function requestFacts(csr: V1CertificateSigningRequest): RequestFacts {
  const { spec } = csr;
  return {
    signerName: spec.signerName,
    usages: spec.usages ?? [],
    ...(spec.expirationSeconds === undefined ? {} : { expirationSeconds: spec.expirationSeconds }),
    requester: requesterOf(csr),
    request: parseCertificationRequest(Buffer.from(spec.request, 'base64')),
  };
}
