// `check`'s decisions on the source: what bootstrap left there (the bootstrap Secret, and the kubeconfig it holds
// verifying the target's certificate as the sidecar will connect), and the injector's webhook answering.
import { unreadableCheck, type EndpointTrial } from './common.ts';
import { pass, problem, type CheckResult } from './model.ts';

const bootstrapSecretBase = (where: string) =>
  ({ id: 'source.bootstrap-secret', group: 'source', title: `bootstrap Secret ${where}` }) as const;

/** The bootstrap Secret check when the Secret could not be read (not a 404). */
export function bootstrapSecretUnreadableCheck(where: string, message: string): CheckResult {
  return unreadableCheck(bootstrapSecretBase(where), `Secret ${where}`, 'source', message);
}

export function bootstrapSecretCheck(
  where: string,
  seen: { readonly exists: boolean; readonly hasKubeconfig: boolean },
): CheckResult {
  const base = bootstrapSecretBase(where);
  if (seen.exists && seen.hasKubeconfig)
    return pass(base.id, base.group, base.title, 'present, with its kubeconfig key');
  return problem(
    'fail',
    base,
    seen.exists
      ? 'present, but without the kubeconfig key'
      : 'absent: the sidecar has no credential for its first request',
    'run kubeconfig-rotator bootstrap for this source and target (with --namespace and --secret-name if you changed them)',
  );
}

/** The bootstrap kubeconfig the source holds (server, CA, tls-server-name) verifies the target's certificate. */
export function publishedEndpointCheck(
  where: string,
  endpoint: { readonly server: string; readonly tlsServerName: string | undefined },
  trial: EndpointTrial,
): CheckResult {
  const base = {
    id: 'source.published-endpoint',
    group: 'source',
    title: `the kubeconfig in ${where} verifies the target's certificate`,
  } as const;
  const name = endpoint.tlsServerName === undefined ? '' : ` for name ${endpoint.tlsServerName}`;
  const rerun =
    "run bootstrap again with a target kubeconfig whose server, CA and tls-server-name work with kubectl (or --server for an address the target's certificate is valid for)";
  switch (trial.result) {
    case 'answered':
      return pass(base.id, base.group, base.title, `${endpoint.server} answered over TLS checked with its CA${name}`);
    case 'invalid':
      return problem('fail', base, `its kubeconfig cannot be read: ${trial.message}`, rerun);
    case 'tls':
      return problem(
        'fail',
        base,
        `${endpoint.server}'s certificate does not verify with the kubeconfig's CA${name}: ${trial.message}; the sidecar's every request would fail the same way`,
        rerun,
      );
    case 'unreachable':
      // The sidecar connects from the source cluster: a private address may be out of this machine's reach.
      return problem(
        'warn',
        base,
        `${endpoint.server} could not be reached from here (${trial.message}), so its certificate was not checked`,
        'run the check where the source cluster reaches the target (the sidecar connects from there), or check the server address bootstrap wrote (--server)',
      );
  }
}

/** A LabelSelector (matchLabels, matchExpressions) as the label-selector string a list takes. */
export function labelSelectorString(selector: {
  readonly matchLabels?: Readonly<Record<string, string>> | undefined;
  readonly matchExpressions?:
    | readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] | undefined }[]
    | undefined;
}): string {
  const terms = Object.entries(selector.matchLabels ?? {}).map(([key, value]) => `${key}=${value}`);
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    if (operator === 'In') terms.push(`${key} in (${values.join(',')})`);
    else if (operator === 'NotIn') terms.push(`${key} notin (${values.join(',')})`);
    else if (operator === 'Exists') terms.push(key);
    else if (operator === 'DoesNotExist') terms.push(`!${key}`);
  }
  return terms.join(',');
}

export type WebhookTrial =
  /** No namespace matches the webhook's namespaceSelector: nothing to ask it with. */
  | { readonly result: 'noNamespace'; readonly selector: string }
  /** The dry-run pod came back with the sidecar added. */
  | { readonly result: 'injected'; readonly namespace: string }
  /** The webhook answered by refusing the check's pod (an unknown target, say): it is reachable and trusted. */
  | { readonly result: 'denied'; readonly namespace: string; readonly message: string }
  /** The pod came back unchanged: the call failed and failurePolicy Ignore hid it, or the webhook skipped it. */
  | { readonly result: 'unchanged'; readonly namespace: string }
  /** The apiserver could not call the webhook: no endpoints, refused, a certificate the caBundle does not verify. */
  | { readonly result: 'failed'; readonly namespace: string; readonly message: string }
  | { readonly result: 'error'; readonly message: string };

/** The injector's webhook, asked the way the apiserver asks it: a dry-run pod asking for injection. */
export function injectorWebhookCheck(name: string, trial: WebhookTrial): CheckResult {
  const base = {
    id: 'source.injector-webhook',
    group: 'source',
    title: `the injector's webhook ${name} answers the apiserver over TLS it trusts`,
  } as const;
  const pods = `kubectl get pods,endpointslices -A -l app.kubernetes.io/component=injector; the Service ${name}'s endpoints; its serving certificate (the Secret the chart or cert-manager writes) signed by the caBundle of MutatingWebhookConfiguration ${name}, for the Service's DNS name, unexpired`;
  switch (trial.result) {
    case 'noNamespace':
      return problem(
        'warn',
        base,
        `no namespace matches its namespaceSelector (${trial.selector}), so it was not asked`,
        "label the agents' namespace as the chart says (kubeconfig-rotator.io/injection=enabled by default) and run the check again",
      );
    case 'injected':
      return pass(
        base.id,
        base.group,
        base.title,
        `a dry-run pod in ${trial.namespace} came back with the sidecar added`,
      );
    case 'denied':
      return pass(
        base.id,
        base.group,
        base.title,
        `it answered a dry-run pod in ${trial.namespace} (it refused it: ${trial.message.slice(0, 200)})`,
      );
    case 'unchanged':
      return problem(
        'warn',
        base,
        `a dry-run pod in ${trial.namespace} asking for injection came back without the sidecar: with failurePolicy Ignore a failed call looks like this`,
        `set injector.failurePolicy: Fail to see the apiserver's error, or check: ${pods}`,
      );
    case 'failed':
      return problem(
        'fail',
        base,
        `the apiserver could not call it for a dry-run pod in ${trial.namespace}: ${trial.message.slice(0, 400)}`,
        `check ${pods}`,
      );
    case 'error':
      return problem(
        'fail',
        base,
        `the check could not ask it: ${trial.message}`,
        'run the check with a source kubeconfig that may list MutatingWebhookConfigurations and namespaces and create pods (dry run)',
      );
  }
}
