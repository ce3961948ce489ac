// What a Secret sink writes for each consumer: exactly the keys, type, labels and annotations that tool reads,
// and nothing it would misread. Each format's comment names the source file its layout was read from.
import {
  credentialFiles,
  embeddedKubeconfig,
  FILE_NAMES,
  referencedCredential,
  type CredentialBundle,
} from '../kubeconfig/bundle.ts';
import { parseKubeconfig } from '../kubeconfig/parse.ts';
import { renderKubeconfig, type PemSource } from '../kubeconfig/render.ts';

export const SECRET_FORMATS = ['kubeconfig', 'argocd', 'istio', 'cluster-api', 'flux', 'linkerd'] as const;
export type SecretFormat = (typeof SECRET_FORMATS)[number];

/** Formats whose kubeconfig may name the credential's files by path (their consumers accept file paths). */
export const REFERENCE_FORMATS: readonly SecretFormat[] = ['kubeconfig', 'linkerd'];
/** Formats whose kubeconfig key the user may choose. */
export const KEYED_FORMATS: readonly SecretFormat[] = ['kubeconfig', 'flux', 'linkerd'];

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'kubeconfig-rotator';

export interface SecretFormatSettings {
  readonly format: SecretFormat;
  /** The target's name: the default of every tool-facing name. */
  readonly targetName: string;
  /** The kubeconfig's key (formats in KEYED_FORMATS); default per format. */
  readonly key?: string | undefined;
  /** Also write tls.crt and tls.key (a token: token), and ca.crt (kubeconfig format only; default true there). */
  readonly tlsKeys?: boolean | undefined;
  /** Argo CD's cluster name, Istio's cluster ID, Cluster API's cluster name; default the target's name. */
  readonly clusterName?: string | undefined;
  /** Reference mode: the directory, as the consumer's pod mounts it, holding tls.crt and tls.key (or token). */
  readonly referenceDirectory?: string | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
  readonly annotations?: Readonly<Record<string, string>> | undefined;
}

/** The parts of a Secret a format decides (metadata beyond these is the sink's). */
export interface SecretContent {
  readonly type: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** Plain text values (the sink base64-encodes them). */
  readonly data: Readonly<Record<string, string>>;
}

/** What a Secret holds, read back through its format; fields it cannot hold (reference mode) are absent. */
export interface SecretCredential {
  readonly certPem?: string;
  readonly keyPem?: string;
  readonly token?: string;
  readonly caPem?: string;
  readonly server?: string;
  readonly tlsServerName?: string;
}

interface FormatLayout {
  readonly type: string;
  readonly defaultKey?: string;
  /** Labels and annotations the tool selects or reads by (before the user's). */
  labels(clusterName: string): Record<string, string>;
  annotations(clusterName: string): Record<string, string>;
}

const OPAQUE = 'Opaque';
const none = () => ({});

const LAYOUTS: Readonly<Record<SecretFormat, FormatLayout>> = {
  // Admiralty and plain client-go: a self-contained kubeconfig under a key of the user's choice.
  kubeconfig: { type: OPAQUE, defaultKey: 'config', labels: none, annotations: none },
  // argoproj/argo-cd util/db/cluster.go (SecretToCluster): keys name, server, config (ClusterConfig JSON).
  argocd: {
    type: OPAQUE,
    labels: () => ({ 'argocd.argoproj.io/secret-type': 'cluster' }),
    annotations: none,
  },
  // istio/istio pkg/kube/multicluster/secretcontroller.go: every data key is a cluster ID holding a kubeconfig.
  istio: {
    type: OPAQUE,
    labels: () => ({ 'istio/multiCluster': 'true' }),
    annotations: (clusterName) => ({ 'networking.istio.io/cluster': clusterName }),
  },
  // kubernetes-sigs/cluster-api util/kubeconfig/kubeconfig.go (GenerateSecretWithOwner): <cluster>-kubeconfig, key value.
  'cluster-api': {
    type: 'cluster.x-k8s.io/secret',
    labels: (clusterName) => ({ 'cluster.x-k8s.io/cluster-name': clusterName }),
    annotations: none,
  },
  // fluxcd/pkg runtime/client/impersonator.go (getRESTConfigFromSecret): key value; the watch label reconciles at once.
  flux: {
    type: OPAQUE,
    defaultKey: 'value',
    labels: () => ({ 'reconcile.fluxcd.io/watch': 'Enabled' }),
    annotations: none,
  },
  // linkerd/linkerd2 multicluster/cmd/link.go: type mirror.linkerd.io/remote-kubeconfig, key kubeconfig.
  linkerd: { type: 'mirror.linkerd.io/remote-kubeconfig', defaultKey: 'kubeconfig', labels: none, annotations: none },
};

export function secretType(format: SecretFormat): string {
  return LAYOUTS[format].type;
}

/** The labels and annotations a format sets itself; the user's may not override them. */
export function reservedMetadata(settings: SecretFormatSettings): {
  labels: Record<string, string>;
  annotations: Record<string, string>;
} {
  const layout = LAYOUTS[settings.format];
  const clusterName = clusterNameOf(settings);
  return {
    labels: { ...layout.labels(clusterName), [MANAGED_BY_LABEL]: MANAGED_BY },
    annotations: layout.annotations(clusterName),
  };
}

export function clusterNameOf(settings: SecretFormatSettings): string {
  return settings.clusterName ?? settings.targetName;
}

/** The key holding the kubeconfig, for formats that have one. */
export function kubeconfigKey(settings: SecretFormatSettings): string | undefined {
  if (settings.format === 'argocd') return undefined;
  if (settings.format === 'istio') return clusterNameOf(settings);
  if (settings.format === 'cluster-api') return 'value';
  return settings.key ?? LAYOUTS[settings.format].defaultKey;
}

function referenceKubeconfig(bundle: CredentialBundle, directory: string): string {
  // The CA stays inline: client-go reads a CA file only once, and a changed CA must change the Secret.
  return renderKubeconfig({
    name: bundle.name,
    server: bundle.server,
    certificateAuthority: { pem: bundle.caPem },
    tlsServerName: bundle.tlsServerName,
    credential: referencedCredential(bundle.credential, directory),
  });
}

/**
 * Argo CD's ClusterConfig: bearerToken, or []byte TLS fields (so JSON carries base64 of each PEM);
 * tlsClientConfig.serverName is client-go's TLSClientConfig.ServerName, the kubeconfig's tls-server-name.
 */
function argoClusterConfig(bundle: CredentialBundle): string {
  const base64 = (pem: string) => Buffer.from(pem, 'utf8').toString('base64');
  const { credential } = bundle;
  const client =
    'token' in credential ? {} : { certData: base64(credential.certPem), keyData: base64(credential.keyPem) };
  return JSON.stringify({
    ...('token' in credential ? { bearerToken: credential.token } : {}),
    tlsClientConfig: {
      insecure: false,
      ...(bundle.tlsServerName === undefined ? {} : { serverName: bundle.tlsServerName }),
      caData: base64(bundle.caPem),
      ...client,
    },
  });
}

export function renderSecret(bundle: CredentialBundle, settings: SecretFormatSettings): SecretContent {
  const reserved = reservedMetadata(settings);
  const labels = { ...settings.labels, ...reserved.labels };
  const annotations = { ...settings.annotations, ...reserved.annotations };
  const type = secretType(settings.format);
  if (settings.format === 'argocd') {
    const data = { name: clusterNameOf(settings), server: bundle.server, config: argoClusterConfig(bundle) };
    return { type, labels, annotations, data };
  }
  const key = kubeconfigKey(settings) ?? FILE_NAMES.kubeconfig;
  const kubeconfig =
    settings.referenceDirectory === undefined
      ? embeddedKubeconfig(bundle)
      : referenceKubeconfig(bundle, settings.referenceDirectory);
  const withTlsKeys =
    settings.format === 'kubeconfig' && settings.referenceDirectory === undefined && settings.tlsKeys !== false;
  const data: Record<string, string> = { [key]: kubeconfig };
  if (withTlsKeys) {
    for (const [name, file] of Object.entries(credentialFiles(bundle.credential))) data[name] = file.content;
    data[FILE_NAMES.ca] = bundle.caPem;
  }
  return { type, labels, annotations, data };
}

const pemOf = (source: PemSource | undefined) => (source !== undefined && 'pem' in source ? source.pem : undefined);

/** The fields that have a value (the credential types are exact: absent, never undefined). */
function present(fields: Record<keyof SecretCredential, string | undefined>): SecretCredential {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}

function fromKubeconfig(text: string | undefined): SecretCredential {
  if (text === undefined) return {};
  try {
    const parsed = parseKubeconfig(text);
    return present({
      server: parsed.server,
      tlsServerName: parsed.tlsServerName,
      certPem: pemOf(parsed.clientCertificate),
      keyPem: pemOf(parsed.clientKey),
      token: parsed.token !== undefined && 'value' in parsed.token ? parsed.token.value : undefined,
      caPem: pemOf(parsed.certificateAuthority),
    });
  } catch {
    return {};
  }
}

function fromArgoConfig(server: string | undefined, config: string | undefined): SecretCredential {
  let parsed: unknown;
  try {
    parsed = config === undefined ? undefined : JSON.parse(config);
  } catch {
    parsed = undefined;
  }
  const cluster = parsed as { tlsClientConfig?: Record<string, unknown>; bearerToken?: unknown } | undefined;
  const tls = cluster?.tlsClientConfig;
  const decoded = (field: string) => {
    const value = tls?.[field];
    return typeof value === 'string' ? Buffer.from(value, 'base64').toString('utf8') : undefined;
  };
  const token = typeof cluster?.bearerToken === 'string' ? cluster.bearerToken : undefined;
  return present({
    server,
    tlsServerName: typeof tls?.serverName === 'string' ? tls.serverName : undefined,
    certPem: decoded('certData'),
    keyPem: decoded('keyData'),
    token,
    caPem: decoded('caData'),
  });
}

/** The credential a Secret's data holds, read as its format wrote it (the tls.* and token keys win where present). */
export function readSecretCredential(
  data: Readonly<Record<string, string>>,
  settings: SecretFormatSettings,
): SecretCredential {
  const key = kubeconfigKey(settings);
  const fromFormat = key === undefined ? fromArgoConfig(data.server, data.config) : fromKubeconfig(data[key]);
  return present({
    server: fromFormat.server,
    tlsServerName: fromFormat.tlsServerName,
    certPem: data[FILE_NAMES.cert] ?? fromFormat.certPem,
    keyPem: data[FILE_NAMES.key] ?? fromFormat.keyPem,
    token: data[FILE_NAMES.token] ?? fromFormat.token,
    caPem: data[FILE_NAMES.ca] ?? fromFormat.caPem,
  });
}

/** Whether a Secret's type, data and metadata are what the format writes (its extra keys would be misread). */
export function matchesContent(
  actual: {
    type?: string | undefined;
    labels?: Record<string, string> | undefined;
    annotations?: Record<string, string> | undefined;
    data: Readonly<Record<string, string>>;
  },
  expected: SecretContent,
): boolean {
  const sameEntries = (have: Readonly<Record<string, string>> | undefined, want: Readonly<Record<string, string>>) =>
    Object.entries(want).every(([key, value]) => have?.[key] === value);
  return (
    (actual.type ?? OPAQUE) === expected.type &&
    Object.keys(actual.data).length === Object.keys(expected.data).length &&
    sameEntries(actual.data, expected.data) &&
    sameEntries(actual.labels, expected.labels) &&
    sameEntries(actual.annotations, expected.annotations)
  );
}
