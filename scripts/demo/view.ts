// The demo's live view, rendered from a snapshot (pure: the same snapshot always gives the same text).
export interface TargetView {
  readonly name: string;
  readonly identity: string;
  readonly serial?: string;
  readonly notAfter?: number;
  readonly nextRotation?: number;
  readonly rotations: number;
  readonly failedRotations: number;
}

export interface DemoSnapshot {
  readonly now: number;
  readonly startedAt: number;
  /** When the run ends by itself (its --duration, or the approver token's limit). */
  readonly endsAt: number;
  readonly targets: readonly TargetView[];
  readonly agent: {
    readonly clientNodeCalls: number;
    readonly kubectlCalls: number;
    readonly failures: number;
    readonly lastFailure?: string;
  };
  /** Certificate mode only: token targets need no approver. */
  readonly approver?: {
    readonly approved: number;
    readonly denied: number;
    readonly unprocessed: number;
    readonly leader: boolean;
  };
  /** What the impostor tries ("a sidecar asking for CN=..."), how often it was refused, and why. */
  readonly rogue: { readonly attempt: string; readonly denials: number; readonly lastReason?: string };
  readonly notes: readonly string[];
}

const time = (at: number) => new Date(at).toISOString().slice(11, 19);

function span(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  return seconds >= 60
    ? `${String(Math.floor(seconds / 60))}m ${String(seconds % 60).padStart(2, '0')}s`
    : `${String(seconds)}s`;
}

export function renderView(snapshot: DemoSnapshot): string {
  const { now, agent, approver, rogue } = snapshot;
  const lines = [
    `kubeconfig-rotator demo — running ${span(now - snapshot.startedAt)}, ends ${new Date(snapshot.endsAt).toISOString().slice(0, 16).replace('T', ' ')} UTC (Ctrl-C stops everything)`,
    '',
    'TARGET     IDENTITY                           SERIAL/ID         NOT AFTER  NEXT ROTATION  ROTATIONS',
    ...snapshot.targets.map((target) =>
      [
        target.name.padEnd(10),
        target.identity.padEnd(34),
        (target.serial === undefined ? '-' : target.serial.slice(0, 16)).padEnd(17),
        (target.notAfter === undefined ? '-' : time(target.notAfter)).padEnd(10),
        (target.nextRotation === undefined ? '-' : `in ${span(target.nextRotation - now)}`).padEnd(14),
        `${String(target.rotations)}${target.failedRotations > 0 ? ` (${String(target.failedRotations)} failed)` : ''}`,
      ].join(' '),
    ),
    '',
    `agent      ${String(agent.clientNodeCalls)} client-node calls, ${String(agent.kubectlCalls)} kubectl calls, ${String(agent.failures)} failed` +
      (agent.lastFailure === undefined ? '' : ` (last: ${agent.lastFailure})`),
    approver === undefined
      ? 'approver   none: tokens come from the TokenRequest API, bounded by the guardrail policy'
      : `approver   ${approver.leader ? 'leading' : 'NOT leading'}; ${String(approver.approved)} approved, ${String(approver.denied)} denied, ${String(approver.unprocessed)} left pending`,
    `rogue      ${rogue.attempt}: ${String(rogue.denials)} refused` +
      (rogue.lastReason === undefined ? '' : `\n           why: ${rogue.lastReason}`),
    '',
    ...snapshot.notes.slice(-6),
  ];
  return `${lines.join('\n')}\n`;
}

/** One line for logs that are not a terminal (CI, pipes). */
export function renderLine(snapshot: DemoSnapshot): string {
  const target = snapshot.targets[0];
  return (
    `[${span(snapshot.now - snapshot.startedAt)}] rotations ${String(target?.rotations ?? 0)}, serial ${target?.serial?.slice(0, 16) ?? '-'}, ` +
    `agent calls ${String(snapshot.agent.clientNodeCalls + snapshot.agent.kubectlCalls)} (failed ${String(snapshot.agent.failures)}), ` +
    (snapshot.approver === undefined
      ? ''
      : `approver ${String(snapshot.approver.approved)} approved / ${String(snapshot.approver.denied)} denied, `) +
    `rogue refused ${String(snapshot.rogue.denials)}\n`
  );
}
