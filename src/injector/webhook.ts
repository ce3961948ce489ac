// The admission webhook itself: AdmissionReview in, AdmissionReview out. Decisions come from the pure
// planInjection; this only speaks the protocol. A request it cannot read is answered with an error status,
// never a crash.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { InjectorConfig } from '../core/config/injector.ts';
import { planInjection, type InjectionPlan, type PodLike } from '../core/injector/plan.ts';

export type Outcome = 'injected' | 'skipped' | 'rejected' | 'dry-run' | 'error';

export interface AdmissionResult {
  readonly outcome: Outcome;
  readonly response: Record<string, unknown>;
  /** For the log: what was decided about which pod. */
  readonly detail: string;
}

interface AdmissionRequest {
  uid?: unknown;
  kind?: { kind?: unknown };
  operation?: unknown;
  namespace?: unknown;
  object?: unknown;
}

const MAX_BODY_BYTES = 3 * 1024 * 1024;

export function review(body: unknown, config: InjectorConfig): AdmissionResult {
  const request =
    (typeof body === 'object' && body !== null ? (body as { request?: AdmissionRequest }).request : undefined) ?? {};
  const uid = typeof request.uid === 'string' ? request.uid : '';
  if (uid === '' || typeof request.object !== 'object' || request.object === null) {
    return respond(
      uid,
      'error',
      {
        allowed: false,
        status: { code: 400, message: 'kubeconfig-rotator injector: not an AdmissionReview request with an object' },
      },
      'malformed request',
    );
  }
  const pod = request.object as NamedPod;
  const name = podName(request.namespace, pod);
  if (request.kind?.kind !== 'Pod' || request.operation !== 'CREATE')
    return respond(uid, 'skipped', {}, `${name}: not a Pod creation`);
  return answer(uid, name, planInjection(pod, config));
}

type NamedPod = PodLike & { metadata?: { name?: string; generateName?: string } };

/** NAMESPACE/NAME for the log; a pod created from generateName has no name yet. */
const podName = (namespace: unknown, pod: NamedPod) =>
  `${typeof namespace === 'string' ? namespace : ''}/${pod.metadata?.name ?? pod.metadata?.generateName ?? '?'}`;

function respond(uid: string, outcome: Outcome, fields: Record<string, unknown>, detail: string): AdmissionResult {
  return {
    outcome,
    response: {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid, allowed: true, ...fields },
    },
    detail,
  };
}

/** The plan as an admission response: allowed as it is, refused, allowed with warnings, or patched. */
function answer(uid: string, name: string, plan: InjectionPlan): AdmissionResult {
  switch (plan.kind) {
    case 'skip':
      return respond(uid, 'skipped', {}, `${name}: ${plan.reason}`);
    case 'reject':
      return respond(
        uid,
        'rejected',
        { allowed: false, status: { code: 400, reason: 'BadRequest', message: plan.message } },
        `${name}: ${plan.message}`,
      );
    case 'dry-run':
      return respond(uid, 'dry-run', { warnings: plan.warnings }, `${name}: dry run`);
    case 'inject':
      return respond(
        uid,
        'injected',
        {
          patchType: 'JSONPatch',
          patch: Buffer.from(JSON.stringify(plan.patch)).toString('base64'),
          ...(plan.warnings.length > 0 ? { warnings: plan.warnings } : {}),
        },
        `${name}: injected ${plan.targets.join(', ')}`,
      );
  }
}

/** Handles POST /mutate; anything else is 404 or 405. */
export function handleMutate(
  request: IncomingMessage,
  response: ServerResponse,
  config: () => InjectorConfig,
  onResult: (result: AdmissionResult) => void,
): void {
  const reply = (status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  if ((request.url ?? '').split('?')[0] !== '/mutate') {
    reply(404, { message: 'not found' });
    return;
  }
  if (request.method !== 'POST') {
    reply(405, { message: 'POST only' });
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  request.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      reply(413, { message: 'request too large' });
      request.destroy();
      return;
    }
    chunks.push(chunk);
  });
  request.on('end', () => {
    if (size > MAX_BODY_BYTES) return;
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      body = undefined;
    }
    const result = review(body, config());
    onResult(result);
    reply(200, result.response);
  });
}
