// A CSR object as the approver's informer receives it, and the policy the approver's unit tests decide it by.
import assert from 'node:assert/strict';
import type { V1CertificateSigningRequest } from '@kubernetes/client-node';
import type { Requester } from '../../src/core/policy/request-checks.ts';
import { parsePolicyFile, type PolicyFile } from '../../src/core/policy/schema.ts';
import { requestPem, subject, type RequestShape } from './hostile-csr.ts';

export const GROUP = 'system:bootstrappers:kcr:cluster-a';
export const BOOTSTRAP: Requester = { username: 'system:bootstrap:aaaaaa', groups: ['system:bootstrappers', GROUP] };

/** A policy for GROUP's bootstrap tokens (agent-* in team-a), with `extra` YAML lines appended to it. */
export function policyFile(extra = ''): PolicyFile {
  const parsed = parsePolicyFile(`
policies:
  - name: cluster-a
    bootstrap: { groups: ['${GROUP}'] }
    identity: { commonNames: ['agent-*'], organizations: [team-a] }
${extra}`);
  assert.ok(parsed.ok, parsed.ok ? '' : JSON.stringify(parsed.problems));
  return parsed.value;
}

let serial = 0;
/** A pending CSR of a new name each time, from BOOTSTRAP unless told, created 2 s before 2026-01-01. */
export function csrObject(
  options: { cn?: string; requester?: Requester; conditions?: { type: string }[]; request?: RequestShape } = {},
): V1CertificateSigningRequest {
  const name = `csr-${String(++serial)}`;
  const requester = options.requester ?? BOOTSTRAP;
  return {
    metadata: {
      name,
      uid: `uid-${name}`,
      resourceVersion: '1',
      creationTimestamp: new Date(Date.parse('2026-01-01T00:00:00Z') - 2_000),
      managedFields: [{ manager: 'kubectl' }],
    },
    spec: {
      request: Buffer.from(
        requestPem({ subject: subject(options.cn ?? 'agent-a', ['team-a']), ...options.request }),
      ).toString('base64'),
      signerName: 'kubernetes.io/kube-apiserver-client',
      usages: ['digital signature', 'client auth'],
      expirationSeconds: 3600,
      username: requester.username,
      groups: [...requester.groups],
    },
    status: { conditions: (options.conditions ?? []).map((condition) => ({ ...condition, status: 'True' })) },
  };
}
