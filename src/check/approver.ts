// `kubeconfig-rotator check --approver-policy FILE`: the approver chart's `helm test`, in the target cluster,
// with the installed policy file (the chart's ConfigMap, mounted) and the test pod's in-cluster credentials:
// the policy is valid (the approver's own schema), the approver's Deployment is ready and a replica holds its
// Lease, and no one else decides the CSRs of the policy's requesters. Reads only, with the sidecar's client.
import { readFileSync } from 'node:fs';
import { approverChecks, approverSeen, approverUnreadableCheck } from '../core/check/approver.ts';
import { csrSeen, decisionsOn, otherApproversCheck, OUR_REASONS, type ApiCsr } from '../core/check/csr-history.ts';
import type { CheckResult } from '../core/check/model.ts';
import { policyFileCheck } from '../core/check/policy-file.ts';
import { parsePolicyFile, type PolicyFile } from '../core/policy/schema.ts';
import { KubeConfigError, loadClientConfig } from '../io/kube/load-client-config.ts';
import { describeError, isNotFound } from '../io/kube/errors.ts';
import { createKubeClient, type KubeClient } from '../io/kube/rest.ts';
import { invalidUsage, outputProblems, writeResults, type CheckOutputOptions } from './output.ts';
import { bounded } from './bounded.ts';

export interface ApproverCheckOptions extends CheckOutputOptions {
  readonly policyPath: string;
  readonly namespace: string;
  readonly name: string;
  readonly env: NodeJS.ProcessEnv;
}

const SIGNER = 'kubernetes.io/kube-apiserver-client';

export async function runApproverCheck(options: ApproverCheckOptions): Promise<number> {
  const problems = outputProblems(options.output);
  let text: string | undefined;
  try {
    text = readFileSync(options.policyPath, 'utf8');
  } catch (error) {
    problems.push(`--approver-policy ${options.policyPath} cannot be read: ${(error as Error).message}`);
  }
  let client: KubeClient | undefined;
  try {
    client = createKubeClient(loadClientConfig(undefined, { env: options.env }), {
      userAgent: 'kubeconfig-rotator-check',
    });
  } catch (error) {
    if (!(error instanceof KubeConfigError)) throw error;
    problems.push(error.message);
  }
  if (problems.length > 0 || text === undefined || client === undefined) {
    return invalidUsage(options.err, problems);
  }
  const results: CheckResult[] = [];
  try {
    const parsed = parsePolicyFile(text);
    results.push(
      policyFileCheck(
        options.policyPath,
        parsed.ok
          ? { ok: true, policies: parsed.value.policies.map((policy) => policy.name) }
          : {
              ok: false,
              problems: parsed.problems.map((found) => `${found.path === '' ? '' : `${found.path}: `}${found.message}`),
            },
      ),
    );
    results.push(...(await approver(client, options)));
    if (parsed.ok) results.push(await otherApprovers(client, parsed.value));
  } finally {
    await client.close();
  }
  return writeResults(results, options);
}

async function readOptional<T>(client: KubeClient, path: string): Promise<T | undefined> {
  try {
    return await bounded(`GET ${path}`, (signal) => client.request<T>('GET', path, { signal }));
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

async function approver(client: KubeClient, options: ApproverCheckOptions): Promise<CheckResult[]> {
  const { namespace, name } = options;
  try {
    const deployment = await readOptional<{ spec?: { replicas?: number }; status?: { readyReplicas?: number } }>(
      client,
      `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`,
    );
    const lease = await readOptional<{
      spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number };
    }>(client, `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`);
    return approverChecks(approverSeen(namespace, name, { deployment, lease }), options.now());
  } catch (error) {
    return [approverUnreadableCheck(namespace, name, describeError(error))];
  }
}

/** The policy's requesters: its bootstrap users and groups, and the exact common names it renews. */
function requestersOf(file: PolicyFile): { users: string[]; groups: string[] } {
  const users = file.policies.flatMap((policy) => [
    ...policy.bootstrap.users,
    ...(policy.renewal === false ? [] : policy.identity.commonNames.filter((name) => !name.includes('*'))),
  ]);
  return { users, groups: file.policies.flatMap((policy) => policy.bootstrap.groups) };
}

async function otherApprovers(client: KubeClient, file: PolicyFile): Promise<CheckResult> {
  const names = file.policies.map((policy) => policy.name);
  const scope = names.length === 0 ? 'no policy' : `policies ${names.join(', ')}`;
  try {
    const list = await bounded('listing CSRs', (signal) =>
      client.request<{ items?: ApiCsr[] }>('GET', '/apis/certificates.k8s.io/v1/certificatesigningrequests', {
        query: { fieldSelector: `spec.signerName=${SIGNER}`, limit: 500 },
        signal,
      }),
    );
    const seen = decisionsOn((list.items ?? []).map(csrSeen), requestersOf(file));
    return otherApproversCheck(scope, { result: 'listed', ...seen }, `reasons ${OUR_REASONS.slice(0, 2).join(', ')}`);
  } catch (error) {
    return otherApproversCheck(scope, { result: 'unreadable', message: describeError(error) }, '');
  }
}
