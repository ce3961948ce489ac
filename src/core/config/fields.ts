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
