// Kubernetes API errors, described safely: an ApiException carries the response body and headers, so it is
// never logged as it is; only the status code, the API's reason and its message are kept.
import { ApiException } from '@kubernetes/client-node';

export interface KubeStatus {
  readonly code?: number;
  /** The API's machine-readable reason: NotFound, AlreadyExists, Conflict, Forbidden... */
  readonly reason?: string;
  readonly message?: string;
}

export function kubeStatus(error: unknown): KubeStatus | undefined {
  if (!(error instanceof ApiException)) return undefined;
  let body: unknown = error.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      body = undefined;
    }
  }
  const status = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const text = (key: string) => (typeof status[key] === 'string' ? status[key] : undefined);
  const reason = text('reason');
  const message = text('message') ?? (error.code === 401 ? 'Unauthorized' : undefined);
  return { code: error.code, ...(reason === undefined ? {} : { reason }), ...(message === undefined ? {} : { message }) };
}

export const httpStatus = (error: unknown): number | undefined => kubeStatus(error)?.code;
export const isNotFound = (error: unknown) => httpStatus(error) === 404;
export const isConflict = (error: unknown) => httpStatus(error) === 409;

/** One line, safe to log or put in an event: no bodies, no headers; follows the cause chain. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const status = kubeStatus(current);
    if (status !== undefined) {
      parts.push(`HTTP ${String(status.code)}${status.reason === undefined ? '' : ` ${status.reason}`}${status.message === undefined ? '' : `: ${status.message}`}`);
      break;
    }
    if (current instanceof Error) {
      const code = (current as Error & { code?: unknown }).code;
      const text = typeof code === 'string' && !current.message.includes(code) ? `${current.message} (${code})` : current.message;
      if (parts.at(-1) !== text) parts.push(text);
      current = current.cause;
    } else {
      parts.push(typeof current === 'string' ? current : `a thrown ${typeof current}`);
      break;
    }
  }
  return parts.join(': ');
}
