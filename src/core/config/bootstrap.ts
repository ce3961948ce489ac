// A certificate target's bootstrap in the sidecar's configuration: what authenticates its first CSR.
import { z } from 'zod';
import { expectedOneOf, refused, requiredFor, sourceServiceAccount } from './fields.ts';

/**
 * How a certificate target authenticates its first CSR (and any after its certificate expired): with the
 * bootstrap kubeconfig's credential (a bootstrap token, which expires), or with the pod's own ServiceAccount
 * token of the source cluster, which the target trusts by the source's issuer (docs/federation.md).
 */
export const BOOTSTRAP_WITH = ['token', 'federated'] as const;

/** A short-lived token is enough: it authenticates one CSR and its wait. */
export const DEFAULT_BOOTSTRAP_TOKEN_SECONDS = 600;

const FEDERATED_BOOTSTRAP_ONLY = 'is for with: federated only';

const tokenBootstrap = z.strictObject({
  with: z
    .literal('token')
    .default('token')
    .describe(
      "token: the bootstrap kubeconfig's own credential (`kubeconfig-rotator bootstrap`'s bootstrap token). federated: a token of the source's ServiceAccount for `audiences`, from the source's TokenRequest API, which the target trusts by the source's issuer (`kubeconfig-rotator bootstrap --credential certificate --bootstrap-with federated`); the bootstrap kubeconfig then needs no credential.",
    ),
  audiences: refused(FEDERATED_BOOTSTRAP_ONLY),
  serviceAccount: refused(FEDERATED_BOOTSTRAP_ONLY),
  expirationSeconds: refused(FEDERATED_BOOTSTRAP_ONLY),
});

const federatedBootstrap = z.strictObject({
  with: z.literal('federated'),
  serviceAccount: sourceServiceAccount
    .optional()
    .describe(
      "with: federated: the source ServiceAccount whose token is used; default: the sidecar pod's own (POD_NAMESPACE, POD_SERVICE_ACCOUNT).",
    ),
  expirationSeconds: z
    .number()
    .int()
    .min(600)
    .optional()
    .describe(
      `with: federated: the bootstrap token's lifetime (the TokenRequest API's minimum is 600); default ${String(DEFAULT_BOOTSTRAP_TOKEN_SECONDS)}.`,
    ),
  audiences: z
    .array(
      z.string().min(1),
      requiredFor("with federated bootstrap: the audience the target's jwt authenticator expects"),
    )
    .min(1, "is required with federated bootstrap: the audience the target's jwt authenticator expects")
    .describe("with: federated (required): the audience the target's jwt authenticator expects."),
});

export const bootstrapSchema = z
  .discriminatedUnion('with', [tokenBootstrap, federatedBootstrap], { error: expectedOneOf(BOOTSTRAP_WITH) })
  .describe(
    'Certificate targets: what authenticates the first CSR and any after the certificate expired (renewals use the certificate).',
  );

export type BootstrapConfig = z.output<typeof bootstrapSchema>;
