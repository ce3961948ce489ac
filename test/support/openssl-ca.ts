// A throwaway CA that signs our own CSRs with openssl, for unit tests of certificate checks: certificates
// made by an independent implementation, with the extensions a test asks for.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OpensslCa {
  readonly certPem: string;
  /** Signs a PEM CSR for one day; `extensions` are openssl x509v3 config lines (default: client auth). */
  sign(csrPem: string, options?: { extensions?: string[] }): string;
  dispose(): void;
}

export function opensslCa(name = 'test-ca'): OpensslCa {
  const dir = mkdtempSync(join(tmpdir(), 'kcr-ca-'));
  const run = (args: string[], input?: string) => execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${name}`]);
  const certPem = run(['x509', '-in', 'ca.crt']);
  let serial = 1;
  return {
    certPem,
    sign(csrPem, options = {}) {
      writeFileSync(join(dir, 'req.csr'), csrPem);
      writeFileSync(join(dir, 'ext.cnf'), `${(options.extensions ?? ['extendedKeyUsage=clientAuth', 'keyUsage=critical,digitalSignature']).join('\n')}\n`);
      serial++;
      return run(['x509', '-req', '-in', 'req.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(serial), '-days', '1', '-extfile', 'ext.cnf']);
    },
    dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
