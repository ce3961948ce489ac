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
  return {
    code: error.code,
    ...(reason === undefined ? {} : { reason }),
    ...(message === undefined ? {} : { message }),
  };
}

export const httpStatus = (error: unknown): number | undefined => kubeStatus(error)?.code;
export const isNotFound = (error: unknown) => httpStatus(error) === 404;
export const isConflict = (error: unknown) => httpStatus(error) === 409;

const MAX_CAUSES = 4;

/** One line, safe to log or put in an event: no bodies, no headers; follows the cause chain. */
export function describeError(error: unknown, depth = 0): string {
  const status = kubeStatus(error);
  if (status !== undefined) {
    return `HTTP ${String(status.code)}${status.reason === undefined ? '' : ` ${status.reason}`}${status.message === undefined ? '' : `: ${status.message}`}`;
  }
  if (!(error instanceof Error)) return typeof error === 'string' ? error : `a thrown ${typeof error}`;
  const code = (error as Error & { code?: unknown }).code;
  const text = typeof code === 'string' && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
  if (error.cause === undefined || error.cause === null || depth >= MAX_CAUSES) return text;
  const cause = describeError(error.cause, depth + 1);
  // Wrappers made with `${what}: ${describeError(cause)}` already say it: not twice.
  return text.includes(cause) ? text : `${text}: ${cause}`;
}
