// Does the target accept bootstrap tokens of this source? A token the check creates (short-lived, in the
// source's bootstrap group, labelled as the check's) is used for one SelfSubjectReview, then deleted. Shared by
// `check` and by `bootstrap`, which verifies what it created the same way.
import { randomBytes } from 'node:crypto';
import { AuthenticationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay } from '../core/backoff.ts';
import { bootstrapGroup, MANAGED_BY } from '../core/bootstrap/plan.ts';
import {
  bootstrapTokenSecret,
  bootstrapTokenString,
  generateBootstrapToken,
  type BootstrapToken,
} from '../core/bootstrap/token.ts';
import type { BootstrapTokenTrial } from '../core/check/certificate.ts';
import { describeError, httpStatus } from '../io/kube/errors.ts';
import { abortable } from './abortable.ts';
import { bounded } from './bounded.ts';

// The apiserver's bootstrap authenticator reads token Secrets through an informer: a new one may be unknown
// for a moment, so a 401 is retried for this long before it counts as a refusal.
const REFUSAL_SETTLE_MS = 5_000;
const RETRY = { initialMs: 200, maxMs: 1_000 };
// Long enough for the check, short enough that one left behind (a delete that failed) soon stops mattering.
const CHECK_TOKEN_TTL_MS = 10 * 60_000;

/** A client of the target's cluster (server, CA, tls-server-name) that authenticates with `token` alone. */
export function withToken(target: KubeConfig, token: string): KubeConfig {
  const cluster = target.getCurrentCluster();
  if (cluster === null) throw new Error('the target kubeconfig has no current cluster');
  const client = new KubeConfig();
  client.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'bootstrap-token', token }],
    contexts: [{ name: 'check', cluster: cluster.name, user: 'bootstrap-token' }],
    currentContext: 'check',
  });
  return client;
}

/** One SelfSubjectReview with `token`: who the target takes it for, or why it refused. */
export async function reviewToken(target: KubeConfig, token: string, now: () => number): Promise<BootstrapTokenTrial> {
  const api = withToken(target, token).makeApiClient(AuthenticationV1Api);
  const deadline = now() + REFUSAL_SETTLE_MS;
  for (let failures = 1; ; failures++) {
    try {
      const review = await bounded('SelfSubjectReview', (signal) =>
        api.createSelfSubjectReview(
          { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } },
          abortable(signal),
        ),
      );
      const user = review.status?.userInfo;
      return { result: 'reviewed', username: user?.username ?? '', groups: user?.groups ?? [] };
    } catch (error) {
      if (httpStatus(error) !== 401) return { result: 'error', message: describeError(error) };
      if (now() >= deadline) return { result: 'refused', message: describeError(error) };
      await sleep(backoffDelay(failures, RETRY));
    }
  }
}

/** Creates a check token in the source's group, reviews it, and deletes it whatever the outcome. */
export async function tryBootstrapToken(
  target: KubeConfig,
  source: string,
  now: () => number,
): Promise<{ readonly trial: BootstrapTokenTrial; readonly leftBehind: string | undefined }> {
  const token: BootstrapToken = generateBootstrapToken((count) => randomBytes(count));
  const secret = bootstrapTokenSecret(token, {
    expiration: new Date(now() + CHECK_TOKEN_TTL_MS),
    extraGroups: [bootstrapGroup(source)],
    description: 'kubeconfig-rotator check: deleted after the check',
    labels: { ...MANAGED_BY, 'kubeconfig-rotator.io/check': 'true' },
  });
  const api = target.makeApiClient(CoreV1Api);
  try {
    await bounded('creating the check token', (signal) =>
      api.createNamespacedSecret({ namespace: 'kube-system', body: secret }, abortable(signal)),
    );
  } catch (error) {
    return { trial: { result: 'notCreated', message: describeError(error) }, leftBehind: undefined };
  }
  const trial = await reviewToken(target, bootstrapTokenString(token), now);
  try {
    await bounded('deleting the check token', (signal) =>
      api.deleteNamespacedSecret({ namespace: 'kube-system', name: secret.metadata.name }, abortable(signal)),
    );
    return { trial, leftBehind: undefined };
  } catch {
    return { trial, leftBehind: `kube-system/${secret.metadata.name}` };
  }
}
