import { cancelThreadIn } from '@orch/inbox';
import { ConflictError, NotFoundError, writeTransaction } from '@orch/store';
import { emitIn, settleRunIn } from '../events.ts';
import { inboxTx, threadOrNull, type Orch, type OrchEnv, type Tx } from '../orch.ts';
import { listAttempts, updateAttempt, type AttemptRow } from '../queries/attempts.ts';
import { setRunState, type RunRow } from '../queries/runs.ts';
import { listDependencies, listTasks, setTaskState, type TaskRow } from '../queries/tasks.ts';
import { LIVE_ATTEMPT_STATES, type OrchDatabase } from '../schema.ts';
import { runView, type RunView } from '../views.ts';
import { leaderName } from './attempts.ts';
import { reconcileIn } from './reconcile.ts';
import { requireRun } from './runs.ts';
import { requireTask } from './tasks.ts';

/**
 * Cancels a live attempt and its thread (fencing the worker out) and logs attempt_cancelled. A
 * thread that no longer exists, or already ended, is left alone: there is nobody left to fence.
 */
export async function cancelAttemptIn(trx: Tx, env: OrchEnv, attempt: AttemptRow, reason: string): Promise<AttemptRow> {
  const now = env.clock.now();
  const thread = await threadOrNull(trx, attempt.thread_id, now);
  if (thread !== null && (thread.state === 'open' || thread.state === 'claimed' || thread.state === 'blocked')) {
    await cancelThreadIn(inboxTx(trx), env, { threadId: attempt.thread_id, by: leaderName(env), reason: `Attempt cancelled: ${reason}. Stop working on it.` });
  }
  const updated = await updateAttempt(trx, attempt.id, { state: 'cancelled', updated_at: now, ended_at: now });
  await emitIn(trx, env, {
    runId: attempt.run_id,
    taskId: attempt.task_id,
    attemptId: attempt.id,
    type: 'attempt_cancelled',
    data: { number: attempt.number, thread_id: attempt.thread_id, reason, ...(thread === null ? { thread_missing: true } : {}) },
  });
  return updated;
}

/**
 * Cancels every live attempt of a task, oldest first: normally there is one, but a damaged run can
 * hold several, and each one's worker must be fenced out. Returns the attempts it cancelled.
 */
export async function cancelLiveAttemptsIn(trx: Tx, env: OrchEnv, runId: string, taskId: string, reason: string): Promise<AttemptRow[]> {
  const out: AttemptRow[] = [];
  for (const a of await listAttempts(trx, { runId, taskId, states: LIVE_ATTEMPT_STATES })) out.push(await cancelAttemptIn(trx, env, a, reason));
  return out;
}

export interface CancelInput {
  runId: string;
  /** Without it, the whole run is cancelled. */
  taskId?: string | undefined;
  reason?: string | undefined;
}

export interface CancelResult {
  run: RunView;
  /** Tasks this call cancelled (empty when they already were). */
  cancelled: string[];
  /** Attempts whose threads were cancelled (their workers are fenced out). */
  cancelled_attempts: string[];
  /** Unfinished tasks that depend, directly or not, on a cancelled task: they can never become ready. */
  stranded: string[];
}

/**
 * `orch cancel`: cancels one task (and its live attempt), or the whole run (every unfinished task).
 * Cancelling what is already cancelled changes nothing.
 *
 * @throws NotFoundError (3); ConflictError (4) for a done task or a done run.
 */
export async function cancel(orch: Orch, input: CancelInput): Promise<CancelResult> {
  return writeTransaction<OrchDatabase, CancelResult>(orch.store, async (trx) => {
    let run = await requireRun(trx, input.runId);
    if (input.taskId !== undefined) await requireTask(trx, run.id, input.taskId);
    await reconcileIn(trx, orch, run.id);
    run = await requireRun(trx, run.id); // reconcile may have finished the run
    const tasks = await listTasks(trx, run.id);
    const reason = input.reason ?? (input.taskId === undefined ? 'run cancelled' : 'task cancelled');
    const out: CancelResult = { run: runView(run), cancelled: [], cancelled_attempts: [], stranded: [] };
    let targets: TaskRow[];
    if (input.taskId !== undefined) {
      const task = tasks.find((t) => t.id === input.taskId);
      if (!task) throw new NotFoundError(`no task ${input.taskId} in run ${run.id}`);
      if (task.state === 'done') throw new ConflictError(`task ${task.id} is done; it cannot be cancelled`, { run: run.id, task: task.id, state: task.state });
      targets = task.state === 'cancelled' ? [] : [task];
    } else {
      if (run.state === 'done') throw new ConflictError(`run ${run.id} is done; there is nothing left to cancel`, { run: run.id, state: run.state });
      targets = tasks.filter((t) => t.state !== 'done' && t.state !== 'cancelled');
    }
    const now = orch.clock.now();
    for (const task of targets) {
      for (const a of await cancelLiveAttemptsIn(trx, orch, run.id, task.id, reason)) out.cancelled_attempts.push(a.id);
      await setTaskState(trx, { runId: run.id, id: task.id, state: 'cancelled', now });
      await emitIn(trx, orch, { runId: run.id, taskId: task.id, type: 'task_cancelled', taskState: 'cancelled', data: { reason } });
      out.cancelled.push(task.id);
    }
    // A damaged run can hold live attempts on tasks that are already finished (set by hand, say):
    // their workers are fenced out too.
    const leftovers = await listAttempts(trx, { runId: run.id, ...(input.taskId !== undefined ? { taskId: input.taskId } : {}), states: LIVE_ATTEMPT_STATES });
    for (const a of leftovers) out.cancelled_attempts.push((await cancelAttemptIn(trx, orch, a, reason)).id);
    if (input.taskId === undefined && run.state !== 'cancelled') {
      run = await setRunStateCancelled(trx, orch, run, reason);
    } else {
      await settleRunIn(trx, orch, run.id);
      run = await requireRun(trx, run.id);
      out.stranded = await strandedIn(trx, run.id);
    }
    out.run = runView(run);
    return out;
  });
}

async function setRunStateCancelled(trx: Tx, env: OrchEnv, run: RunRow, reason: string): Promise<RunRow> {
  const updated = await setRunState(trx, { id: run.id, state: 'cancelled', now: env.clock.now() });
  await emitIn(trx, env, { runId: run.id, type: 'run_cancelled', data: { reason } });
  return updated;
}

/**
 * Unfinished tasks that depend (transitively) on a cancelled task: a breadth-first walk from the
 * cancelled tasks along reversed edges, linear in the run's size (no recursion, no repeated passes).
 */
export async function strandedIn(trx: Tx, runId: string): Promise<string[]> {
  const tasks = await listTasks(trx, runId);
  const edges = await listDependencies(trx, runId);
  const state = new Map(tasks.map((t) => [t.id, t.state]));
  const dependents = new Map<string, string[]>();
  for (const e of edges) {
    const list = dependents.get(e.depends_on);
    if (list) list.push(e.task_id);
    else dependents.set(e.depends_on, [e.task_id]);
  }
  const queue = tasks.filter((t) => t.state === 'cancelled').map((t) => t.id);
  const dead = new Set(queue);
  for (let head = 0; head < queue.length; head++) {
    for (const d of dependents.get(queue[head] as string) ?? []) {
      if (dead.has(d) || state.get(d) === 'done') continue;
      dead.add(d);
      queue.push(d);
    }
  }
  return tasks.filter((t) => dead.has(t.id) && t.state !== 'cancelled').map((t) => t.id);
}
