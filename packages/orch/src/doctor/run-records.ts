// The checks of one run that read only the database, all in one read snapshot. Each yields its
// findings in report order, with the repair (its own transaction, run once every check is done)
// when one is safe.
import { existingThreadIds } from '@orch/inbox';
import { NotFoundError, problem, readTransaction, writeTransaction } from '@orch/store';
import fs from 'node:fs';
import { settleRunIn } from '../events.ts';
import { inboxTx, type Orch, type Tx } from '../orch.ts';
import { listAttempts, type AttemptRow } from '../queries/attempts.ts';
import { eventSeqSpan, latestTaskStateEvents } from '../queries/health.ts';
import { getRun, type RunRow } from '../queries/runs.ts';
import { listTasks, type TaskRow } from '../queries/tasks.ts';
import { reconcile, unfoldedIn } from '../ops/reconcile.ts';
import { LIVE_ATTEMPT_STATES, type OrchDatabase } from '../schema.ts';
import { missingThreadFinding, staleLiveAttemptFinding, taskAttemptMismatch } from './attempts.ts';
import { runFinding, type Finding } from './finding.ts';

/** What the checks of one run read, from one snapshot. */
export interface RunSnapshot {
  trx: Tx;
  orch: Orch;
  runId: string;
  run: RunRow;
  tasks: TaskRow[];
  attempts: AttemptRow[];
  /** Each task's attempts, oldest first. */
  byTask: Map<string, AttemptRow[]>;
  /** The run's event numbers: how many, the lowest and the highest. */
  events: { count: number; min: number; max: number };
  /** At least one task, and every task done or cancelled. */
  finished: boolean;
  /** Every finding of this doctor call so far (a repair may look at them when it runs). */
  all: Finding[];
}

/** The checks, in report order. The settle check is last, so its repair runs after the run's other repairs and sees what is left. */
const RUN_CHECKS: ((s: RunSnapshot) => AsyncGenerator<Finding>)[] = [
  eventGaps,
  missingThreads,
  taskStates,
  runState,
  expiredLeases,
  missingWorktrees,
  unsettledRun,
];

/**
 * Runs the database checks of run `runId` in one read snapshot, adding their findings to `all`.
 *
 * @throws NotFoundError (3) for an unknown run.
 */
export async function checkRunRecords(orch: Orch, runId: string, all: Finding[]): Promise<{ tasks: number; attempts: AttemptRow[]; events: number }> {
  return readTransaction<OrchDatabase, { tasks: number; attempts: AttemptRow[]; events: number }>(orch.store, async (trx) => {
    const run = await getRun(trx, runId);
    if (!run) throw new NotFoundError(`no run ${runId}`, { run: runId });
    const tasks = await listTasks(trx, runId);
    const attempts = await listAttempts(trx, { runId });
    const events = await eventSeqSpan(trx, runId);
    const byTask = new Map<string, AttemptRow[]>();
    for (const a of attempts) byTask.set(a.task_id, [...(byTask.get(a.task_id) ?? []), a]);
    const finished = tasks.length > 0 && tasks.every((t) => t.state === 'done' || t.state === 'cancelled');
    const s: RunSnapshot = { trx, orch, runId, run, tasks, attempts, byTask, events, finished, all };
    for (const check of RUN_CHECKS) for await (const f of check(s)) all.push(f);
    return { tasks: tasks.length, attempts, events: events.count };
  });
}

/** Event numbers 1..N without gaps or duplicates. */
async function* eventGaps(s: RunSnapshot): AsyncGenerator<Finding> {
  const span = s.events;
  if (span.count !== span.max || (span.count > 0 && span.min !== 1)) {
    yield runFinding(s.runId, {
      kind: 'event_gap',
      severity: 'error',
      message: `run ${s.runId} has ${span.count} events numbered ${span.min}..${span.max}: the log has gaps or duplicates`,
      repair: null,
    });
  }
}

/** Every attempt's thread exists. */
async function* missingThreads(s: RunSnapshot): AsyncGenerator<Finding> {
  const threads = await existingThreadIds(
    inboxTx(s.trx),
    s.attempts.map((a) => a.thread_id),
  );
  for (const a of s.attempts) if (!threads.has(a.thread_id)) yield missingThreadFinding(s.orch, a, s.byTask.get(a.task_id)?.at(-1));
}

/** Per task: no live attempt but its newest, its state agrees with its latest attempt and with its latest event. */
async function* taskStates(s: RunSnapshot): AsyncGenerator<Finding> {
  const events = await latestTaskStateEvents(s.trx, s.runId);
  for (const t of s.tasks) {
    const own = s.byTask.get(t.id) ?? [];
    const stale = staleLiveAttemptFinding(s.orch, t, own);
    if (stale) yield stale;
    const mismatch = taskAttemptMismatch(t, own.at(-1));
    if (mismatch)
      yield runFinding(s.runId, {
        kind: 'task_state_mismatch',
        severity: 'error',
        task: t.id,
        ...(own.at(-1) ? { attempt: own.at(-1)?.id } : {}),
        message: mismatch,
        repair: null,
      });
    const e = events.get(t.id);
    const said = e ? (JSON.parse(e.data) as { task_state: string }).task_state : undefined;
    if (said !== t.state) {
      yield runFinding(s.runId, {
        kind: 'task_event_mismatch',
        severity: 'error',
        task: t.id,
        message: e
          ? `task ${t.id} is ${t.state} but its latest event (#${e.seq} ${e.type}) says ${said}`
          : `task ${t.id} is ${t.state} but no event reports its state`,
        repair: null,
      });
    }
  }
}

/** A run marked done has every task done or cancelled. */
async function* runState(s: RunSnapshot): AsyncGenerator<Finding> {
  if (s.run.state === 'done' && !s.finished) {
    yield runFinding(s.runId, {
      kind: 'run_state_mismatch',
      severity: 'error',
      message: `run ${s.runId} is done but not every task is done or cancelled`,
      repair: null,
    });
  }
}

/** Leases that ran out on live attempts; the repair reconciles the run (once for all of them). */
async function* expiredLeases(s: RunSnapshot): AsyncGenerator<Finding> {
  const { orch, runId } = s;
  let reconciled: Promise<unknown> | undefined;
  const reconcileOnce = async () => {
    reconciled ??= reconcile(orch, runId);
    await reconciled;
    return true;
  };
  // Activity not folded in yet is normal (status, wait and reconcile fold it); a lease that ran out is worth saying.
  // (An attempt whose thread is missing has nothing to fold; it is reported above.)
  const unfolded = await unfoldedIn(s.trx, orch, runId);
  for (const u of unfolded.filter((x) => x.events.includes('attempt_expired'))) {
    const a = u.attempt;
    yield runFinding(
      runId,
      {
        kind: 'attempt_lease_expired',
        severity: 'warning',
        task: a.task_id,
        attempt: a.id,
        thread: a.thread_id,
        message: `the worker's lease on attempt ${a.id} (task ${a.task_id} #${a.number}) ran out; reconciling marks it expired and fences the worker out, then \`orch retry\` starts it again`,
        repair: 'reconcile the run',
      },
      reconcileOnce,
    );
  }
}

/** Code-mode worktrees that are gone although no cleanup recorded their removal. */
async function* missingWorktrees(s: RunSnapshot): AsyncGenerator<Finding> {
  for (const a of s.attempts) {
    if (a.execution_mode !== 'code' || a.worktree_path === null || a.worktree_removed_at !== null || fs.existsSync(a.worktree_path)) continue;
    const isLive = LIVE_ATTEMPT_STATES.includes(a.state);
    yield runFinding(s.runId, {
      kind: 'worktree_missing',
      severity: isLive ? 'error' : 'warning',
      task: a.task_id,
      attempt: a.id,
      path: a.worktree_path,
      message: isLive
        ? `the worktree of live attempt ${a.id} (task ${a.task_id} #${a.number}) at ${a.worktree_path} is gone: its worker has nowhere to work; \`orch reassign\` gives the task a fresh one`
        : `the worktree of attempt ${a.id} (task ${a.task_id} #${a.number}) at ${a.worktree_path} is gone; \`orch cleanup --run ${s.runId} --attempt ${a.id}\` records it`,
      repair: null,
    });
  }
}

/**
 * A run whose tasks are all finished but which is still active. The repair marks it done, but only
 * once nothing else about the run is still wrong: it runs after the run's other repairs and
 * refuses (saying so) while any error of the run is left, since settling a damaged run would hide
 * the damage behind `done`.
 */
async function* unsettledRun(s: RunSnapshot): AsyncGenerator<Finding> {
  if (s.run.state !== 'active' || !s.finished) return;
  const { orch, runId, all } = s;
  const p = problem({
    run: runId,
    kind: 'run_not_settled',
    severity: 'warning',
    message: `every task of run ${runId} is finished but the run is still active`,
    repair: 'mark the run done',
  });
  const fix = async (): Promise<boolean> => {
    const left = all.filter((f) => f.problem.run === runId && f.problem.severity === 'error' && !f.problem.repaired);
    if (left.length > 0) {
      p.repair = null;
      p.message += `; not marked done while ${left.length} error(s) of the run remain (${[...new Set(left.map((f) => f.problem.kind))].join(', ')})`;
      return false;
    }
    await writeTransaction<OrchDatabase, void>(orch.store, (w) => settleRunIn(w, orch, runId));
    return true;
  };
  yield { problem: p, fix };
}
