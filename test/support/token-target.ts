// A token target made the way users make one: `kubeconfig-rotator bootstrap --credential token` (run in this
// process) creates the ServiceAccount, its lease Secret, the guardrail and the first token in the target and
// the bootstrap Secret in the source; the helper then mounts that Secret as the kubelet would.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { CoreV1Api } from '@kubernetes/client-node';
import { runBootstrap, type BootstrapOptions } from '../../src/bootstrap/run.ts';
import { tokenIdentity, type TokenIdentity } from '../../src/core/bootstrap/token-plan.ts';
import { serviceAccountUser } from '../../src/core/credential/token.ts';
import { writeKubeletMount } from '../../scripts/testbed/mount.ts';
import type { TestCluster } from './clusters.ts';
import { uniqueName } from './kube.ts';

export interface PreparedTokenTarget {
  readonly name: string;
  readonly sourceName: string;
  readonly identity: TokenIdentity;
  /** The user the target sees: system:serviceaccount:<namespace>:<name>. */
  readonly user: string;
  readonly bootstrapKubeconfig: string;
  readonly dir: string;
  /** The sidecar target's token fields. */
  readonly targetFields: { credential: 'token'; serviceAccount: { namespace: string; name: string } };
  /** Bootstrap again (a new first token) and mount it; returns the bootstrap kubeconfig. */
  rebootstrap(): Promise<string>;
}

function collector(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

export async function prepareTokenTarget(
  target: TestCluster,
  source: TestCluster,
  options: { readonly targetNamespace: string; readonly sourceNamespace?: string } & Partial<BootstrapOptions>,
): Promise<PreparedTokenTarget & { readonly bootstrapOutput: string; readonly firstToken: string }> {
  const name = uniqueName('tok');
  const sourceName = name;
  const dir = mkdtempSync(join(tmpdir(), `kcr-${name}-`));
  const namespace = options.sourceNamespace ?? 'default';
  const secretName = `kcr-bootstrap-${name}`;
  const identity = tokenIdentity(sourceName, options.targetNamespace);

  const bootstrap = async (): Promise<{ kubeconfig: string; output: string }> => {
    const out = collector();
    const err = collector();
    const code = await runBootstrap({
      credential: 'token',
      source: sourceName,
      target: name,
      targetKubeconfig: target.state.kubeconfig,
      targetContext: undefined,
      sourceKubeconfig: source.state.kubeconfig,
      sourceContext: undefined,
      namespace,
      secretName,
      server: undefined,
      ttl: '10m',
      dryRun: false,
      ...options,
      out: out.stream,
      err: err.stream,
    });
    if (code !== 0) throw new Error(`bootstrap --credential token exited ${String(code)}: ${err.text()}`);
    const kubeconfig = await mountBootstrapSecret(source, { namespace, name: secretName }, join(dir, 'bootstrap'));
    return { kubeconfig, output: out.text() };
  };
  const first = await bootstrap();
  return {
    name,
    sourceName,
    identity,
    user: serviceAccountUser({ namespace: identity.namespace, name: identity.serviceAccount }),
    bootstrapKubeconfig: join(dir, 'bootstrap', 'kubeconfig'),
    dir,
    targetFields: {
      credential: 'token',
      serviceAccount: { namespace: identity.namespace, name: identity.serviceAccount },
    },
    rebootstrap: async () => (await bootstrap()).kubeconfig,
    bootstrapOutput: first.output,
    firstToken: tokenOf(first.kubeconfig),
  };
}

/** What the kubelet does with the bootstrap Secret: mounts its kubeconfig in the sidecar's pod. */
export async function mountBootstrapSecret(
  source: TestCluster,
  secret: { readonly namespace: string; readonly name: string },
  mountDir: string,
): Promise<string> {
  const read = await source.admin().makeApiClient(CoreV1Api).readNamespacedSecret(secret);
  const kubeconfig = Buffer.from(read.data?.kubeconfig ?? '', 'base64').toString('utf8');
  writeKubeletMount(mountDir, { kubeconfig });
  return kubeconfig;
}

/** The token inside a bootstrap kubeconfig, for the log hygiene check. */
export const tokenOf = (kubeconfig: string): string =>
  /token: (\S+)/.exec(kubeconfig)?.[1] ?? 'no token in the bootstrap kubeconfig';
