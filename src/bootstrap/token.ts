// `bootstrap --credential token`: the ServiceAccount, its lease Secret and its self-token RBAC in the target,
// then a first token (bound to the lease) in the source's bootstrap Secret, and the guardrail that bounds
// every token of the ServiceAccount. A re-run converges and issues a fresh first token.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { BOOTSTRAP_SECRET_KEY, redactPlan, sourceSecretObjects } from '../core/bootstrap/plan.ts';
import {
  tokenIdentity,
  tokenRequestBody,
  tokenTargetObjects,
  type TokenIdentity,
} from '../core/bootstrap/token-plan.ts';
import { guardrailName, tokenGuardrailObjects, type GuardrailSettings } from '../core/bootstrap/token-guardrail.ts';
import { readToken, serviceAccountUser } from '../core/credential/token.ts';
import { VALIDATING_ADMISSION_POLICY } from '../core/kube-version.ts';
import { describeError } from '../io/kube/errors.ts';
import { apply, BootstrapError, reachable, requireMinor } from './kube.ts';
import { printPlan, type Clusters, type ModeRun } from './mode.ts';

export interface TokenSettings {
  readonly ttlMs: number;
  /** The target namespace of the ServiceAccount and its lease Secret. */
  readonly targetNamespace: string;
  readonly guardrail: GuardrailSettings;
}

export async function bootstrapToken(run: ModeRun, clusters: Clusters, settings: TokenSettings): Promise<number> {
  const { target, source } = clusters;
  const { guardrail } = settings;
  const identity = tokenIdentity(run.source, settings.targetNamespace);
  const targetObjects = tokenTargetObjects(run.source, identity);
  const expiration = new Date(Date.now() + settings.ttlMs);
  const sourceObjects = (token: string) =>
    sourceSecretObjects({
      ...run.endpoint,
      source: run.source,
      target: run.target,
      token: { value: token, expiration },
      sourceNamespace: run.namespace,
      secretName: run.secretName,
    });
  // Without --audience, the guardrail allows the apiserver's own audiences, read from the first token.
  const guardrailObjects = (defaultAudiences: readonly string[]) =>
    tokenGuardrailObjects(run.source, identity, {
      ...guardrail,
      audiences: guardrail.audiences.length > 0 ? guardrail.audiences : defaultAudiences,
    });
  if (run.dryRun) {
    const plan = {
      target: [...targetObjects, ...guardrailObjects(['<the apiserver audiences>'])],
      source: sourceObjects('<token>'),
    };
    printPlan(run.out, redactPlan(plan), clusters, run.endpoint);
    return 0;
  }
  requireMinor(await reachable(target, 'target'), VALIDATING_ADMISSION_POLICY, 'target');
  await reachable(source, 'source');
  for (const object of targetObjects) await apply(target, object, 'target');
  const token = await firstToken(target, identity, Math.floor(settings.ttlMs / 1000), guardrail.audiences);
  const { audiences } = readToken(token.value);
  for (const object of guardrailObjects(audiences)) await apply(target, object, 'target');
  for (const object of sourceObjects(token.value)) await apply(source, object, 'source');
  const write = (line: string) => run.out.write(`${line}\n`);
  const account = `${identity.namespace}/${identity.serviceAccount}`;
  write(`target ${run.endpoint.server}:`);
  write(
    `  ServiceAccount ${account}: the identity (${serviceAccountUser({ namespace: identity.namespace, name: identity.serviceAccount })}); grant it what the agent needs`,
  );
  write(
    `  Secret ${identity.namespace}/${identity.leaseSecret}: every token of this source is bound to it; delete it to revoke them all`,
  );
  write(`  Role ${identity.namespace}/${identity.role} lets the ServiceAccount create tokens for itself only`);
  write(
    `  ValidatingAdmissionPolicy ${guardrailName(run.source, identity)} refuses its tokens longer than ${String(guardrail.maxExpirationSeconds)} s, not bound to the lease, or for audiences other than ${(guardrail.audiences.length > 0 ? guardrail.audiences : audiences).join(', ')}, and any legacy token Secret for it`,
  );
  write(`  first token expires ${token.expiration}`);
  write(`source ${source.getCurrentCluster()?.server ?? ''}:`);
  write(
    `  Secret ${run.namespace}/${run.secretName} (key ${BOOTSTRAP_SECRET_KEY}) holds the bootstrap kubeconfig; mount it as the sidecar's bootstrapKubeconfig`,
  );
  const audienceField = guardrail.audiences.length > 0 ? `, audiences: [${guardrail.audiences.join(', ')}]` : '';
  write(
    `The sidecar's target: credential: token, serviceAccount: { namespace: ${identity.namespace}, name: ${identity.serviceAccount} }${audienceField}, expirationSeconds at most ${String(guardrail.maxExpirationSeconds)}.`,
  );
  return 0;
}

async function firstToken(
  target: KubeConfig,
  identity: TokenIdentity,
  expirationSeconds: number,
  audiences: readonly string[],
): Promise<{ value: string; expiration: string }> {
  try {
    const response = await target.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      namespace: identity.namespace,
      name: identity.serviceAccount,
      body: tokenRequestBody(identity.leaseSecret, expirationSeconds, audiences),
    });
    const value = response.status?.token ?? '';
    if (value === '') throw new Error('the TokenRequest returned no token');
    return { value, expiration: response.status?.expirationTimestamp?.toISOString() ?? '?' };
  } catch (error) {
    throw new BootstrapError(
      `could not request the first token for ServiceAccount ${identity.namespace}/${identity.serviceAccount}: ${describeError(error)}`,
      { cause: error },
    );
  }
}
