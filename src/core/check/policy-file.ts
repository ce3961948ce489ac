// `check --approver-policy`'s own decision (the approver chart's `helm test`): the mounted policy file is valid.
import { pass, problem, type CheckResult } from './model.ts';

/** The approver's mounted policy file, read with its own schema (the approver chart's helm test). */
export function policyFileCheck(
  path: string,
  seen:
    | { readonly ok: true; readonly policies: readonly string[] }
    | { readonly ok: false; readonly problems: readonly string[] },
): CheckResult {
  const base = { id: 'approver.policy-file', group: 'approver', title: 'the installed policy is valid' } as const;
  if (seen.ok)
    return seen.policies.length > 0
      ? pass(base.id, base.group, base.title, `${path}: policies ${seen.policies.join(', ')}`)
      : problem(
          'warn',
          base,
          `${path} holds no policy: every CSR stays pending`,
          'add a source to the approver chart values (sources[]) and helm upgrade',
        );
  return problem(
    'fail',
    base,
    `${path} is invalid: ${seen.problems.slice(0, 3).join('; ')}`,
    'correct the approver chart values (the approver refuses this file too) and helm upgrade',
  );
}
