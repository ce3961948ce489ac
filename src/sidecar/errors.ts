// Why a rotation attempt failed, as the metrics' `result` label and the logs name it. Whether the pending
// request is worth resuming follows from the kind: a decided, vanished or unanswered CSR is not.
export type RotationResult = 'success' | 'denied' | 'failed' | 'timeout' | 'rejected' | 'unauthorized' | 'error';

export class RotationError extends Error {
  readonly result: Exclude<RotationResult, 'success'>;
  /** True when the CSR behind this attempt can never complete, so the next attempt needs a new key. */
  readonly requestFinished: boolean;

  constructor(
    result: Exclude<RotationResult, 'success'>,
    message: string,
    options: ErrorOptions & { requestFinished?: boolean } = {},
  ) {
    super(message, options);
    this.name = 'RotationError';
    this.result = result;
    this.requestFinished = options.requestFinished ?? false;
  }
}
