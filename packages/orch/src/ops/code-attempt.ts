// The code-mode attempt diff and merge work on.
import { ConflictError, NotFoundError } from '@orch/store';
import type { Orch } from '../orch.ts';
import { getAttempt, latestAttempt, type AttemptRow } from '../queries/attempts.ts';
import { reconciledView } from './reconcile.ts';
import { requireRun } from './runs.ts';
import { requireTask } from './tasks.ts';

export interface AttemptRef {
  runId: string;
  taskId: string;
  /** Default: the task's latest attempt. */
  attemptId?: string | undefined;
}

/** The chosen code-mode attempt of a task. @throws NotFoundError (3); ConflictError (4) for an analysis attempt. */
export async function codeAttempt(orch: Orch, ref: AttemptRef): Promise<AttemptRow> {
  // As reconcile would leave it, keeping nothing: a refusal here or later writes nothing.
  return reconciledView(orch, ref.runId, async (trx) => {
    const run = await requireRun(trx, ref.runId);
    const task = await requireTask(trx, run.id, ref.taskId);
    const attempt = ref.attemptId !== undefined ? await getAttempt(trx, ref.attemptId) : await latestAttempt(trx, run.id, task.id);
    if (!attempt || attempt.run_id !== run.id || attempt.task_id !== task.id) {
      throw new NotFoundError(
        ref.attemptId !== undefined ? `no attempt ${ref.attemptId} of task ${task.id} in run ${run.id}` : `task ${task.id} has no attempts yet`,
        { run: run.id, task: task.id, attempt: ref.attemptId ?? null },
      );
    }
    if (attempt.execution_mode !== 'code' || attempt.repo_path === null || attempt.branch === null || attempt.base_commit === null) {
      throw new ConflictError(`attempt ${attempt.number} of task ${task.id} is an analysis attempt: it has no branch`, { attempt: attempt.id });
    }
    return attempt;
  });
}
