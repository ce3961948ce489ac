// The approver against the real target control plane, as a spawned process with only its own RBAC: first
// certificates and renewals approved and issued, a hostile corpus denied with the failing checks named,
// requesters no policy names left alone, other signers ignored, SubjectAccessReviews, denyUnmatched,
// Events, metrics, probes, and SIGTERM.
import assert from 'node:assert/strict';
import { execFile as execFileCallback } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  CertificatesV1Api,
  CoordinationV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';
import { parseCertificationRequest } from '../../src/core/pki/csr-parse.ts';
import { buildCertificationRequest } from '../../src/core/pki/csr.ts';
import { clientUsagesFor, generateKeyPair, type KeyPair } from '../../src/core/pki/keys.ts';
import { evaluate } from '../../src/core/policy/evaluate.ts';
import { parsePolicyFile } from '../../src/core/policy/schema.ts';
import { kubeConfigFor } from '../support/kubeconfig.ts';
import {
  approverAccount,
  startLeadingApprover,
  ApproverProcess,
  createCsr,
  decisionOf,
  deleteRunCsrs,
  RUN_LABEL,
  waitForDecision,
  type ApproverAccount,
  type CsrInput,
} from '../support/approver-process.ts';
import { ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { writeKubeletMount } from '../../scripts/testbed/mount.ts';
import { writeTarget } from '../../src/core/policy/csr-record.ts';
import { kubeDecisionWriter } from '../../src/approver/kube.ts';
import { clientConfigFor } from '../../src/core/kubeconfig/client-config.ts';
import { describeError } from '../../src/io/kube/errors.ts';
import { createKubeClient } from '../../src/io/kube/rest.ts';
import { testCluster } from '../support/clusters.ts';
import {
  ATTRIBUTE,
  EXTENSION,
  anyExtensionValue,
  keyPair,
  requestPem,
  subject,
  type RequestShape,
} from '../support/hostile-csr.ts';
import {
  createBootstrapToken,
  eventually,
  statusCode,
  uniqueName,
  waitForCertificate,
  type TestBootstrapToken,
} from '../support/kube.ts';
import { assertNoSecretsInLogs } from '../support/log-hygiene.ts';

const target = testCluster('target');
const admin = target.admin();
const endpoint = target.endpoint();
const SIGNER = 'kubernetes.io/kube-apiserver-client';
const run = uniqueName('kcr-it');
const TEAM = `${run}-team`;
const dir = mkdtempSync(join(tmpdir(), 'kcr-approver-it-'));
const certificates = admin.makeApiClient(CertificatesV1Api);
const execFile = promisify(execFileCallback);

const create = (as: KubeConfig, input: CsrInput) => createCsr(as, run, input);

function ourPem(commonName: string, keys: KeyPair, organizations: readonly string[] = [TEAM]): string {
  return buildCertificationRequest({ commonName, organizations }, keys);
}

function asCertificate(certificatePem: string, keys: KeyPair): KubeConfig {
  return kubeConfigFor(endpoint, {
    certPem: certificatePem,
    keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  });
}

async function eventsFor(csr: string) {
  const list = await admin
    .makeApiClient(CoreV1Api)
    .listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${csr}` });
  return list.items.map((event) => ({
    type: event.type,
    reason: event.reason,
    message: event.message,
    component: event.reportingComponent,
  }));
}

const policyYaml = (bootstrapGroup: string) => `
policies:
  - name: cluster-a
    bootstrap: { groups: ['${bootstrapGroup}'] }
    identity: { commonNames: ['${run}-*'], organizations: ['${TEAM}'] }
    maxExpirationSeconds: 3600
`;

describe('the approver, as a process with only its own RBAC, against the target control plane', () => {
  let account: ApproverAccount;
  let approver: ApproverProcess;
  let approverPolicy: string;
  let bootstrap: TestBootstrapToken;
  let stranger: TestBootstrapToken;
  let asBootstrap: KubeConfig;
  /** The identity issued by the first test, its key and its credential. */
  let issued: { commonName: string; keys: KeyPair; kubeConfig: KubeConfig } | undefined;

  before(async () => {
    [bootstrap, stranger] = await Promise.all([createBootstrapToken(admin), createBootstrapToken(admin)]);
    asBootstrap = kubeConfigFor(endpoint, { token: bootstrap.value });
    ({
      account,
      approver,
      policy: approverPolicy,
    } = await startLeadingApprover(target, SIGNER, dir, policyYaml(bootstrap.group)));
  });

  after(async () => {
    await approver.stop();
    await account.delete();
    // Made by the renewal test, absent when a filtered run skipped it.
    await admin
      .makeApiClient(RbacAuthorizationV1Api)
      .deleteClusterRoleBinding({ name: `${run}-renewal` })
      .catch((error: unknown) => {
        if (statusCode(error) !== 404) throw error;
      });
    await deleteRunCsrs(admin, run);
    rmSync(dir, { recursive: true, force: true });
  });

  it('approves a bootstrap CSR within policy; it is issued, and the identity can do what its RBAC allows and nothing more', async () => {
    const keys = generateKeyPair('ecdsa-p256');
    const commonName = `${run}-agent`;
    const name = await eventually(() =>
      create(asBootstrap, { pem: ourPem(commonName, keys), usages: clientUsagesFor('ecdsa-p256') }),
    );
    const certificate = await waitForCertificate(admin, name);
    assert.deepEqual(decisionOf(certificate), {
      type: 'Approved',
      reason: 'PolicyApproved',
      message: `policy cluster-a allows a first certificate for "${commonName}" (groups "${TEAM}") requested by "system:bootstrap:${bootstrap.token.id}"`,
    });
    const kubeConfig = asCertificate(certificate.certificatePem, keys);
    issued = { commonName, keys, kubeConfig };
    const review = await kubeConfig.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    assert.equal(review.status?.userInfo?.username, commonName);
    assert.ok(review.status.userInfo.groups?.includes(TEAM));

    // RBAC for the identity: read ConfigMaps in one namespace, and request CSRs (to renew).
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    const namespace = account.namespace;
    await admin
      .makeApiClient(CoreV1Api)
      .createNamespacedConfigMap({ namespace, body: { metadata: { name: 'agent-settings' }, data: { mode: 'test' } } });
    await rbac.createNamespacedRole({
      namespace,
      body: { metadata: { name: 'agent' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'agent' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'agent' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: TEAM }],
      },
    });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `${run}-renewal` },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: `kcr-test-csr-requester-${bootstrap.token.id}`,
        },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: commonName }],
      },
    });
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const configMap = await eventually(() => core.readNamespacedConfigMap({ name: 'agent-settings', namespace }));
    assert.equal(configMap.data?.mode, 'test');
    await assert.rejects(core.listNamespacedSecret({ namespace }), (error) => statusCode(error) === 403);
    await assert.rejects(
      core.readNamespacedConfigMap({ name: 'kube-root-ca.crt', namespace: 'kube-system' }),
      (error) => statusCode(error) === 403,
    );
  });

  it('approves a renewal by the same identity, authenticated with its current certificate, and it is issued', async () => {
    assert.ok(issued !== undefined, 'needs the identity issued by the previous test');
    const keys = generateKeyPair('rsa-2048');
    const as = issued.kubeConfig;
    const { commonName } = issued;
    const name = await eventually(() =>
      create(as, { pem: ourPem(commonName, keys), usages: clientUsagesFor('rsa-2048') }),
    );
    const certificate = await waitForCertificate(admin, name);
    assert.match(decisionOf(certificate)?.message ?? '', /^policy cluster-a allows a renewal for /);
    const review = await asCertificate(certificate.certificatePem, keys)
      .makeApiClient(AuthenticationV1Api)
      .createSelfSubjectReview({ body: {} });
    assert.equal(review.status?.userInfo?.username, issued.commonName);
  });

  it('denies a renewal made by an impersonated user of that name and group: only a client certificate proves one', async () => {
    assert.ok(issued !== undefined, 'needs the identity issued by the first test');
    const { commonName } = issued;
    const name = uniqueName(run);
    const body = JSON.stringify({
      apiVersion: 'certificates.k8s.io/v1',
      kind: 'CertificateSigningRequest',
      metadata: { name, labels: { [RUN_LABEL]: run } },
      spec: {
        request: Buffer.from(ourPem(commonName, generateKeyPair('ecdsa-p256'))).toString('base64'),
        signerName: SIGNER,
        usages: ['digital signature', 'client auth'],
        expirationSeconds: 3600,
      },
    });
    // The admin acting as the identity (kubectl --as/--as-group): the apiserver records the impersonated user and
    // group, but no credential-id, as for any token or older apiserver.
    const kubectl = execFile(join(await ensureControlPlane(), 'kubectl'), [
      '--kubeconfig',
      target.state.kubeconfig,
      '--as',
      commonName,
      '--as-group',
      TEAM,
      'create',
      '-f',
      '-',
    ]);
    kubectl.child.stdin?.end(body);
    await kubectl;
    const csr = await certificates.readCertificateSigningRequest({ name });
    assert.deepEqual(
      [csr.spec.username, csr.spec.groups?.includes(TEAM), csr.spec.extra],
      [commonName, true, undefined],
    );
    const denied = await waitForDecision(admin, name);
    assert.equal(denied.type, 'Denied');
    assert.match(
      denied.message,
      /cluster-a: renewal\.credential: the apiserver recorded no authentication\.kubernetes\.io\/credential-id/,
    );
  });

  describe('a hostile corpus: each request is denied, and the reason names every failing check', () => {
    const agent = (suffix: string) => `${run}-${suffix}`;
    type Case = {
      readonly name: string;
      readonly shape?: RequestShape;
      readonly input?: Partial<CsrInput>;
      readonly renewal?: boolean;
      readonly checks: readonly string[];
    };
    const shaped = (
      commonName: string,
      organizations: readonly string[] = [TEAM],
      extra: Omit<RequestShape, 'subject'> = {},
    ): RequestShape => ({ subject: subject(commonName, organizations), ...extra });
    const createdCases: Case[] = [
      { name: 'a CN of another source cluster', shape: shaped('cluster-b-agent'), checks: ['identity.commonName'] },
      {
        name: 'an O the policy does not allow',
        shape: shaped(agent('x'), [TEAM, 'cluster-admins']),
        checks: ['identity.organizations'],
      },
      {
        name: 'the system:nodes group',
        shape: shaped(agent('x'), ['system:nodes']),
        checks: ['identity.system', 'identity.organizations'],
      },
      {
        name: 'a system: user',
        shape: shaped('system:kube-scheduler', []),
        checks: ['identity.system', 'identity.commonName'],
      },
      {
        name: 'a service account user',
        shape: shaped('system:serviceaccount:kube-system:default', []),
        checks: ['identity.system', 'identity.commonName'],
      },
      {
        name: 'a DNS subjectAltName',
        shape: shaped(agent('x'), [TEAM], { subjectAltNames: [{ dns: 'kubernetes.default.svc' }] }),
        checks: ['request.subjectAltNames'],
      },
      {
        name: 'an IP subjectAltName',
        shape: shaped(agent('x'), [TEAM], { subjectAltNames: [{ ip: [127, 0, 0, 1] }] }),
        checks: ['request.subjectAltNames'],
      },
      {
        name: 'an email subjectAltName',
        shape: shaped(agent('x'), [TEAM], { subjectAltNames: [{ email: 'admin@example.com' }] }),
        checks: ['request.subjectAltNames'],
      },
      {
        name: 'a URI subjectAltName',
        shape: shaped(agent('x'), [TEAM], {
          subjectAltNames: [{ uri: 'spiffe://cluster.local/ns/kube-system/sa/admin' }],
        }),
        checks: ['request.subjectAltNames'],
      },
      {
        name: 'the server auth usage',
        input: { usages: ['digital signature', 'server auth', 'client auth'] },
        checks: ['spec.usages'],
      },
      {
        name: 'no client auth usage',
        input: { usages: ['digital signature', 'key encipherment'] },
        checks: ['spec.usages'],
      },
      { name: 'the code signing usage', input: { usages: ['client auth', 'code signing'] }, checks: ['spec.usages'] },
      {
        name: 'a lifetime above the policy maximum',
        input: { expirationSeconds: 7200 },
        checks: ['spec.expirationSeconds'],
      },
      { name: 'no lifetime at all', input: { expirationSeconds: null }, checks: ['spec.expirationSeconds'] },
      {
        name: 'an RSA-1024 key',
        shape: shaped(agent('x'), [TEAM], { keys: keyPair('rsa1024') }),
        checks: ['request.key'],
      },
      { name: 'a P-521 key', shape: shaped(agent('x'), [TEAM], { keys: keyPair('p521') }), checks: ['request.key'] },
      {
        name: 'an Ed25519 key',
        shape: shaped(agent('x'), [TEAM], { keys: keyPair('ed25519') }),
        checks: ['request.key'],
      },
      {
        name: 'a SHA-1 signature',
        shape: shaped(agent('x'), [TEAM], { digest: 'sha1' }),
        checks: ['request.signature'],
      },
      {
        name: 'a second PEM block',
        input: { pem: requestPem(shaped(agent('x'))) + requestPem(shaped(agent('y'))) },
        checks: ['request.pem'],
      },
      {
        name: 'garbage after the PEM block',
        input: { pem: `${requestPem(shaped(agent('x')))}garbage\n` },
        checks: ['request.pem'],
      },
      {
        name: 'an oversized request',
        shape: shaped(
          agent('x'),
          Array.from({ length: 1000 }, (_, i) => `${TEAM}-${String(i)}`),
        ),
        checks: ['request.size'],
      },
      {
        name: 'a request that is not version 1',
        shape: { ...shaped(agent('x')), version: 1 },
        checks: ['request.der'],
      },
      {
        name: 'an OU in the subject',
        shape: { subject: [...subject(agent('x'), [TEAM]), [{ oid: ATTRIBUTE.organizationalUnit, value: 'admins' }]] },
        checks: ['request.subject'],
      },
      {
        name: 'two common names',
        shape: { subject: [...subject(agent('x'), [TEAM]), [{ oid: ATTRIBUTE.commonName, value: agent('y') }]] },
        checks: ['request.subject'],
      },
      {
        name: 'no common name',
        shape: { subject: [[{ oid: ATTRIBUTE.organizationName, value: TEAM }]] },
        checks: ['request.subject'],
      },
      {
        name: 'an O hidden in a multi-valued RDN',
        shape: {
          subject: [
            [
              { oid: ATTRIBUTE.commonName, value: agent('x') },
              { oid: ATTRIBUTE.organizationName, value: TEAM },
            ],
          ],
        },
        checks: ['request.subject'],
      },
      {
        name: 'a control character in the CN',
        shape: shaped(`${agent('x')}\nsystem:admin`),
        checks: ['request.subject'],
      },
      {
        name: 'a challengePassword attribute',
        shape: shaped(agent('x'), [TEAM], { attributes: [{ oid: ATTRIBUTE.challengePassword, value: 'hunter2' }] }),
        checks: ['request.attributes'],
      },
      {
        name: 'a basicConstraints extension',
        shape: shaped(agent('x'), [TEAM], {
          extensions: [{ oid: EXTENSION.basicConstraints, critical: true, value: anyExtensionValue() }],
        }),
        checks: ['request.extensions'],
      },
      {
        name: 'a renewal for another CN than the requester',
        renewal: true,
        shape: shaped(agent('someone-else')),
        checks: ['renewal.commonName'],
      },
      {
        name: 'a renewal adding a group the requester is not in',
        renewal: true,
        shape: shaped(agent('agent'), [TEAM, `${TEAM}-admins`]),
        checks: ['identity.organizations', 'renewal.organizations'],
      },
    ];
    // Shapes the apiserver itself refuses at create; the evaluator denies them too, as checked directly below.
    const refusedCases: (Case & { readonly status: number; readonly apiserver: RegExp })[] = [
      {
        name: 'O=system:masters',
        shape: shaped(agent('x'), ['system:masters']),
        status: 403,
        apiserver: /system:masters group is not allowed/,
        checks: ['identity.system', 'identity.organizations'],
      },
      {
        name: 'a signature by another key',
        shape: shaped(agent('x'), [TEAM], { signingKey: keyPair('p256').privateKey }),
        status: 422,
        apiserver: /spec\.request/,
        checks: ['request.signature'],
      },
      {
        name: 'a secp256k1 key',
        shape: shaped(agent('x'), [TEAM], { keys: keyPair('secp256k1') }),
        status: 422,
        apiserver: /spec\.request/,
        checks: ['request.key'],
      },
      {
        name: 'another PEM type',
        input: { pem: requestPem(shaped(agent('x'))).replaceAll('CERTIFICATE REQUEST', 'CERTIFICATE') },
        status: 422,
        apiserver: /spec\.request/,
        checks: ['request.pem'],
      },
      {
        name: 'a usage listed twice',
        input: { usages: ['client auth', 'client auth'] },
        status: 422,
        apiserver: /Duplicate value/,
        checks: ['spec.usages'],
      },
    ];
    const inputOf = (entry: Case): CsrInput => ({
      pem: entry.shape === undefined ? requestPem(shaped(agent('x'))) : requestPem(entry.shape),
      ...entry.input,
    });

    it(`has at least 30 cases (${String(createdCases.length + refusedCases.length)})`, () => {
      assert.ok(createdCases.length + refusedCases.length >= 30);
    });

    it('every request the apiserver accepts is denied with its failing checks named', async () => {
      assert.ok(issued !== undefined, 'renewal cases need the identity issued by the first test');
      const renewing = issued.kubeConfig;
      const names = await Promise.all(
        createdCases.map((entry) => create(entry.renewal === true ? renewing : asBootstrap, inputOf(entry))),
      );
      const decisions = await Promise.all(names.map((name) => waitForDecision(admin, name)));
      createdCases.forEach((entry, index) => {
        const decision = decisions[index];
        assert.equal(decision?.type, 'Denied', `${entry.name}: ${JSON.stringify(decision)}`);
        assert.equal(decision.reason, 'PolicyDenied');
        const named = [
          ...decision.message.matchAll(
            /(?:^denied by kubeconfig-rotator approver: |; )(?:cluster-a: )?([a-zA-Z]+\.[a-zA-Z]+|subjectAccessReview|policy\.unmatched): /g,
          ),
        ].map((match) => match[1]);
        assert.deepEqual([...new Set(named)], entry.checks, `${entry.name}: ${decision.message}`);
      });
      // The API can show a decision before the approver's log line for it has reached us.
      for (const name of names)
        await approver.waitForLog((line) => line.msg === 'decision written' && line.csr === name);
      for (const name of names) assert.equal(approver.decisionsWritten(name), 1, `${name} decided once`);
    });

    it('shapes the apiserver refuses at create are refused there, and the evaluator denies them too', async () => {
      const parsed = parsePolicyFile(policyYaml(bootstrap.group));
      assert.ok(parsed.ok);
      for (const entry of refusedCases) {
        const input = inputOf(entry);
        await assert.rejects(
          create(asBootstrap, input),
          (error: Error) => statusCode(error) === entry.status && entry.apiserver.test(error.message),
          entry.name,
        );
        const decision = evaluate(
          {
            signerName: SIGNER,
            usages: input.usages ?? ['digital signature', 'client auth'],
            expirationSeconds: 3600,
            requester: {
              username: `system:bootstrap:${bootstrap.token.id}`,
              groups: ['system:bootstrappers', bootstrap.group],
            },
            request: parseCertificationRequest(input.pem),
          },
          parsed.value,
        );
        assert.equal(decision.result, 'denied', entry.name);
        assert.deepEqual([...new Set(decision.findings.map((finding) => finding.check))], entry.checks, entry.name);
      }
    });
  });

  it('a requester no policy names is left pending, with an Unprocessed event; another signer is not touched at all', async () => {
    const asStranger = kubeConfigFor(endpoint, { token: stranger.value });
    const otherSigner = await eventually(() =>
      create(asBootstrap, {
        pem: ourPem(`${run}-other`, generateKeyPair('ecdsa-p256')),
        signerName: `kubeconfig-rotator.test/${run}`,
      }),
    );
    const unmatched = await eventually(() =>
      create(asStranger, { pem: ourPem(`${run}-stranger`, generateKeyPair('ecdsa-p256')) }),
    );
    await approver.waitForLog((line) => line.msg === 'no policy applies; left pending' && line.csr === unmatched);
    const control = await create(asBootstrap, { pem: ourPem(`${run}-control`, generateKeyPair('ecdsa-p256')) });
    await waitForDecision(admin, control);
    for (const name of [unmatched, otherSigner]) {
      assert.deepEqual(
        (await certificates.readCertificateSigningRequest({ name })).status?.conditions ?? [],
        [],
        `${name} is still pending`,
      );
    }
    await eventually(async () => {
      assert.deepEqual(await eventsFor(unmatched), [
        {
          type: 'Warning',
          reason: 'Unprocessed',
          message: 'no approver policy applies to this requester; left pending',
          component: 'kubeconfig-rotator-approver',
        },
      ]);
    });
    assert.deepEqual(await eventsFor(otherSigner), []);
    assert.ok(!approver.lines.some((line) => line.csr === otherSigner), 'the approver never saw the other signer');
  });

  it('records Events on decisions, counts them in metrics and answers its probes', async () => {
    const name = await create(asBootstrap, { pem: ourPem('cluster-b-agent', generateKeyPair('ecdsa-p256')) });
    await waitForDecision(admin, name);
    await eventually(async () => {
      assert.deepEqual(await eventsFor(name), [
        {
          type: 'Warning',
          reason: 'Denied',
          message: 'denied: failed identity.commonName',
          component: 'kubeconfig-rotator-approver',
        },
      ]);
    });
    assert.ok(
      (await approver.metric(
        'decisions_total',
        'policy="cluster-a",result="approved",reason="firstCertificate",dry_run="false"',
      )) >= 1,
    );
    assert.ok(
      (await approver.metric(
        'decisions_total',
        'policy="cluster-a",result="approved",reason="renewal",dry_run="false"',
      )) >= 1,
    );
    assert.ok(
      (await approver.metric(
        'decisions_total',
        'policy="cluster-a",result="denied",reason="identity.commonName",dry_run="false"',
      )) >= 1,
    );
    assert.ok(
      (await approver.metric('decisions_total', 'policy="",result="unprocessed",reason="noPolicy",dry_run="false"')) >=
        1,
    );
    assert.ok((await approver.metric('decision_latency_seconds_count', 'result="denied"')) >= 30);
    assert.equal(await approver.metric('leader'), 1);
    assert.equal(await approver.metric('policy_generation'), 1);
    assert.equal(await approver.metric('queue_depth'), 0);
    assert.equal((await approver.get('/healthz')).status, 200);
    const ready = await approver.get('/readyz');
    assert.equal(ready.status, 200);
    assert.match(
      ready.body,
      /^ok\ninformer: synced, \d+ CSRs of kubernetes.io\/kube-apiserver-client cached\nleader: this replica\npolicy: generation 1\n$/,
    );
  });

  it('its credential holds exactly the approver RBAC: no approving for another signer, no Secrets, no Pods', async () => {
    const asApprover = kubeConfigFor(endpoint, { token: account.token });
    const api = asApprover.makeApiClient(CertificatesV1Api);
    const name = await create(admin, {
      pem: ourPem(`${run}-foreign`, generateKeyPair('ecdsa-p256')),
      signerName: `kubeconfig-rotator.test/${run}-foreign`,
    });
    const csr = await api.readCertificateSigningRequest({ name });
    await assert.rejects(
      api.replaceCertificateSigningRequestApproval({
        name,
        body: {
          ...csr,
          status: { conditions: [{ type: 'Approved', status: 'True', reason: 'Test', message: 'test' }] },
        },
      }),
      (error) => statusCode(error) === 403,
    );
    const core = asApprover.makeApiClient(CoreV1Api);
    await assert.rejects(core.listSecretForAllNamespaces(), (error) => statusCode(error) === 403);
    await assert.rejects(core.listPodForAllNamespaces(), (error) => statusCode(error) === 403);
    await assert.rejects(api.deleteCertificateSigningRequest({ name }), (error) => statusCode(error) === 403);
    await assert.rejects(
      asApprover.makeApiClient(CoordinationV1Api).listNamespacedLease({ namespace: 'kube-system' }),
      (error) => statusCode(error) === 403,
    );
  });

  it("its decision writer, as the approver's ServiceAccount: written once, then alreadyDecided on a stale copy, gone when deleted, and a refusal is an API error", async () => {
    const client = createKubeClient(clientConfigFor(endpoint, { token: account.token }));
    const writer = kubeDecisionWriter(client);
    const condition = { type: 'Denied', reason: 'Test', message: 'decided by the writer test' } as const;
    try {
      const name = await create(kubeConfigFor(endpoint, { token: stranger.value }), {
        pem: ourPem(`${run}-writer`, generateKeyPair('ecdsa-p256')),
      });
      const stale = writeTarget(await certificates.readCertificateSigningRequest({ name }));
      assert.equal(await writer.write(stale, condition), 'written');
      assert.deepEqual(decisionOf(await certificates.readCertificateSigningRequest({ name })), {
        type: 'Denied',
        reason: 'Test',
        message: 'decided by the writer test',
      });
      assert.equal(await writer.write(stale, condition), 'alreadyDecided');
      await certificates.deleteCertificateSigningRequest({ name });
      assert.equal(await writer.write(stale, condition), 'gone');
      const foreign = await create(admin, {
        pem: ourPem(`${run}-writer-foreign`, generateKeyPair('ecdsa-p256')),
        signerName: `kubeconfig-rotator.test/${run}-writer`,
      });
      await assert.rejects(
        writer.write(writeTarget(await certificates.readCertificateSigningRequest({ name: foreign })), condition),
        (error) => {
          assert.match(describeError(error), /^HTTP 403 Forbidden: .*kubeconfig-rotator\.test\//);
          return true;
        },
      );
    } finally {
      await client.close();
    }
  });

  it('its decision writer sends neither the request nor the spec, and keeps labels and annotations, large ones included', async () => {
    const client = createKubeClient(clientConfigFor(endpoint, { token: account.token }));
    const writer = kubeDecisionWriter(client);
    const condition = { type: 'Denied', reason: 'Test', message: 'written without the request' } as const;
    try {
      for (const annotation of ['small', 'x'.repeat(16_384)]) {
        const name = uniqueName(`${run}-metadata`);
        const created = await certificates.createCertificateSigningRequest({
          body: {
            metadata: { name, labels: { [`${run}-label`]: 'kept' }, annotations: { note: annotation } },
            spec: {
              request: Buffer.from(ourPem(`${run}-metadata`, generateKeyPair('ecdsa-p256'))).toString('base64'),
              signerName: 'kubernetes.io/kube-apiserver-client',
              usages: ['client auth'],
              expirationSeconds: 3600,
            },
          },
        });
        const target = writeTarget(created);
        assert.equal(target.metadata === undefined, annotation.length > 4096, 'large metadata is not kept');
        assert.equal(await writer.write(target, condition), 'written');
        const written = await certificates.readCertificateSigningRequest({ name });
        assert.deepEqual(decisionOf(written)?.message, 'written without the request');
        assert.deepEqual(
          [written.metadata?.labels, written.metadata?.annotations, written.spec],
          [created.metadata?.labels, created.metadata?.annotations, created.spec],
        );
        await certificates.deleteCertificateSigningRequest({ name });
      }
    } finally {
      await client.close();
    }
  });

  describe('an approver for its own signer, with SubjectAccessReviews and denyUnmatched', () => {
    const signer = `kubeconfig-rotator.test/${run}`;
    let own: { account: ApproverAccount; approver: ApproverProcess; refused: TestBootstrapToken } | undefined;

    before(async () => {
      const refused = await createBootstrapToken(admin);
      const ownAccount = await approverAccount(target, signer, dir);
      const policy =
        writeKubeletMount(join(dir, 'own-policy'), {
          'policy.yaml': `
signerName: ${signer}
denyUnmatched: true
policies:
  - name: reviewed-allowed
    bootstrap: { groups: ['${bootstrap.group}'] }
    identity: { commonNames: ['${run}-*'] }
    subjectAccessReview: true
  - name: reviewed-refused
    bootstrap: { groups: ['${refused.group}'] }
    identity: { commonNames: ['${run}-*'] }
    subjectAccessReview: true
`,
        })['policy.yaml'] ?? assert.fail();
      // RBAC as the policy language: only the first bootstrap group may use its policy.
      const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
      await rbac.createClusterRole({
        body: {
          metadata: { name: `${run}-use-policy` },
          rules: [
            {
              apiGroups: ['certificates.k8s.io'],
              resources: ['certificatesigningrequests/kubeconfig-rotator'],
              resourceNames: ['reviewed-allowed'],
              verbs: ['create'],
            },
          ],
        },
      });
      await rbac.createClusterRoleBinding({
        body: {
          metadata: { name: `${run}-use-policy` },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${run}-use-policy` },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: bootstrap.group }],
        },
      });
      await eventually(async () => {
        const review = await admin.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
          body: {
            spec: {
              user: 'probe',
              groups: [bootstrap.group],
              resourceAttributes: {
                group: 'certificates.k8s.io',
                resource: 'certificatesigningrequests',
                subresource: 'kubeconfig-rotator',
                verb: 'create',
                name: 'reviewed-allowed',
              },
            },
          },
        });
        assert.equal(review.status?.allowed, true, 'the binding has reached the authorizer');
      });
      const ownApprover = new ApproverProcess({ account: ownAccount, policy, logDir: dir });
      await ownApprover.waitForLog((line) => line.msg === 'started leading');
      own = { account: ownAccount, approver: ownApprover, refused };
    });

    after(async () => {
      await own?.approver.stop();
      await own?.account.delete();
      const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
      await rbac.deleteClusterRoleBinding({ name: `${run}-use-policy` });
      await rbac.deleteClusterRole({ name: `${run}-use-policy` });
    });

    it('approves when the review allows, denies naming the review when it refuses, and denies requesters no policy names', async () => {
      assert.ok(own !== undefined);
      const pem = () => ourPem(`${run}-agent`, generateKeyPair('ecdsa-p256'), []);
      const allowed = await eventually(() => create(asBootstrap, { pem: pem(), signerName: signer }));
      const refused = await eventually(() =>
        create(kubeConfigFor(endpoint, { token: own?.refused.value ?? '' }), { pem: pem(), signerName: signer }),
      );
      const unmatched = await eventually(() =>
        create(kubeConfigFor(endpoint, { token: stranger.value }), { pem: pem(), signerName: signer }),
      );
      assert.deepEqual(await waitForDecision(admin, allowed), {
        type: 'Approved',
        reason: 'PolicyApproved',
        message: `policy reviewed-allowed allows a first certificate for "${run}-agent" (no groups) requested by "system:bootstrap:${bootstrap.token.id}"`,
      });
      assert.deepEqual(await waitForDecision(admin, refused), {
        type: 'Denied',
        reason: 'PolicyDenied',
        message:
          'denied by kubeconfig-rotator approver: reviewed-refused: subjectAccessReview: the requester may not create certificatesigningrequests/kubeconfig-rotator.certificates.k8s.io "reviewed-refused"',
      });
      assert.deepEqual(await waitForDecision(admin, unmatched), {
        type: 'Denied',
        reason: 'PolicyDenied',
        message: `denied by kubeconfig-rotator approver: policy.unmatched: no policy applies to requester "system:bootstrap:${stranger.token.id}"`,
      });
    });
  });

  it('exits 1 naming the address when its probe port is taken, instead of staying up with its policy watcher open', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const blocked = new ApproverProcess({
        account,
        policy: approverPolicy,
        logDir: dir,
        args: ['--listen', `127.0.0.1:${String(port)}`],
      });
      assert.deepEqual(await blocked.exited, { code: 1, signal: null });
      assert.match(blocked.stderr, new RegExp(`EADDRINUSE.*127\\.0\\.0\\.1:${String(port)}`));
    } finally {
      taken.close();
    }
  });

  it('no log line holds a token, a key or a request', () => {
    assertNoSecretsInLogs([approver.logFile], [bootstrap.value, stranger.value, account.token, bootstrap.token.secret]);
    assert.ok(!readFileSync(approver.logFile, 'utf8').includes('BEGIN CERTIFICATE REQUEST'));
  });

  it('on SIGTERM it releases its Lease and exits 0 within seconds', async () => {
    const started = Date.now();
    const exit = await approver.stop('SIGTERM');
    const tookMs = Date.now() - started;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(tookMs < 5_000, `took ${String(tookMs)} ms`);
    const lease = await admin
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: account.leaseName, namespace: account.namespace });
    assert.equal(lease.spec?.holderIdentity, '');
    assert.ok(approver.lines.some((line) => line.msg === 'lease released'));
  });
});
