import type { OrchEnv, Tx } from './orch.ts';
import { insertEvent, lastEventSeq } from './queries/events.ts';
import { getRun, setRunState } from './queries/runs.ts';
import { taskCounts } from './queries/tasks.ts';
import type { EventType, TaskState } from './schema.ts';
import { eventView, type EventView } from './views.ts';

export interface NewEvent {
  runId: string;
  taskId?: string | undefined;
  attemptId?: string | undefined;
  type: EventType;
  /** The task's state after this event (task events only). */
  taskState?: TaskState | undefined;
  data?: Record<string, unknown>;
}

/**
 * Appends an event to the run's log inside the caller's write transaction, so the log and the
 * state change it reports commit (or roll back) together. Numbers are 1, 2, 3, ... per run: the
 * next one is read and written under the same write lock, so there are no gaps or duplicates.
 */
export async function emitIn(trx: Tx, env: OrchEnv, event: NewEvent): Promise<EventView> {
  const seq = (await lastEventSeq(trx, event.runId)) + 1;
  const data = { ...(event.taskState !== undefined ? { task_state: event.taskState } : {}), ...event.data };
  const row = await insertEvent(trx, {
    run_id: event.runId,
    seq,
    task_id: event.taskId ?? null,
    attempt_id: event.attemptId ?? null,
    type: event.type,
    data: JSON.stringify(data),
    created_at: env.clock.now(),
  });
  return eventView(row);
}

/**
 * Moves an active run to done once every task is done or cancelled (emitting run_done), and a
 * done run back to active when it gains unfinished work (run_reopened). A cancelled run stays so.
 */
export async function settleRunIn(trx: Tx, env: OrchEnv, runId: string): Promise<void> {
  const run = await getRun(trx, runId);
  if (!run || run.state === 'cancelled') return;
  const counts = await taskCounts(trx, runId);
  const finished = counts.total > 0 && counts.unfinished === 0;
  const now = env.clock.now();
  if (run.state === 'active' && finished) {
    await setRunState(trx, { id: runId, state: 'done', now });
    await emitIn(trx, env, { runId, type: 'run_done', data: { done: counts.done, cancelled: counts.total - counts.done } });
  } else if (run.state === 'done' && !finished) {
    await setRunState(trx, { id: runId, state: 'active', now });
    await emitIn(trx, env, { runId, type: 'run_reopened', data: {} });
  }
}
