// `kubeconfig-rotator check`: from an operator's machine, what the target and the source offer (--pre, before
// bootstrap) and what is installed and working (after). Reads only, except the certificate target's check
// token (created, used once, deleted). Decisions and wording are in src/core/check; this file reads the flags
// and runs the checks of each group (cluster.ts, certificate-target.ts, token-target.ts, source.ts).
import type { KubeConfig } from '@kubernetes/client-node';
import { parseServiceAccountRef } from '../core/bootstrap/federation.ts';
import { alertsCheck } from '../core/check/cluster.ts';
import type { CredentialKind } from '../core/check/common.ts';
import type { CheckResult } from '../core/check/model.ts';
import { dnsLabel } from '../core/config/fields.ts';
import { TARGET_CREDENTIALS } from '../core/config/sidecar.ts';
import { loadContext, writeProblems } from '../bootstrap/kube.ts';
import { certificateTargetChecks } from './certificate-target.ts';
import { clusterChecks, readAlerts } from './cluster.ts';
import type { CheckOptions } from './options.ts';
import { outputProblems, writeResults } from './output.ts';
import { sourceChecks } from './source.ts';
import { issuerTrust, tokenTargetChecks } from './token-target.ts';

export async function runCheck(options: CheckOptions): Promise<number> {
  const problems: string[] = [];
  if (!(TARGET_CREDENTIALS as readonly string[]).includes(options.credential))
    problems.push(`--credential ${options.credential} must be certificate, token or federated`);
  problems.push(...outputProblems(options.output));
  // They name objects and groups, as in bootstrap.
  for (const [flag, value] of [
    ['--source-name', options.source],
    ['--target-name', options.target],
  ] as const)
    if (!dnsLabel.safeParse(value).success) problems.push(`${flag} "${value}" must be a DNS label (a-z, 0-9, -)`);
  if (options.serviceAccount !== undefined && parseServiceAccountRef(options.serviceAccount) === undefined)
    problems.push(`--service-account ${options.serviceAccount} must be NAMESPACE/NAME`);
  let target: KubeConfig | undefined;
  let source: KubeConfig | undefined;
  try {
    target = loadContext(options.targetKubeconfig, options.targetContext, 'target');
  } catch (error) {
    problems.push((error as Error).message);
  }
  // The source is optional: without it, only the target is checked.
  if (options.sourceKubeconfig !== undefined || options.sourceContext !== undefined) {
    try {
      source = loadContext(options.sourceKubeconfig, options.sourceContext, 'source');
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if (problems.length > 0 || target === undefined) {
    writeProblems(options.err, 'check', problems);
    return 2;
  }
  const credential = options.credential as CredentialKind;
  const results = [...(await targetChecks(target, credential, options))];
  if (credential === 'federated' && !options.pre) results.push(await issuerTrust(target, source, options));
  if (source !== undefined) results.push(...(await sourceChecks(source, credential, options)));
  return writeResults(results, options);
}

async function targetChecks(
  target: KubeConfig,
  credential: CredentialKind,
  options: CheckOptions,
): Promise<CheckResult[]> {
  const { results, reachable } = await clusterChecks(target, 'target', credential);
  // Nothing else can be learnt from a cluster that does not answer.
  if (!reachable) return results;
  if (credential === 'certificate') results.push(...(await certificateTargetChecks(target, options)));
  if (credential === 'token' && !options.pre) results.push(...(await tokenTargetChecks(target, options)));
  if (!options.pre) results.push(alertsCheck('target', await readAlerts(target)));
  return results;
}
