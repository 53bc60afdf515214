import { appendMessageIn, cancelThreadIn, openThreadIn, type MessageView } from '@orch/inbox';
import { ConflictError, NotFoundError, UsageError, ValidationError, readTransaction, writeTransaction } from '@orch/store';
import { emitIn, settleRunIn } from './events.ts';
import { inboxTx, type Orch, type OrchEnv, type Tx } from './orch.ts';
import { getAttempt, insertAttempt, latestAttempt, listAttempts, updateAttempt, type AttemptRow } from './queries/attempts.ts';
import { setRunState, type RunRow } from './queries/runs.ts';
import { listDependencies, listTasks, setTaskState, type TaskRow } from './queries/tasks.ts';
import { reconcile, reconcileIn } from './reconcile.ts';
import { assertRunOpen, requireRun } from './runs.ts';
import { LIVE_ATTEMPT_STATES, type ExecutionMode, type OrchDatabase, type TaskState } from './schema.ts';
import { readinessIn, requireTask } from './tasks.ts';
import { attemptView, runView, taskView, type AttemptView, type RunView, type TaskView } from './views.ts';

/** Who orch writes as on threads (the leader). */
export const LEADER = 'leader';

/** What `dispatch`, `retry` and `reassign` print: the input of `orch-worker-brief`. */
export interface DispatchResult {
  run: RunView;
  task: TaskView;
  attempt: AttemptView;
}

export interface DispatchInput {
  runId: string;
  taskId: string;
  executionMode: ExecutionMode;
  /** Default: the task's default_to. */
  to?: string | undefined;
  body: string;
  repoPath?: string | undefined;
  workspaceRoot?: string | undefined;
  baseRef?: string | undefined;
}

/**
 * `orch dispatch`: creates attempt N of a ready task and an inbox thread assigned to the worker,
 * whose first message carries the task, its acceptance criteria and the body.
 *
 * @throws NotFoundError (3); ValidationError (2) when no agent is given and the task has no
 *   default_to; ConflictError (4) when the task is not ready or the run is cancelled.
 */
export async function dispatch(orch: Orch, input: DispatchInput): Promise<DispatchResult> {
  assertModeAvailable(input.executionMode);
  return writeTransaction<OrchDatabase, DispatchResult>(orch.store, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const task = await requireTask(trx, run.id, input.taskId);
    assertRunOpen(run, `dispatch task ${task.id}`);
    await reconcileIn(trx, orch, run.id);
    await assertReady(trx, run.id, task.id);
    const to = input.to ?? task.default_to;
    if (to === null) {
      throw new ValidationError(`task ${task.id} has no default agent; give --to AGENT`, [{ path: '--to', message: 'is required (the task has no --default-to)' }]);
    }
    return createAttemptIn(trx, orch, { run, taskId: task.id, to, mode: input.executionMode, body: input.body, reason: 'dispatch' });
  });
}

function assertModeAvailable(mode: ExecutionMode): void {
  if (mode === 'code') {
    throw new UsageError('--execution-mode code (a git worktree per attempt) is not available in this build yet; use --execution-mode analysis');
  }
}

async function assertReady(trx: Tx, runId: string, taskId: string): Promise<void> {
  const { tasks, readiness } = await readinessIn(trx, runId);
  const task = tasks.find((t) => t.id === taskId);
  const r = readiness.get(taskId);
  if (!task || !r || r.ready) return;
  let why: string;
  if (task.state === 'done' || task.state === 'cancelled') why = `it is ${task.state}`;
  else if (r.waiting_on.length > 0) why = `it waits on ${r.waiting_on.join(', ')}`;
  else why = `it already has a live attempt (${task.state}); use reassign to move it`;
  throw new ConflictError(`task ${taskId} is not ready: ${why}`, { run: runId, task: taskId, state: task.state, waiting_on: r.waiting_on });
}

interface NewAttempt {
  run: RunRow;
  taskId: string;
  to: string;
  mode: ExecutionMode;
  body: string;
  reason: 'dispatch' | 'retry' | 'reassign';
}

/** Opens the thread, records attempt N+1, marks the task dispatched and logs task_dispatched. */
async function createAttemptIn(trx: Tx, env: OrchEnv, a: NewAttempt): Promise<DispatchResult> {
  const now = env.clock.now();
  const previous = await latestAttempt(trx, a.run.id, a.taskId);
  const number = (previous?.number ?? 0) + 1;
  const id = env.ids.next('at');
  const task = await requireTask(trx, a.run.id, a.taskId);
  const { thread } = await openThreadIn(inboxTx(trx), env, {
    to: a.to,
    from: LEADER,
    subject: `${task.title} [${a.run.id}/${task.id} attempt ${number}]`,
    body: a.body,
    payload: {
      run: { id: a.run.id, goal: a.run.goal, summary: a.run.summary },
      task: {
        id: task.id,
        title: task.title,
        summary: task.summary,
        acceptance: task.acceptance === null ? null : (JSON.parse(task.acceptance) as unknown),
      },
      attempt: { id, number, execution_mode: a.mode },
    },
  });
  const attempt = await insertAttempt(trx, {
    id,
    run_id: a.run.id,
    task_id: task.id,
    number,
    assigned_to: a.to,
    execution_mode: a.mode,
    thread_id: thread.id,
    state: 'dispatched',
    body: a.body,
    repo_path: null,
    workspace_root: null,
    base_ref: null,
    base_commit: null,
    worktree_path: null,
    branch: null,
    result: null,
    claims_seen: 0,
    // The first message is the leader's own; reconcile starts after it.
    last_message_id: 0,
    created_at: now,
    updated_at: now,
    ended_at: null,
  });
  const updated = await setTaskState(trx, { runId: a.run.id, id: task.id, state: 'dispatched', now });
  await emitIn(trx, env, {
    runId: a.run.id,
    taskId: task.id,
    attemptId: attempt.id,
    type: 'task_dispatched',
    taskState: 'dispatched',
    data: { number, thread_id: thread.id, assigned_to: a.to, execution_mode: a.mode, reason: a.reason },
  });
  return { run: runView(a.run), task: taskView(updated), attempt: attemptView(attempt) };
}

/** The task's live attempt, if it has one (there is at most one). */
async function liveAttempt(trx: Tx, runId: string, taskId: string): Promise<AttemptRow | undefined> {
  const live = await listAttempts(trx, { runId, taskId, states: LIVE_ATTEMPT_STATES });
  return live.at(-1);
}

export interface RetryInput {
  runId: string;
  taskId: string;
  /** Default: the previous attempt's agent. */
  to?: string | undefined;
  /** Default: the previous attempt's body. */
  body?: string | undefined;
}

/**
 * `orch retry`: a new attempt (and thread) for a failed or expired task, reusing the previous
 * attempt's agent, execution mode and body unless overridden.
 *
 * @throws NotFoundError (3); ConflictError (4) when the task is not failed or expired.
 */
export async function retry(orch: Orch, input: RetryInput): Promise<DispatchResult> {
  return writeTransaction<OrchDatabase, DispatchResult>(orch.store, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const task = await requireTask(trx, run.id, input.taskId);
    assertRunOpen(run, `retry task ${task.id}`);
    await reconcileIn(trx, orch, run.id);
    const current = await requireTask(trx, run.id, task.id);
    if (current.state !== 'failed' && current.state !== 'expired') {
      const hint =
        current.state === 'pending' ? '; dispatch it instead' : LIVE_STATES.includes(current.state) ? '; use reassign to replace a live attempt' : '';
      throw new ConflictError(`task ${task.id} is ${current.state}; only failed or expired tasks can be retried${hint}`, {
        run: run.id,
        task: task.id,
        state: current.state,
      });
    }
    const previous = await latestAttempt(trx, run.id, task.id);
    if (!previous) throw new NotFoundError(`task ${task.id} has no previous attempt`);
    return createAttemptIn(trx, orch, {
      run,
      taskId: task.id,
      to: input.to ?? previous.assigned_to,
      mode: previous.execution_mode,
      body: input.body ?? previous.body,
      reason: 'retry',
    });
  });
}

const LIVE_STATES: readonly TaskState[] = ['dispatched', 'running', 'blocked'];

export interface ReassignInput {
  runId: string;
  taskId: string;
  to: string;
  body?: string | undefined;
}

/**
 * `orch reassign`: cancels the live attempt (its thread is cancelled, so the old worker's next
 * write fails with lease lost) and dispatches a new attempt to `to`. Also accepts a failed or
 * expired task (then it is a retry with another agent).
 *
 * @throws NotFoundError (3); ConflictError (4) when the task was never dispatched, is done or cancelled.
 */
export async function reassign(orch: Orch, input: ReassignInput): Promise<DispatchResult & { cancelled_attempt: AttemptView | null }> {
  return writeTransaction(orch.store, async (trx: Tx) => {
    const run = await requireRun(trx, input.runId);
    const task = await requireTask(trx, run.id, input.taskId);
    assertRunOpen(run, `reassign task ${task.id}`);
    await reconcileIn(trx, orch, run.id);
    const current = await requireTask(trx, run.id, task.id);
    const live = await liveAttempt(trx, run.id, task.id);
    if (!live && current.state !== 'failed' && current.state !== 'expired') {
      const hint = current.state === 'pending' ? '; it was never dispatched: use dispatch --to' : '';
      throw new ConflictError(`task ${task.id} is ${current.state}; nothing to reassign${hint}`, { run: run.id, task: task.id, state: current.state });
    }
    const previous = live ?? (await latestAttempt(trx, run.id, task.id));
    if (!previous) throw new NotFoundError(`task ${task.id} has no previous attempt`);
    const cancelled = live ? await cancelAttemptIn(trx, orch, live, `reassigned to ${input.to}`) : null;
    const result = await createAttemptIn(trx, orch, {
      run,
      taskId: task.id,
      to: input.to,
      mode: previous.execution_mode,
      body: input.body ?? previous.body,
      reason: 'reassign',
    });
    return { ...result, cancelled_attempt: cancelled ? attemptView(cancelled) : null };
  });
}

/** Cancels a live attempt and its thread (fencing the worker out) and logs attempt_cancelled. */
async function cancelAttemptIn(trx: Tx, env: OrchEnv, attempt: AttemptRow, reason: string): Promise<AttemptRow> {
  const now = env.clock.now();
  await cancelThreadIn(inboxTx(trx), env, { threadId: attempt.thread_id, by: LEADER, reason: `Attempt cancelled: ${reason}. Stop working on it.` });
  const updated = await updateAttempt(trx, attempt.id, { state: 'cancelled', updated_at: now, ended_at: now });
  await emitIn(trx, env, {
    runId: attempt.run_id,
    taskId: attempt.task_id,
    attemptId: attempt.id,
    type: 'attempt_cancelled',
    data: { number: attempt.number, thread_id: attempt.thread_id, reason },
  });
  return updated;
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
      const live = await liveAttempt(trx, run.id, task.id);
      if (live) {
        await cancelAttemptIn(trx, orch, live, reason);
        out.cancelled_attempts.push(live.id);
      }
      await setTaskState(trx, { runId: run.id, id: task.id, state: 'cancelled', now });
      await emitIn(trx, orch, { runId: run.id, taskId: task.id, type: 'task_cancelled', taskState: 'cancelled', data: { reason } });
      out.cancelled.push(task.id);
    }
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

/** Unfinished tasks that depend (transitively) on a cancelled task. */
async function strandedIn(trx: Tx, runId: string): Promise<string[]> {
  const tasks = await listTasks(trx, runId);
  const edges = await listDependencies(trx, runId);
  const state = new Map(tasks.map((t) => [t.id, t.state]));
  const dead = new Set(tasks.filter((t) => t.state === 'cancelled').map((t) => t.id));
  let grew = true;
  while (grew) {
    grew = false;
    for (const e of edges) {
      if (dead.has(e.depends_on) && !dead.has(e.task_id) && state.get(e.task_id) !== 'done') {
        dead.add(e.task_id);
        grew = true;
      }
    }
  }
  return tasks.filter((t) => dead.has(t.id) && t.state !== 'cancelled').map((t) => t.id);
}

export interface CleanupInput {
  runId: string;
  allCompleted?: boolean | undefined;
  attemptId?: string | undefined;
  dryRun?: boolean | undefined;
}

export interface CleanupEntry {
  attempt: string;
  task: string;
  number: number;
  state: AttemptView['state'];
  execution_mode: ExecutionMode;
  worktree_path: string | null;
  /** Whether something was (or, with --dry-run, would be) removed from disk. */
  removed: boolean;
  note: string;
}

export interface CleanupResult {
  run: string;
  dry_run: boolean;
  attempts: CleanupEntry[];
}

/**
 * `orch cleanup`: removes what finished attempts left on disk. Analysis attempts have nothing on
 * disk, so they are listed with removed: false.
 *
 * @throws NotFoundError (3) for an unknown run or attempt; ConflictError (4) for a live attempt.
 */
export async function cleanup(orch: Orch, input: CleanupInput): Promise<CleanupResult> {
  await reconcile(orch, input.runId);
  return readTransaction<OrchDatabase, CleanupResult>(orch.store, async (trx) => {
    const run = await requireRun(trx, input.runId);
    let attempts: AttemptRow[];
    if (input.attemptId !== undefined) {
      const a = await getAttempt(trx, input.attemptId);
      if (!a || a.run_id !== run.id) throw new NotFoundError(`no attempt ${input.attemptId} in run ${run.id}`, { run: run.id, attempt: input.attemptId });
      if (LIVE_ATTEMPT_STATES.includes(a.state)) {
        throw new ConflictError(`attempt ${a.id} is ${a.state}; cancel or finish it before cleaning up`, { attempt: a.id, state: a.state });
      }
      attempts = [a];
    } else {
      attempts = (await listAttempts(trx, { runId: run.id })).filter((a) => !LIVE_ATTEMPT_STATES.includes(a.state));
    }
    return {
      run: run.id,
      dry_run: input.dryRun === true,
      attempts: attempts.map((a) => ({
        attempt: a.id,
        task: a.task_id,
        number: a.number,
        state: a.state,
        execution_mode: a.execution_mode,
        worktree_path: a.worktree_path,
        removed: false,
        note: 'analysis attempt: nothing on disk',
      })),
    };
  });
}
