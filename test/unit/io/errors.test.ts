// describeError: one safe line for logs and events, whatever the chain of causes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { describeError } from '../../../src/io/kube/errors.ts';

const conflict = () =>
  new ApiException(
    409,
    'PUT /apis/x',
    JSON.stringify({ kind: 'Status', reason: 'Conflict', message: 'the object has been modified' }),
    { authorization: 'Bearer secret-token' },
  );

describe('describeError', () => {
  it('gives an API error as its status, reason and message, never its headers or body', () => {
    const text = describeError(conflict());
    assert.equal(text, 'HTTP 409 Conflict: the object has been modified');
    assert.ok(!text.includes('secret-token'));
  });

  it('follows the cause chain, adding a system error code the message lacks', () => {
    const refused = Object.assign(new Error('connect failed'), { code: 'ECONNREFUSED' });
    assert.equal(
      describeError(new Error('watch could not start', { cause: refused })),
      'watch could not start: connect failed (ECONNREFUSED)',
    );
  });

  it('does not repeat a cause the wrapper already quotes', () => {
    const cause = conflict();
    const wrapped = new Error(`write failed: ${describeError(cause)}`, { cause });
    assert.equal(describeError(wrapped), 'write failed: HTTP 409 Conflict: the object has been modified');
    const twice = new Error(`retrying: ${describeError(wrapped)}`, { cause: wrapped });
    assert.equal(describeError(twice), 'retrying: write failed: HTTP 409 Conflict: the object has been modified');
  });

  it('describes thrown non-errors and stops on a cause cycle', () => {
    assert.equal(describeError('plain text'), 'plain text');
    assert.equal(describeError(42), 'a thrown number');
    const cyclic = new Error('loop');
    (cyclic as { cause?: unknown }).cause = cyclic;
    assert.equal(describeError(cyclic), 'loop');
  });
});
