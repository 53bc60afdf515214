import { latestMessageIn, type MessageView, type ThreadView } from '@orch/inbox';
import { ConflictError, NotFoundError, writeTransaction } from '@orch/store';
import { emitIn, settleRunIn } from '../events.ts';
import { inboxTx, threadOrNull, type Orch, type Tx } from '../orch.ts';
import { listAttempts } from '../queries/attempts.ts';
import { getTask, insertTask, listDependents, type TaskRow } from '../queries/tasks.ts';
import type { OrchDatabase } from '../schema.ts';
import { attemptView, taskView, type AttemptView, type TaskView } from '../views.ts';
import { taskReadinessIn, type Readiness } from './readiness.ts';
import { reconcileThen } from './reconcile.ts';
import { assertRunOpen, requireRun } from './runs.ts';

/** @throws NotFoundError (3) */
export async function requireTask(db: Tx, runId: string, taskId: string): Promise<TaskRow> {
  const task = await getTask(db, runId, taskId);
  if (!task) throw new NotFoundError(`no task ${taskId} in run ${runId}`, { run: runId, task: taskId });
  return task;
}

export interface AddTaskInput {
  runId: string;
  taskId: string;
  title: string;
  summary?: string | undefined;
  defaultTo?: string | undefined;
  acceptance?: unknown;
  /** Higher is dispatched first; default 0. */
  priority?: number | undefined;
}

export interface AddTaskResult {
  task: TaskView;
  event: number;
}

/**
 * `orch task add`. Adding a task to a done run reopens it.
 *
 * @throws NotFoundError (3) for an unknown run; ConflictError (4) when the task id is taken or the
 *   run is cancelled.
 */
export async function addTask(orch: Orch, input: AddTaskInput): Promise<AddTaskResult> {
  return writeTransaction<OrchDatabase, AddTaskResult>(orch.store, async (trx) => {
    const run = await requireRun(trx, input.runId);
    assertRunOpen(run, `add task ${input.taskId}`);
    if (await getTask(trx, run.id, input.taskId)) {
      throw new ConflictError(`task ${input.taskId} already exists in run ${run.id}`, { run: run.id, task: input.taskId });
    }
    const now = orch.clock.now();
    const task = await insertTask(trx, {
      run_id: run.id,
      id: input.taskId,
      title: input.title,
      summary: input.summary ?? null,
      default_to: input.defaultTo ?? null,
      acceptance: input.acceptance === undefined ? null : JSON.stringify(input.acceptance),
      priority: input.priority ?? 0,
      state: 'pending',
      created_at: now,
      updated_at: now,
    });
    const event = await emitIn(trx, orch, { runId: run.id, taskId: task.id, type: 'task_added', taskState: 'pending', data: { title: task.title } });
    await settleRunIn(trx, orch, run.id);
    return { task: taskView(task), event: event.seq };
  });
}

export interface TaskAttemptDetail extends AttemptView {
  /** Null when the attempt's thread no longer exists (damage doctor reports). */
  thread: ThreadView | null;
  latest_message: MessageView | null;
}

export interface ShowTaskResult {
  task: TaskView & Readiness & { dependents: string[] };
  attempts: TaskAttemptDetail[];
}

/** `orch task show`: reconciles, then the task, its dependencies and every attempt with its thread's latest message. @throws NotFoundError (3). */
export async function showTask(orch: Orch, input: { runId: string; taskId: string }): Promise<ShowTaskResult> {
  // An unknown task is refused inside the reconcile's transaction, so the failed call writes nothing.
  return reconcileThen(orch, input.runId, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const task = await requireTask(trx, run.id, input.taskId);
    const attempts = await listAttempts(trx, { runId: run.id, taskId: task.id });
    const details: TaskAttemptDetail[] = [];
    for (const a of attempts) {
      const thread = await threadOrNull(trx, a.thread_id, orch.clock.now());
      details.push({ ...attemptView(a), thread, latest_message: thread === null ? null : await latestMessageIn(inboxTx(trx), a.thread_id) });
    }
    const ready = await taskReadinessIn(trx, task);
    return {
      task: { ...taskView(task), ...ready, dependents: await listDependents(trx, run.id, task.id) },
      attempts: details,
    };
  });
}
