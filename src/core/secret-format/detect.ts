// Which format a published Secret was written in, read back from what each format itself sets (its type and
// its own label keys), so `status` reads an Argo CD or Istio Secret as it reads a kubeconfig one.
import {
  MANAGED_BY_LABEL,
  reservedMetadata,
  SECRET_FORMATS,
  secretType,
  type SecretFormatSettings,
} from './formats.ts';

export interface SecretMetadataLike {
  readonly type?: string | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
  readonly annotations?: Readonly<Record<string, string>> | undefined;
}

/**
 * The first format whose type and own labels the Secret carries; `kubeconfig`, which sets none, when no other
 * matches. The cluster name (Istio's key) comes from the annotation the format writes, when there is one.
 */
export function detectSecretFormat(secret: SecretMetadataLike, targetName: string): SecretFormatSettings {
  for (const format of SECRET_FORMATS) {
    if (format === 'kubeconfig') continue;
    const reserved = reservedMetadata({ format, targetName });
    const ownLabels = Object.keys(reserved.labels).filter((key) => key !== MANAGED_BY_LABEL);
    if ((secret.type ?? 'Opaque') !== secretType(format)) continue;
    if (!ownLabels.every((key) => secret.labels?.[key] !== undefined)) continue;
    const clusterName = Object.keys(reserved.annotations)
      .map((key) => secret.annotations?.[key])
      .find((value) => value !== undefined);
    return { format, targetName, ...(clusterName === undefined ? {} : { clusterName }) };
  }
  return { format: 'kubeconfig', targetName };
}
