import { appendMessageIn, cancelThreadIn, type MessageView } from '@orch/inbox';
import { ConflictError, NotFoundError, ValidationError, readTransaction, writeTransaction } from '@orch/store';
import { emitIn, settleRunIn } from './events.ts';
import { inboxTx, threadOrNull, type Orch, type OrchEnv, type Tx } from './orch.ts';
import { getAttempt, listAttempts, updateAttempt, type AttemptRow } from './queries/attempts.ts';
import { setRunState, type RunRow } from './queries/runs.ts';
import { listDependencies, listTasks, setTaskState, type TaskRow } from './queries/tasks.ts';
import { reconcileIn } from './reconcile.ts';
import { requireRun } from './runs.ts';
import { LIVE_ATTEMPT_STATES, type OrchDatabase } from './schema.ts';
import { requireTask } from './tasks.ts';
import { attemptView, runView, taskView, type AttemptView, type RunView, type TaskView } from './views.ts';

/** Who orch writes as on threads (the leader). */
export const LEADER = 'leader';

/** What `dispatch`, `retry` and `reassign` print: the input of `orch-worker-brief`. */
export interface DispatchResult {
  run: RunView;
  task: TaskView;
  attempt: AttemptView;
}

/** The task's newest live attempt, if it has one (there is at most one, unless the run was damaged). */
export async function liveAttempt(trx: Tx, runId: string, taskId: string): Promise<AttemptRow | undefined> {
  const live = await listAttempts(trx, { runId, taskId, states: LIVE_ATTEMPT_STATES });
  return live.at(-1);
}

/**
 * Cancels a live attempt and its thread (fencing the worker out) and logs attempt_cancelled. A
 * thread that no longer exists, or already ended, is left alone: there is nobody left to fence.
 */
export async function cancelAttemptIn(trx: Tx, env: OrchEnv, attempt: AttemptRow, reason: string): Promise<AttemptRow> {
  const now = env.clock.now();
  const thread = await threadOrNull(trx, attempt.thread_id, now);
  if (thread !== null && (thread.state === 'open' || thread.state === 'claimed' || thread.state === 'blocked')) {
    await cancelThreadIn(inboxTx(trx), env, { threadId: attempt.thread_id, by: LEADER, reason: `Attempt cancelled: ${reason}. Stop working on it.` });
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

/**
 * Whether `retry` may give `task` a new attempt, and whether that reopens it: a failed or expired
 * task may be retried; so may a done task whose latest attempt is a code attempt that was never
 * merged (its merge conflicted, say), which reopens it.
 *
 * @throws ConflictError (4) otherwise, saying why (a merged attempt's task is not reopened).
 */
export function retryReopens(task: TaskRow, previous: AttemptRow | undefined): boolean {
  if (task.state === 'failed' || task.state === 'expired') return false;
  const where = { run: task.run_id, task: task.id, state: task.state };
  if (task.state === 'done' && previous !== undefined && previous.execution_mode === 'code' && previous.state === 'done') {
    if (previous.merged_at === null) return true;
    throw new ConflictError(
      `task ${task.id} is done and attempt ${previous.number} was merged into ${previous.merged_into ?? 'its target'}` +
        `${previous.merge_commit ? ` (${previous.merge_commit.slice(0, 12)})` : ''}; a merged task is not reopened: add a new task for more work`,
      { ...where, attempt: previous.id, merged_into: previous.merged_into, merge_commit: previous.merge_commit },
    );
  }
  const hint =
    task.state === 'pending'
      ? '; dispatch it instead'
      : (LIVE_ATTEMPT_STATES as readonly string[]).includes(task.state)
        ? '; use reassign to replace a live attempt'
        : '';
  throw new ConflictError(`task ${task.id} is ${task.state}; only failed or expired tasks can be retried (and done code tasks whose attempt was not merged)${hint}`, where);
}

/** Logs that a done task is open again (`retry` of an unmerged code attempt); the new attempt sets its state. */
export async function reopenTaskIn(trx: Tx, env: OrchEnv, task: TaskRow, previous: AttemptRow): Promise<void> {
  await emitIn(trx, env, {
    runId: task.run_id,
    taskId: task.id,
    attemptId: previous.id,
    type: 'task_reopened',
    taskState: 'pending',
    data: { reason: `attempt ${previous.number} was never merged`, number: previous.number, branch: previous.branch },
  });
  await setTaskState(trx, { runId: task.run_id, id: task.id, state: 'pending', now: env.clock.now() });
}

export interface AnswerInput {
  runId: string;
  taskId: string;
  body?: string | undefined;
  payload?: Record<string, unknown> | undefined;
}

export interface AnswerResult {
  task: TaskView;
  attempt: AttemptView;
  message: MessageView;
}

/**
 * `orch answer`: replies on the blocked attempt's thread; the task goes back to running.
 *
 * @throws NotFoundError (3); ValidationError (2) without body and payload; ConflictError (4) when
 *   the task is not blocked.
 */
export async function answer(orch: Orch, input: AnswerInput): Promise<AnswerResult> {
  if (input.body === undefined && input.payload === undefined) {
    throw new ValidationError('give --body TEXT or --payload-json JSON (or both)', [{ path: '--body', message: 'is required (or --payload-json)' }]);
  }
  return writeTransaction<OrchDatabase, AnswerResult>(orch.store, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const task = await requireTask(trx, run.id, input.taskId);
    await reconcileIn(trx, orch, run.id);
    const live = await liveAttempt(trx, run.id, task.id);
    if (!live || live.state !== 'blocked') {
      const state = (await requireTask(trx, run.id, task.id)).state;
      throw new ConflictError(`task ${task.id} is ${state}, not blocked; there is no question to answer`, { run: run.id, task: task.id, state });
    }
    const body = input.body ?? JSON.stringify(input.payload);
    const { message } = await appendMessageIn(inboxTx(trx), orch, { threadId: live.thread_id, from: LEADER, kind: 'answer', body, payload: input.payload });
    const now = orch.clock.now();
    const attempt = await updateAttempt(trx, live.id, { state: 'running', last_message_id: message.id, updated_at: now });
    const updated = await setTaskState(trx, { runId: run.id, id: task.id, state: 'running', now });
    await emitIn(trx, orch, {
      runId: run.id,
      taskId: task.id,
      attemptId: live.id,
      type: 'task_answered',
      taskState: 'running',
      data: { thread_id: live.thread_id, message_id: message.id, author: LEADER, body: message.body, payload: message.payload },
    });
    return { task: taskView(updated), attempt: attemptView(attempt), message };
  });
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

/**
 * One attempt with its run and task, read-only (no reconcile): what orch-worker-brief renders.
 *
 * @throws NotFoundError (3) for an unknown attempt.
 */
export async function showAttempt(orch: Orch, input: { attemptId: string }): Promise<DispatchResult> {
  return readTransaction<OrchDatabase, DispatchResult>(orch.store, async (trx) => {
    const attempt = await getAttempt(trx, input.attemptId);
    if (!attempt) throw new NotFoundError(`no attempt ${input.attemptId} in this database`, { attempt: input.attemptId });
    const run = await requireRun(trx, attempt.run_id);
    const task = await requireTask(trx, run.id, attempt.task_id);
    return { run: runView(run), task: taskView(task), attempt: attemptView(attempt) };
  });
}
