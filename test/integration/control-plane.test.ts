// Proof that the real certificate path works on the test control plane, before any product code runs:
// bootstrap token -> CSR -> approval -> certificate issued by kube-controller-manager -> authenticated calls.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { AuthenticationV1Api, CertificatesV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { buildCertificationRequest } from '../../src/core/pki/csr.ts';
import { clientUsagesFor, generateKeyPair, type KeyPair } from '../../src/core/pki/keys.ts';
import type { Subject } from '../../src/core/pki/subject.ts';
import { kubeConfigFor } from '../support/kubeconfig.ts';
import { testCluster } from '../support/clusters.ts';
import {
  approveCsr,
  createBootstrapToken,
  eventually,
  statusCode,
  uniqueName,
  waitForCertificate,
} from '../support/kube.ts';

const target = testCluster('target');
const admin = target.admin();
const endpoint = target.endpoint();

async function createCsr(
  kubeConfig: KubeConfig,
  options: { subject: Subject; keys: KeyPair; signerName: string; expirationSeconds?: number },
) {
  const name = uniqueName('kcr-proof');
  const created = await kubeConfig.makeApiClient(CertificatesV1Api).createCertificateSigningRequest({
    body: {
      metadata: { name },
      spec: {
        request: Buffer.from(buildCertificationRequest(options.subject, options.keys)).toString('base64'),
        signerName: options.signerName,
        usages: clientUsagesFor(options.keys.algorithm),
        expirationSeconds: options.expirationSeconds ?? 3600,
      },
    },
  });
  return { name, created };
}

async function whoAmI(kubeConfig: KubeConfig) {
  const review = await kubeConfig.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
  return review.status?.userInfo;
}

describe('the target control plane issues client certificates through the CSR API', () => {
  it('a bootstrap token gets an approved ECDSA P-256 request signed, and the certificate authenticates as exactly CN and O', async () => {
    const bootstrap = await createBootstrapToken(admin);
    const asBootstrap = kubeConfigFor(endpoint, { token: bootstrap.value });
    const keys = generateKeyPair('ecdsa-p256');
    const subject = { commonName: uniqueName('kcr-proof-agent'), organizations: ['kcr-proof-group'] };

    // RBAC bindings reach the authorizer's cache a moment after they are written.
    const { name, created } = await eventually(() =>
      createCsr(asBootstrap, {
        subject,
        keys,
        signerName: 'kubernetes.io/kube-apiserver-client',
        expirationSeconds: 900,
      }),
    );
    assert.equal(created.spec.username, `system:bootstrap:${bootstrap.token.id}`);
    assert.ok(
      created.spec.groups?.includes(bootstrap.group),
      `CSR groups ${String(created.spec.groups)} lack ${bootstrap.group}`,
    );

    await approveCsr(admin, name);
    const issued = await waitForCertificate(asBootstrap, name);
    const certificate = new X509Certificate(issued.certificatePem);
    assert.ok(certificate.publicKey.equals(keys.publicKey), 'the issued certificate carries our public key');
    const lifetimeSeconds = (Date.parse(certificate.validTo) - Date.parse(certificate.validFrom)) / 1000;
    // kube-controller-manager backdates NotBefore by 5 minutes and honours expirationSeconds.
    assert.ok(lifetimeSeconds <= 900 + 300 + 1 && lifetimeSeconds >= 900, `lifetime ${String(lifetimeSeconds)} s`);

    const asIssued = kubeConfigFor(endpoint, {
      certPem: issued.certificatePem,
      keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    });
    const user = await whoAmI(asIssued);
    assert.equal(user?.username, subject.commonName);
    assert.deepEqual([...(user.groups ?? [])].sort(), ['kcr-proof-group', 'system:authenticated']);
  });

  it('the bootstrap identity can do nothing but handle CSRs', async () => {
    const bootstrap = await createBootstrapToken(admin);
    const asBootstrap = kubeConfigFor(endpoint, { token: bootstrap.value });
    await eventually(() => asBootstrap.makeApiClient(CertificatesV1Api).listCertificateSigningRequest());

    const core = asBootstrap.makeApiClient(CoreV1Api);
    await assert.rejects(core.listSecretForAllNamespaces(), (error) => statusCode(error) === 403);
    await assert.rejects(core.listNamespacedSecret({ namespace: 'kube-system' }), (error) => statusCode(error) === 403);
    await assert.rejects(core.listNamespace(), (error) => statusCode(error) === 403);

    // Nor approve its own request.
    const keys = generateKeyPair('ecdsa-p256');
    const { name } = await createCsr(asBootstrap, {
      subject: { commonName: uniqueName('kcr-proof-self'), organizations: [] },
      keys,
      signerName: 'kubernetes.io/kube-apiserver-client',
    });
    const api = asBootstrap.makeApiClient(CertificatesV1Api);
    const csr = await api.readCertificateSigningRequest({ name });
    await assert.rejects(
      api.replaceCertificateSigningRequestApproval({
        name,
        body: {
          ...csr,
          status: { conditions: [{ type: 'Approved', status: 'True', reason: 'Self', message: 'self' }] },
        },
      }),
      (error) => statusCode(error) === 403,
    );
  });

  it('an expired bootstrap token is rejected with 401', async () => {
    const bootstrap = await createBootstrapToken(admin, { expiration: new Date(Date.now() - 60_000) });
    const asBootstrap = kubeConfigFor(endpoint, { token: bootstrap.value });
    await assert.rejects(
      asBootstrap.makeApiClient(CertificatesV1Api).listCertificateSigningRequest(),
      (error) => statusCode(error) === 401,
    );
  });

  it('a request for O=system:masters is rejected by the apiserver at create', async () => {
    const bootstrap = await createBootstrapToken(admin);
    const asBootstrap = kubeConfigFor(endpoint, { token: bootstrap.value });
    await eventually(() => asBootstrap.makeApiClient(CertificatesV1Api).listCertificateSigningRequest());
    await assert.rejects(
      createCsr(asBootstrap, {
        subject: { commonName: uniqueName('kcr-proof-masters'), organizations: ['system:masters'] },
        keys: generateKeyPair('ecdsa-p256'),
        signerName: 'kubernetes.io/kube-apiserver-client',
      }),
      (error) => statusCode(error) === 403 && (error as Error).message.includes('system:masters'),
    );
  });

  it('kube-controller-manager approves and signs kubelet-client requests by itself (the benchmark reference)', async () => {
    const bootstrap = await createBootstrapToken(admin, {
      extraClusterRoles: ['system:certificates.k8s.io:certificatesigningrequests:nodeclient'],
    });
    const asBootstrap = kubeConfigFor(endpoint, { token: bootstrap.value });
    const keys = generateKeyPair('ecdsa-p256');
    const node = uniqueName('kcr-proof-node');
    const { name } = await eventually(() =>
      createCsr(asBootstrap, {
        subject: { commonName: `system:node:${node}`, organizations: ['system:nodes'] },
        keys,
        signerName: 'kubernetes.io/kube-apiserver-client-kubelet',
      }),
    );
    const issued = await waitForCertificate(asBootstrap, name);
    const approved = issued.status?.conditions?.find((c) => c.type === 'Approved');
    assert.equal(approved?.status, 'True');
    assert.equal(approved.reason, 'AutoApproved');
    assert.ok(new X509Certificate(issued.certificatePem).publicKey.equals(keys.publicKey));
  });
});
