// pino JSON logs. Secrets are never passed to the logger; the redaction here is the backstop. It is set on
// the root logger only: pino's child loggers with their own redact option replace the parent's.
import { pino, type DestinationStream, type Logger } from 'pino';
import { describeError } from './kube/errors.ts';

export type { Logger } from 'pino';

const SECRET_KEYS = [
  'token',
  'bearerToken',
  'key',
  'keyPem',
  'privateKey',
  'kubeconfig',
  'data',
  'stringData',
  'password',
  'authorization',
  'tls.key',
];

/** Each secret key at the top level and up to two levels down. */
export const REDACTED_PATHS = SECRET_KEYS.flatMap((key) => {
  const top = key.includes('.') ? `["${key}"]` : key;
  const nested = key.includes('.') ? `["${key}"]` : `.${key}`;
  return [top, `*${nested}`, `*.*${nested}`];
});

export interface LoggerOptions {
  readonly name: string;
  readonly level?: string;
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      // Errors are described, not dumped: a client error's body or headers could hold a credential.
      serializers: {
        err: (error: unknown) => ({
          message: describeError(error),
          type: error instanceof Error ? error.name : typeof error,
        }),
      },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
