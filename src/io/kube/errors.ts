// Kubernetes API errors, described safely, from either client: client-node's ApiException (the operator's
// commands) carries the response body and headers, so it is never logged as it is; only the status code, the
// API's reason and its message are kept, which is all a KubeApiError (rest.ts, the in-cluster programs' client)
// holds. ApiException is recognised by its shape: importing client-node here would load it into the in-cluster
// programs, which do not use it.

export interface KubeStatus {
  readonly code?: number;
  /** The API's machine-readable reason: NotFound, AlreadyExists, Conflict, Forbidden... */
  readonly reason?: string;
  readonly message?: string;
}

/** An API answer other than 2xx from rest.ts: the status code and the Status object's reason and message. */
export class KubeApiError extends Error {
  readonly status: KubeStatus & { readonly code: number };

  constructor(what: string, status: KubeStatus & { readonly code: number }) {
    super(`${what}: HTTP ${String(status.code)}${status.reason === undefined ? '' : ` ${status.reason}`}`);
    this.name = 'KubeApiError';
    this.status = status;
  }
}

type ApiExceptionShape = Error & { readonly code: number; readonly body: unknown; readonly headers: unknown };
const isApiException = (error: unknown): error is ApiExceptionShape =>
  error instanceof Error &&
  typeof (error as { code?: unknown }).code === 'number' &&
  'body' in error &&
  'headers' in error;

// A Status message comes from the server: cut to this many characters before it reaches an error, an event or a
// log (the apiserver's own messages are a line or two; a validation failure listing fields, a few hundred).
export const MAX_STATUS_MESSAGE_CHARS = 1_024;
const MAX_REASON_CHARS = 64;

/** Server-sent text (a Status message, a condition's message) cut to `max` characters, saying how much was cut. */
export const cut = (text: string, max = MAX_STATUS_MESSAGE_CHARS) =>
  text.length <= max ? text : `${text.slice(0, max)}... (${String(text.length - max)} more characters cut)`;

/**
 * The reason and message of an API Status object (as text or parsed), each cut to a sane length; a 401 without
 * one says Unauthorized.
 */
export function statusOf(code: number, body: unknown): KubeStatus & { readonly code: number } {
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      body = undefined;
    }
  }
  const status = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const text = (key: string, max: number) => (typeof status[key] === 'string' ? cut(status[key], max) : undefined);
  const reason = text('reason', MAX_REASON_CHARS);
  const message = text('message', MAX_STATUS_MESSAGE_CHARS) ?? (code === 401 ? 'Unauthorized' : undefined);
  return {
    code,
    ...(reason === undefined ? {} : { reason }),
    ...(message === undefined ? {} : { message }),
  };
}

export function kubeStatus(error: unknown): KubeStatus | undefined {
  if (error instanceof KubeApiError) return error.status;
  return isApiException(error) ? statusOf(error.code, error.body) : undefined;
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
