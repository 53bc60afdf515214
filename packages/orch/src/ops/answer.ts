import { appendMessageIn, type MessageView } from '@orch/inbox';
import { ConflictError, ValidationError, writeTransaction } from '@orch/store';
import { emitIn } from '../events.ts';
import { inboxTx, type Orch } from '../orch.ts';
import { updateAttempt } from '../queries/attempts.ts';
import { setTaskState } from '../queries/tasks.ts';
import type { OrchDatabase } from '../schema.ts';
import { attemptView, taskView, type AttemptView, type TaskView } from '../views.ts';
import { leaderName, liveAttempt } from './attempts.ts';
import { reconcileIn } from './reconcile.ts';
import { requireRun } from './runs.ts';
import { requireTask } from './tasks.ts';

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
    if (live?.state !== 'blocked') {
      const state = (await requireTask(trx, run.id, task.id)).state;
      throw new ConflictError(`task ${task.id} is ${state}, not blocked; there is no question to answer`, { run: run.id, task: task.id, state });
    }
    const body = input.body ?? JSON.stringify(input.payload);
    const { message } = await appendMessageIn(inboxTx(trx), orch, {
      threadId: live.thread_id,
      from: leaderName(orch),
      kind: 'answer',
      body,
      payload: input.payload,
    });
    const now = orch.clock.now();
    const attempt = await updateAttempt(trx, live.id, { state: 'running', last_message_id: message.id, updated_at: now });
    const updated = await setTaskState(trx, { runId: run.id, id: task.id, state: 'running', now });
    await emitIn(trx, orch, {
      runId: run.id,
      taskId: task.id,
      attemptId: live.id,
      type: 'task_answered',
      taskState: 'running',
      data: { thread_id: live.thread_id, message_id: message.id, author: leaderName(orch), body: message.body, payload: message.payload },
    });
    return { task: taskView(updated), attempt: attemptView(attempt), message };
  });
}
