// What `kubeconfig-rotator check` reports: results in groups, one line each (pass, warn, fail), a failure or
// warning saying what is wrong, the fix, and the section of docs/troubleshooting.md that explains it; its text
// and JSON renderings, and the exit code. Pure: the I/O shell (src/check) runs the checks and passes results.

export type CheckStatus = 'pass' | 'warn' | 'fail';

/** In the order the groups are printed. */
export const CHECK_GROUPS = [
  'target',
  'certificate target',
  'token target',
  'federated target',
  'source',
  'sidecar',
  'approver',
] as const;
export type CheckGroup = (typeof CHECK_GROUPS)[number];

/** Every check, stable for machines; each has its section in docs/troubleshooting.md (a unit test holds it). */
export const CHECK_IDS = [
  'target.reachable',
  'target.version',
  'certificate.bootstrap-token',
  'certificate.cleanup',
  'certificate.signer',
  'certificate.approver',
  'certificate.leader',
  'certificate.policy',
  'token.token-request',
  'token.guardrail',
  'federated.issuer-trust',
  'source.reachable',
  'source.version',
  'source.bootstrap-secret',
  'source.published-endpoint',
  'certificate.other-approvers',
  'target.alerts',
  'source.alerts',
  'source.injector-webhook',
  'sidecar.bootstrap-kubeconfig',
  'sidecar.target-endpoint',
  'sidecar.bootstrap-credential',
  'sidecar.published',
  'sidecar.rbac',
  'approver.policy-file',
] as const;
export type CheckId = (typeof CHECK_IDS)[number];

export interface CheckResult {
  readonly id: CheckId;
  readonly group: CheckGroup;
  /** What is checked, as the line says it ("bootstrap tokens are accepted"). */
  readonly title: string;
  readonly status: CheckStatus;
  /** What was found: on a pass, the evidence; otherwise what is wrong. */
  readonly detail: string;
  /** What to do; present on every warn and fail. */
  readonly fix?: string;
}

const DOCS = 'docs/troubleshooting.md';

/** The section of docs/troubleshooting.md that explains a check: its id with dots as dashes. */
export const docsSection = (id: CheckId): string => `${DOCS}#${id.replaceAll('.', '-')}`;

export const pass = (id: CheckId, group: CheckGroup, title: string, detail: string): CheckResult => ({
  id,
  group,
  title,
  status: 'pass',
  detail,
});

export const problem = (
  status: 'warn' | 'fail',
  base: { readonly id: CheckId; readonly group: CheckGroup; readonly title: string },
  detail: string,
  fix: string,
): CheckResult => ({ ...base, status, detail, fix });

/** 0 when nothing failed; 1 when something failed, or (with `strict`) warned. */
export function exitCode(results: readonly CheckResult[], strict: boolean): number {
  return results.some((result) => result.status === 'fail' || (strict && result.status === 'warn')) ? 1 : 0;
}

const MARK: Record<CheckStatus, string> = { pass: '[ok]  ', warn: '[warn]', fail: '[FAIL]' };

/** The report a person reads: a header per group, one line per check, then what is wrong, the fix and the docs. */
export function renderText(results: readonly CheckResult[]): string {
  const lines: string[] = [];
  for (const group of CHECK_GROUPS) {
    const members = results.filter((result) => result.group === group);
    if (members.length === 0) continue;
    if (lines.length > 0) lines.push('');
    lines.push(group);
    for (const result of members) {
      lines.push(`  ${MARK[result.status]} ${result.title}: ${result.detail}`);
      if (result.fix !== undefined) {
        lines.push(`         fix: ${result.fix}`);
        lines.push(`         see: ${docsSection(result.id)}`);
      }
    }
  }
  const count = (status: CheckStatus) => results.filter((result) => result.status === status).length;
  lines.push('', `${String(count('pass'))} passed, ${String(count('warn'))} warned, ${String(count('fail'))} failed`);
  return `${lines.join('\n')}\n`;
}

/** For machines: every result with its docs section, and the summary the exit code follows. */
export function renderJson(results: readonly CheckResult[], strict: boolean, now: number): string {
  const report = {
    checkedAt: new Date(now).toISOString(),
    ok: exitCode(results, strict) === 0,
    strict,
    checks: results.map((result) => (result.fix === undefined ? result : { ...result, docs: docsSection(result.id) })),
  };
  return `${JSON.stringify(report, null, 2)}\n`;
}
