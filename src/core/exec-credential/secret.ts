// What a Secret sink published, as the credential plugin reads it: the credential in the Secret's format
// (detected from its type and labels) and the next rotation the sidecar annotated it with. A module of its own:
// a directory source never loads the Secret formats (nor yaml, which they parse kubeconfigs with).
import type { Credential } from '../credential/credential.ts';
import { detectSecretFormat } from '../secret-format/detect.ts';
import { readSecretCredential } from '../secret-format/formats.ts';
import { parseTime } from './published.ts';
import {
  CredentialUnavailableError,
  describeSource,
  type CredentialSource,
  type PublishedCredential,
} from './render.ts';

/** The Secret sink's annotations the plugin reads (src/sidecar/sinks/secret.ts writes them). */
const NEXT_ROTATION_ANNOTATION = 'kubeconfig-rotator.io/next-rotation';
const TARGET_ANNOTATION = 'kubeconfig-rotator.io/target';

export interface SecretObject {
  readonly type?: string;
  readonly metadata?: {
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  /** base64, as the API serves it */
  readonly data?: Readonly<Record<string, string>>;
}

/** A Secret sink's credential in any format (detected from its type and labels), with its next rotation. */
export function fromSecret(source: CredentialSource, secret: SecretObject): PublishedCredential {
  const annotations = secret.metadata?.annotations ?? {};
  const data = Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]),
  );
  const settings = detectSecretFormat(
    { type: secret.type, labels: secret.metadata?.labels, annotations },
    annotations[TARGET_ANNOTATION] ?? source.target ?? '',
  );
  let found: { certPem?: string; keyPem?: string; token?: string };
  try {
    found = readSecretCredential(data, settings);
  } catch {
    found = {};
  }
  const nextRotation = parseTime(annotations[NEXT_ROTATION_ANNOTATION]);
  const at = nextRotation === undefined ? {} : { nextRotation };
  let credential: Credential | undefined;
  if (found.token !== undefined) credential = { token: found.token };
  else if (found.certPem !== undefined && found.keyPem !== undefined)
    credential = { certPem: found.certPem, keyPem: found.keyPem };
  if (credential === undefined)
    throw new CredentialUnavailableError(
      `no credential published yet in ${describeSource(source)}: it holds no client certificate with its key and no ` +
        `token (format ${settings.format})`,
    );
  return { credential, ...at };
}
