// "No private key, token or kubeconfig content in any log line": checked over every log a test file wrote.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const FORBIDDEN_PATTERNS = [
  /PRIVATE KEY/,
  /client-key-data/,
  /client-certificate-data/,
  /certificate-authority-data/,
  /token-secret/,
  /"token":"[^[]/,
];

/** Each secret is searched as given and, for PEM documents, by its base64 body lines. */
export function assertNoSecretsInLogs(logFiles: readonly string[], secrets: readonly string[]): void {
  const needles = secrets.flatMap((secret) =>
    secret.includes('-----BEGIN')
      ? secret.split('\n').filter((line) => line.length >= 40 && !line.startsWith('-----'))
      : [secret],
  );
  for (const file of logFiles) {
    const text = readFileSync(file, 'utf8');
    for (const pattern of FORBIDDEN_PATTERNS) assert.doesNotMatch(text, pattern, `${file} matches ${String(pattern)}`);
    for (const needle of needles) assert.ok(!text.includes(needle), `${file} contains secret material`);
  }
}
