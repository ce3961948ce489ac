// A throwaway CA that signs our own CSRs with openssl, for unit tests of certificate checks and of the
// rotation loop: certificates made by an independent implementation, with the extensions and validity a
// test asks for.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OpensslCa {
  readonly certPem: string;
  /**
   * Signs a PEM CSR; `extensions` are openssl x509v3 config lines (default: client auth); validity defaults
   * to one day from now.
   */
  sign(csrPem: string, options?: { extensions?: string[]; notBefore?: Date; notAfter?: Date }): string;
  dispose(): void;
}

// openssl's ASN1 time format: YYYYMMDDHHMMSSZ.
const asn1Time = (date: Date) => `${date.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;

export function opensslCa(name = 'test-ca'): OpensslCa {
  const dir = mkdtempSync(join(tmpdir(), 'kcr-ca-'));
  const run = (args: string[], input?: string) =>
    execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  run([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '3650',
    '-subj',
    `/CN=${name}`,
  ]);
  // `openssl ca` is the one that takes explicit start and end dates.
  writeFileSync(
    join(dir, 'ca.cnf'),
    '[ca]\ndefault_ca = this\n[this]\ndatabase = index.txt\nnew_certs_dir = .\ncertificate = ca.crt\nprivate_key = ca.key\nserial = serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\ncopy_extensions = none\n[any]\ncommonName = supplied\norganizationName = optional\n',
  );
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  const certPem = run(['x509', '-in', 'ca.crt']);
  return {
    certPem,
    sign(csrPem, options = {}) {
      writeFileSync(join(dir, 'req.csr'), csrPem);
      writeFileSync(
        join(dir, 'ext.cnf'),
        `${(options.extensions ?? ['extendedKeyUsage=clientAuth', 'keyUsage=critical,digitalSignature']).join('\n')}\n`,
      );
      const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
      const notAfter = options.notAfter ?? new Date(Date.now() + 86_400_000);
      run([
        'ca',
        '-batch',
        '-config',
        'ca.cnf',
        '-in',
        'req.csr',
        '-out',
        'out.crt',
        '-extfile',
        'ext.cnf',
        '-notext',
        '-preserveDN',
        '-startdate',
        asn1Time(notBefore),
        '-enddate',
        asn1Time(notAfter),
      ]);
      return run(['x509', '-in', 'out.crt']);
    },
    dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
