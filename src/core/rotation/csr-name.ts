// A CSR name derived from what the request is (public key, subject, usages, signer), so a restarted sidecar
// finds its own pending request instead of creating another.
import { createHash } from 'node:crypto';
import type { Subject } from '../pki/subject.ts';

export interface RequestIdentity {
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly subject: Subject;
  readonly usages: readonly string[];
  readonly signerName: string;
}

export function csrName(request: RequestIdentity): string {
  const hash = createHash('sha256');
  // Length-prefixed fields: no two different requests serialize alike.
  const field = (value: Uint8Array | string) => {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length).update(bytes);
  };
  field(request.subjectPublicKeyInfo);
  field(request.subject.commonName);
  for (const list of [request.subject.organizations, request.usages]) {
    field(String(list.length));
    for (const item of [...list].sort()) field(item);
  }
  field(request.signerName);
  const readable = request.subject.commonName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `kcr-${readable === '' ? 'client' : readable}-${hash.digest('hex').slice(0, 20)}`;
}
