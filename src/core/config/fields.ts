// Field rules that several file formats (sidecar, injector, chart values) and the bootstrap command's flags share.
import { z } from 'zod';

/** A DNS label (RFC 1123), as Kubernetes requires of namespaces, many object names and label values. */
export const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS label (a-z, 0-9, -)')
  .max(63);

/** A DNS subdomain (RFC 1123), as Kubernetes requires of most object names (Secrets, Deployments...). */
export const dnsSubdomain = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a DNS subdomain (a-z, 0-9, -, .)')
  .max(253);

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export const logLevel = z.enum(LOG_LEVELS);

export const absolutePath = z.string().regex(/^\//, 'must be an absolute path');

/** A field another kind has: absent here, and when given, refused by name with the kinds it is for. */
export const refused = (message: string) => z.never({ error: message }).optional();

/** zod's message for a discriminator nobody has, in the words of its message for an enum. */
export const expectedOneOf = (values: readonly string[]) => (issue: z.core.$ZodRawIssue) =>
  issue.code === 'invalid_union' && issue.note === 'No matching discriminator'
    ? `Invalid option: expected one of ${values.map((value) => JSON.stringify(value)).join('|')}`
    : undefined;

/** A field this kind requires: missing or empty, it says why. */
export const requiredFor = (why: string) => ({
  error: (issue: z.core.$ZodRawIssue) => (issue.input === undefined ? `is required ${why}` : undefined),
});

/** A ServiceAccount of the source cluster, by namespace and name. */
export const sourceServiceAccount = z.strictObject({
  namespace: dnsLabel.describe('Namespace of the ServiceAccount in the source.'),
  name: dnsSubdomain.describe('Name of the ServiceAccount in the source.'),
});
