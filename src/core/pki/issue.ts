// Issuing X.509 certificates with RSA keys (node-forge signs RSA only): a CA, and server or client certificates
// signed by it. Used for the injector's webhook serving certificate and the test control plane's PKI.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface PemPair {
  readonly cert: string;
  readonly key: string;
}

export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface CertificateSpec {
  readonly commonName: string;
  readonly organizations?: readonly string[];
  readonly usage: 'server' | 'client';
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

function newKey(): { pem: string; publicKey: forge.pki.rsa.PublicKey } {
  const pem = generateKeyPairSync('rsa', { modulusLength: 2048 })
    .privateKey.export({ type: 'pkcs1', format: 'pem' })
    .toString();
  const key = forge.pki.privateKeyFromPem(pem);
  return { pem, publicKey: forge.pki.setRsaPublicKey(key.n, key.e) };
}

function baseCertificate(publicKey: forge.pki.rsa.PublicKey, validity: Validity): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A positive serial: clear the top bit of 16 random bytes.
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = validity.notBefore;
  cert.validity.notAfter = validity.notAfter;
  return cert;
}

export function createCertificateAuthority(commonName: string, validity: Validity): PemPair {
  const { pem, publicKey } = newKey();
  const cert = baseCertificate(publicKey, validity);
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(pem), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: pem };
}

export function issueCertificate(ca: PemPair, spec: CertificateSpec, validity: Validity): PemPair {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const { pem, publicKey } = newKey();
  const cert = baseCertificate(publicKey, validity);
  cert.setSubject([
    ...(spec.organizations ?? []).map((value) => ({ name: 'organizationName', value })),
    { name: 'commonName', value: spec.commonName },
  ]);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [
    ...(spec.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(spec.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: spec.usage === 'server', clientAuth: spec.usage === 'client' },
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: pem };
}
