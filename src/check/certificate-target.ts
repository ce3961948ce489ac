// What `check` observes of a certificate target: it accepts a bootstrap token of the source's group
// (bootstrap-token.ts) and signs a CSR (signer.ts); the approver's Deployment, Lease and policy, and, after
// bootstrap, the decisions of any other approver on the source's CSRs.
import { AppsV1Api, CertificatesV1Api, CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { bootstrapGroup } from '../core/bootstrap/plan.ts';
import { bootstrapUser } from '../core/bootstrap/token.ts';
import {
  approverChecks,
  approverSeen,
  approverUnreadableCheck,
  firstCertificateFacts,
  policyCheck,
  policyUnreadableCheck,
  type ApproverSeen,
  type PolicySeen,
} from '../core/check/approver.ts';
import { bootstrapTokenCheck, leftBehindCheck, signerCheck } from '../core/check/certificate.ts';
import { csrSeen, decisionsOn, otherApproversCheck, OUR_REASONS, type ApiCsr } from '../core/check/csr-history.ts';
import type { CheckResult } from '../core/check/model.ts';
import { buildCertificationRequest } from '../core/pki/csr.ts';
import { clientUsagesFor, generateKeyPair } from '../core/pki/keys.ts';
import { decideUnread, evaluate } from '../core/policy/evaluate.ts';
import { parsePolicyFile } from '../core/policy/schema.ts';
import { describeError } from '../io/kube/errors.ts';
import { abortable } from './abortable.ts';
import { tryBootstrapToken } from './bootstrap-token.ts';
import { bounded, readOptional } from './bounded.ts';
import type { CheckOptions } from './options.ts';
import { trySigner } from './signer.ts';

// What the sidecar asks by default (docs/configuration.md): the policy is evaluated for the same.
const SIDECAR_KEY = 'ecdsa-p256';
const SIDECAR_EXPIRATION_SECONDS = 3600;

/** The certificate target's checks; before bootstrap (--pre) the source has no CSRs whose deciders to look at. */
export async function certificateTargetChecks(target: KubeConfig, options: CheckOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const { trial, leftBehind } = await tryBootstrapToken(target, options.source, options.now);
  results.push(bootstrapTokenCheck(options.source, trial));
  if (leftBehind !== undefined) results.push(leftBehindCheck(leftBehind));
  results.push(signerCheck(options.skipSigner ? { result: 'skipped' } : await trySigner(target, options.now)));
  const approver = await readApprover(target, options);
  results.push(...(approver.results ?? approverChecks(approver.seen, options.now())));
  results.push(await readPolicy(target, options));
  if (!options.pre) results.push(await otherApprovers(target, options));
  return results;
}

/** CSRs of this source (its bootstrap group, or the sidecar's identity renewing) decided by another approver. */
async function otherApprovers(target: KubeConfig, options: CheckOptions): Promise<CheckResult> {
  const scope = `source ${options.source}`;
  try {
    const list = await bounded('listing CSRs', (signal) =>
      target
        .makeApiClient(CertificatesV1Api)
        .listCertificateSigningRequest(
          { fieldSelector: 'spec.signerName=kubernetes.io/kube-apiserver-client', limit: 500 },
          abortable(signal),
        ),
    );
    const requesters = {
      users: options.commonName === undefined ? [] : [options.commonName],
      groups: [bootstrapGroup(options.source)],
    };
    const seen = decisionsOn((list.items as ApiCsr[]).map(csrSeen), requesters);
    return otherApproversCheck(scope, { result: 'listed', ...seen }, `reasons ${OUR_REASONS.slice(0, 2).join(', ')}`);
  } catch (error) {
    return otherApproversCheck(scope, { result: 'unreadable', message: describeError(error) }, '');
  }
}

async function readApprover(
  target: KubeConfig,
  options: CheckOptions,
): Promise<{ readonly seen: ApproverSeen; readonly results?: CheckResult[] }> {
  const { approverNamespace: namespace, approverName: name } = options;
  const where = `${namespace}/${name}`;
  try {
    const deployment = await readOptional(`Deployment ${where}`, (signal) =>
      target.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace, name }, abortable(signal)),
    );
    const lease = await readOptional(`Lease ${where}`, (signal) =>
      target.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace, name }, abortable(signal)),
    );
    return { seen: approverSeen(namespace, name, { deployment, lease }) };
  } catch (error) {
    return {
      seen: approverSeen(namespace, name, { deployment: undefined, lease: undefined }),
      results: [approverUnreadableCheck(namespace, name, describeError(error))],
    };
  }
}

async function readPolicy(target: KubeConfig, options: CheckOptions): Promise<CheckResult> {
  const namespace = options.approverNamespace;
  const name = `${options.approverName}-policy`;
  const where = `ConfigMap ${namespace}/${name}`;
  let text: string | undefined;
  try {
    const configMap = await readOptional(where, (signal) =>
      target.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace, name }, abortable(signal)),
    );
    text = configMap?.data?.['policy.yaml'];
  } catch (error) {
    return policyUnreadableCheck(options.source, where, describeError(error));
  }
  return policyCheck(options.source, policySeen(text, where, options));
}

function policySeen(text: string | undefined, where: string, options: CheckOptions): PolicySeen {
  if (text === undefined) return { result: 'absent', where };
  const parsed = parsePolicyFile(text);
  if (!parsed.ok)
    return {
      result: 'invalid',
      where,
      problems: parsed.problems.map((found) => `${found.path === '' ? '' : `${found.path}: `}${found.message}`),
    };
  const file = parsed.value;
  // The requester a bootstrap token of this source authenticates as (its id does not matter to a policy).
  const tokenUser = bootstrapUser({ id: 'checkk' });
  if (options.commonName === undefined) {
    const requester = { username: tokenUser, groups: [bootstrapGroup(options.source), 'system:bootstrappers'] };
    return { result: 'applies', where, applies: decideUnread(file, file.signerName, requester) === undefined };
  }
  const keys = generateKeyPair(SIDECAR_KEY);
  const csrPem = buildCertificationRequest(
    { commonName: options.commonName, organizations: [...options.organizations] },
    keys,
  );
  const facts = firstCertificateFacts({
    source: options.source,
    tokenUser,
    csrPem,
    usages: clientUsagesFor(SIDECAR_KEY),
    expirationSeconds: SIDECAR_EXPIRATION_SECONDS,
  });
  return { result: 'evaluated', where, commonName: options.commonName, evaluation: evaluate(facts, file) };
}
