import fs from 'node:fs';
import { latestMessageIn, type MessageView, type ThreadView } from '@orch/inbox';
import { ValidationError, readTransaction, waitForChange } from '@orch/store';
import { inboxTx, threadOrNull, type Orch } from './orch.ts';
import { lastEventSeq, listEvents } from './queries/events.ts';
import { getRun } from './queries/runs.ts';
import { listAttempts, type AttemptRow } from './queries/attempts.ts';
import { reconcile } from './reconcile.ts';
import { requireRun, runSummaryIn, type RunResult } from './runs.ts';
import type { EventType, OrchDatabase, RunState } from './schema.ts';
import { readinessIn, type Readiness } from './tasks.ts';
import { attemptView, eventView, taskView, type AttemptView, type EventView, type TaskView } from './views.ts';

export interface StatusTask extends TaskView, Readiness {
  attempts: number;
  /**
   * `worktree_exists`: code mode only (null otherwise); false means the worktree is gone (removed
   * by cleanup, or by hand). `thread` is null when the attempt's thread no longer exists (damage
   * doctor reports).
   */
  latest_attempt: (AttemptView & { thread: ThreadView | null; worktree_exists: boolean | null }) | null;
  latest_message: MessageView | null;
}

export interface StatusResult extends RunResult {
  tasks: StatusTask[];
}

/**
 * `orch status`: reconciles, then the run, task counts, every task with its state, readiness,
 * latest attempt (and its thread) and latest message, and the run's last event number.
 *
 * @throws NotFoundError (3).
 */
export async function status(orch: Orch, input: { runId: string }): Promise<StatusResult> {
  await reconcile(orch, input.runId);
  return readTransaction<OrchDatabase, StatusResult>(orch.store, async (trx) => {
    const summary = await runSummaryIn(trx, orch, input.runId);
    const { tasks, readiness } = await readinessIn(trx, input.runId);
    const attempts = await listAttempts(trx, { runId: input.runId });
    const latest = new Map<string, AttemptRow>();
    const tried = new Map<string, number>();
    for (const a of attempts) {
      latest.set(a.task_id, a);
      tried.set(a.task_id, (tried.get(a.task_id) ?? 0) + 1);
    }
    const out: StatusTask[] = [];
    for (const t of tasks) {
      const a = latest.get(t.id);
      let latestAttempt: StatusTask['latest_attempt'] = null;
      let latestMessage: MessageView | null = null;
      if (a) {
        const thread = await threadOrNull(trx, a.thread_id, orch.clock.now());
        const exists = a.worktree_path === null ? null : a.worktree_removed_at === null && fs.existsSync(a.worktree_path);
        latestAttempt = { ...attemptView(a), thread, worktree_exists: exists };
        latestMessage = thread === null ? null : await latestMessageIn(inboxTx(trx), a.thread_id);
      }
      out.push({
        ...taskView(t),
        ...(readiness.get(t.id) ?? { depends_on: [], waiting_on: [], ready: false }),
        attempts: tried.get(t.id) ?? 0,
        latest_attempt: latestAttempt,
        latest_message: latestMessage,
      });
    }
    return { ...summary, tasks: out };
  });
}

export interface BlockedTask {
  task: TaskView;
  attempt: AttemptView;
  /** The pending question: what the worker asked, when and who. */
  question: { message_id: number; body: string; payload: Record<string, unknown> | null; asked_by: string; asked_at: string } | null;
}

export interface BlockedResult {
  run: string;
  tasks: BlockedTask[];
}

/** `orch blocked`: reconciles, then every blocked task with its pending question. @throws NotFoundError (3). */
export async function blocked(orch: Orch, input: { runId: string }): Promise<BlockedResult> {
  await reconcile(orch, input.runId);
  return readTransaction<OrchDatabase, BlockedResult>(orch.store, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const { tasks } = await readinessIn(trx, run.id);
    const attempts = await listAttempts(trx, { runId: run.id, states: ['blocked'] });
    const out: BlockedTask[] = [];
    for (const t of tasks.filter((x) => x.state === 'blocked')) {
      const a = attempts.find((x) => x.task_id === t.id);
      if (!a) continue;
      const q = await latestMessageIn(inboxTx(trx), a.thread_id, 'question');
      out.push({
        task: taskView(t),
        attempt: attemptView(a),
        question: q && { message_id: q.id, body: q.body, payload: q.payload, asked_by: q.author, asked_at: q.created_at },
      });
    }
    return { run: run.id, tasks: out };
  });
}

export interface WaitInput {
  runId: string;
  /** Default: every type. */
  types?: readonly EventType[] | undefined;
  /** Default: the run's newest event when the call starts (only new events count). At most that event. */
  afterEvent?: number | undefined;
  timeoutSeconds: number;
}

export interface WaitResult {
  run: string;
  events: EventView[];
  timed_out: boolean;
  /**
   * The newest event number this wait examined: every event up to it was either returned or did
   * not match `types`. Pass it as `--after-event` next time (as `status`'s `last_event`).
   */
  last_event: number;
  run_state: RunState;
}

/** How often a waiting `orch wait` reconciles without a commit (to see leases run out). */
export const WAIT_RECHECK_MS = 5000;

/** Most events one wait returns; the rest come with the next call from `last_event`. */
const WAIT_LIMIT = 500;

/**
 * `orch wait`: reconciles and blocks until the run has events of the given types after the cursor,
 * the run is no longer active (done or cancelled), or the timeout passes (timed_out: true, exit 0).
 * Cheap: re-checks when another connection commits (a file watch on the WAL, backed by
 * `PRAGMA data_version`) and every WAIT_RECHECK_MS for leases running out.
 *
 * @throws NotFoundError (3); ValidationError (2) for an `afterEvent` past the run's newest event
 *   (no event could ever be numbered after it, so the wait would never end), before writing anything.
 */
export async function waitEvents(orch: Orch, input: WaitInput): Promise<WaitResult> {
  const start = await readTransaction<OrchDatabase, number>(orch.store, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const newest = await lastEventSeq(trx, run.id);
    if (input.afterEvent !== undefined && input.afterEvent > newest) {
      throw new ValidationError(
        `--after-event ${input.afterEvent} is past the newest event of run ${run.id}, which is ${newest}; pass a last_event that status or wait printed`,
        [{ path: '--after-event', message: `must be at most ${newest}, the run's newest event` }],
      );
    }
    return input.afterEvent ?? newest;
  });
  let examined = start;
  const check = async (): Promise<WaitResult | undefined> => {
    await reconcile(orch, input.runId);
    return readTransaction<OrchDatabase, WaitResult | undefined>(orch.store, async (trx) => {
      const rows = await listEvents(trx, { runId: input.runId, afterSeq: start, types: input.types, limit: WAIT_LIMIT });
      // A full page stops at its last event; otherwise every event up to the newest was looked at.
      examined = Math.max(start, rows.length === WAIT_LIMIT ? (rows.at(-1)?.seq ?? start) : await lastEventSeq(trx, input.runId));
      const run = await getRun(trx, input.runId);
      const runState = run?.state ?? 'cancelled';
      if (rows.length === 0 && runState === 'active') return undefined;
      return { run: input.runId, events: rows.map(eventView), timed_out: false, last_event: examined, run_state: runState };
    });
  };
  // Commits wake it at once; the timed re-check (a full reconcile) only catches leases that ran
  // out with no commit, so every few seconds is enough and keeps an idle wait cheap.
  const found = await waitForChange(orch.store, check, { timeoutMs: input.timeoutSeconds * 1000, clock: orch.clock, recheckMs: WAIT_RECHECK_MS });
  return found ?? { run: input.runId, events: [], timed_out: true, last_event: examined, run_state: 'active' };
}
