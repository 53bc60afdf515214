import fs from 'node:fs';
import { latestMessageIn, requireThread, threadView, type MessageView, type ThreadView } from '@orch/inbox';
import { readTransaction, waitForChange } from '@orch/store';
import { inboxTx, type Orch } from './orch.ts';
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
  /** `worktree_exists`: code mode only (null otherwise); false means the worktree is gone (removed by cleanup, or by hand). */
  latest_attempt: (AttemptView & { thread: ThreadView; worktree_exists: boolean | null }) | null;
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
    for (const a of attempts) latest.set(a.task_id, a);
    const out: StatusTask[] = [];
    for (const t of tasks) {
      const a = latest.get(t.id);
      let latestAttempt: StatusTask['latest_attempt'] = null;
      let latestMessage: MessageView | null = null;
      if (a) {
        const thread = threadView(await requireThread(inboxTx(trx), a.thread_id), orch.clock.now());
        const exists = a.worktree_path === null ? null : a.worktree_removed_at === null && fs.existsSync(a.worktree_path);
        latestAttempt = { ...attemptView(a), thread, worktree_exists: exists };
        latestMessage = await latestMessageIn(inboxTx(trx), a.thread_id);
      }
      out.push({
        ...taskView(t),
        ...(readiness.get(t.id) ?? { depends_on: [], waiting_on: [], ready: false }),
        attempts: attempts.filter((x) => x.task_id === t.id).length,
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
  /** Default: the run's last event when the call starts (only new events count). */
  afterEvent?: number | undefined;
  timeoutSeconds: number;
}

export interface WaitResult {
  run: string;
  events: EventView[];
  timed_out: boolean;
  /** Pass as `--after-event` next time: the last returned event, or the cursor you gave. */
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
 * @throws NotFoundError (3).
 */
export async function waitEvents(orch: Orch, input: WaitInput): Promise<WaitResult> {
  const start = await readTransaction<OrchDatabase, number>(orch.store, async (trx) => {
    const run = await requireRun(trx, input.runId);
    return input.afterEvent ?? (await lastEventSeq(trx, run.id));
  });
  const check = async (): Promise<WaitResult | undefined> => {
    await reconcile(orch, input.runId);
    return readTransaction<OrchDatabase, WaitResult | undefined>(orch.store, async (trx) => {
      const rows = await listEvents(trx, { runId: input.runId, afterSeq: start, types: input.types, limit: WAIT_LIMIT });
      const run = await getRun(trx, input.runId);
      const runState = run?.state ?? 'cancelled';
      if (rows.length === 0 && runState === 'active') return undefined;
      return { run: input.runId, events: rows.map(eventView), timed_out: false, last_event: rows.at(-1)?.seq ?? start, run_state: runState };
    });
  };
  // Commits wake it at once; the timed re-check (a full reconcile) only catches leases that ran
  // out with no commit, so every few seconds is enough and keeps an idle wait cheap.
  const found = await waitForChange(orch.store, check, { timeoutMs: input.timeoutSeconds * 1000, clock: orch.clock, recheckMs: WAIT_RECHECK_MS });
  return found ?? { run: input.runId, events: [], timed_out: true, last_event: start, run_state: 'active' };
}
