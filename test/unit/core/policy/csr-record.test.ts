// What the approver keeps of a CSR object, and derives from it for the policy and for reporting. The controller
// that decides records is tested in test/unit/approver/controller.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  csrRecord,
  isDecided,
  isUnread,
  keptAs,
  keptBytes,
  requestFacts,
  writeTarget,
} from '../../../../src/core/policy/csr-record.ts';
import type { Requester } from '../../../../src/core/policy/request-checks.ts';
import { csrObject as csr, policyFile } from '../../../support/approver-csr.ts';

const STRANGER: Requester = {
  username: 'system:bootstrap:zzzzzz',
  groups: ['system:bootstrappers', 'system:bootstrappers:kcr:other'],
};

describe('the approver keeps of a CSR', () => {
  it('the cache keeps the parsed request, not its bytes nor the whole object', () => {
    const object = csr();
    const record = csrRecord(object, { file: policyFile(), generation: 1 });
    assert.equal(JSON.stringify(record).includes(object.spec.request), false);
    const { managedFields, ...metadata } = object.metadata ?? {};
    assert.ok(managedFields !== undefined);
    assert.ok(record.pending?.read === true, 'a policy applies to the requester: the request is read');
    assert.deepEqual(record.pending.write, {
      name: object.metadata?.name,
      resourceVersion: '1',
      conditions: [],
      metadata,
    });
    const large = csr();
    large.metadata = { ...large.metadata, annotations: { note: 'x'.repeat(8192) } };
    assert.equal(
      csrRecord(large, { file: policyFile(), generation: 1 }).pending?.write.metadata,
      undefined,
      'large metadata is read again at write time',
    );
  });

  it('a CSR with an Approved, Denied or Failed condition, whatever its status, is decided and nothing more', () => {
    for (const type of ['Approved', 'Denied', 'Failed']) {
      const object = csr({ conditions: [{ type }] });
      const condition = object.status?.conditions?.[0];
      assert.ok(condition !== undefined);
      for (const status of ['True', 'False']) {
        condition.status = status;
        assert.equal(isDecided(object), true, `${type} ${status}`);
        const record = csrRecord(object, { file: policyFile(), generation: 1 });
        assert.deepEqual(record, {
          name: object.metadata?.name,
          uid: object.metadata?.uid,
          createdAt: record.createdAt,
          decided: true,
        });
        assert.equal(keptAs(record), 'decided');
      }
    }
    assert.equal(isDecided(csr({ conditions: [{ type: 'Pending' }] })), false);
  });

  it('a requester no policy could apply to: the request is never parsed, the decision is made under its generation', () => {
    const object = csr({ requester: STRANGER });
    object.spec.request = Buffer.alloc(1 << 20, 'A').toString('base64');
    const record = csrRecord(object, { file: policyFile(), generation: 7 });
    assert.ok(record.pending?.read === false);
    assert.equal(record.pending.generation, 7);
    assert.equal(record.pending.username, STRANGER.username);
    assert.deepEqual(record.pending.decision, { result: 'unprocessed', reason: 'noPolicy' });
    assert.equal(record.pending.write.metadata, undefined, 'the writer reads the metadata again');
    assert.equal(isUnread(record), true);
    assert.equal(keptAs(record), 'unread');
    assert.ok(keptBytes(record) < 400, `${String(keptBytes(record))} bytes kept`);
  });

  it("a CSR of another signer is not read: it is left to that signer's approver", () => {
    const object = csr();
    object.spec.signerName = 'example.com/other';
    const record = csrRecord(object, { file: policyFile(), generation: 1 });
    assert.ok(record.pending?.read === false);
    assert.deepEqual(record.pending.decision, { result: 'unprocessed', reason: 'otherSigner' });
  });

  it("a read CSR is neither unread nor decided; createdAt comes from a watch's string as from a list's Date", () => {
    const listed = csr();
    const watched = JSON.parse(JSON.stringify(listed)) as typeof listed;
    const [fromList, fromWatch] = [listed, watched].map((object) =>
      csrRecord(object, { file: policyFile(), generation: 1 }),
    );
    assert.ok(fromList !== undefined && fromWatch !== undefined);
    assert.equal(fromList.createdAt, Date.parse('2026-01-01T00:00:00Z') - 2_000);
    assert.equal(fromWatch.createdAt, fromList.createdAt);
    assert.equal(isUnread(fromList), false);
    assert.equal(keptAs(fromList), 'read');
    const undated = csr();
    delete undated.metadata?.creationTimestamp;
    assert.ok(Number.isNaN(csrRecord(undated, { file: policyFile(), generation: 1 }).createdAt));
  });

  it("the policy sees the spec's usages, lifetime and requester, with uid and extra only when present", () => {
    const object = csr();
    const facts = requestFacts(object);
    assert.deepEqual(
      { ...facts, request: facts.request.ok },
      {
        signerName: 'kubernetes.io/kube-apiserver-client',
        usages: ['digital signature', 'client auth'],
        expirationSeconds: 3600,
        requester: { username: object.spec.username, groups: object.spec.groups },
        request: true,
      },
    );
    object.spec.uid = 'user-uid';
    object.spec.extra = { 'authentication.kubernetes.io/credential-id': ['JTI=1'] };
    delete object.spec.expirationSeconds;
    const more = requestFacts(object);
    assert.deepEqual(more.requester.uid, 'user-uid');
    assert.deepEqual(more.requester.extra, { 'authentication.kubernetes.io/credential-id': ['JTI=1'] });
    assert.equal('expirationSeconds' in more, false);
  });

  it('a write target keeps the conditions and the resourceVersion judged; without metadata when not to be kept', () => {
    const object = csr({ conditions: [{ type: 'Pending' }] });
    const target = writeTarget(object, false);
    assert.deepEqual(target, {
      name: object.metadata?.name,
      resourceVersion: '1',
      conditions: object.status?.conditions,
    });
  });

  it('keptBytes counts characters, byte lengths, 8 per number and 16 per property or element', () => {
    assert.equal(keptBytes({ a: 'xy', b: [1, new Uint8Array(3)] }), 16 + 2 + 16 + (16 + 8) + (16 + 3));
  });
});
