import { ConflictError, NotFoundError } from '@orch/store';
import type { BriefSettings } from '../brief.ts';
import type { Orch, Tx } from '../orch.ts';
import { latestAttempt, type AttemptRow } from '../queries/attempts.ts';
import type { AttemptView } from '../views.ts';
import { liveAttempt } from './attempts.ts';
import type { DispatchResult } from './dispatch.ts';
import { newAttempt } from './new-attempt.ts';
import { assertDependenciesDone, codeFrom } from './retry.ts';
import { assertRunOpen, requireRun } from './runs.ts';
import { requireTask } from './tasks.ts';

export interface ReassignInput {
  runId: string;
  taskId: string;
  to: string;
  body?: string | undefined;
  baseRef?: string | undefined;
  /** As for dispatch. */
  brief?: BriefSettings | undefined;
}

/**
 * `orch reassign`: cancels the live attempt (its thread is cancelled, so the old worker's next
 * write fails with lease lost) and dispatches a new attempt to `to` (code mode: a fresh worktree).
 * Also accepts a failed or expired task (then it is a retry with another agent).
 *
 * @throws NotFoundError (3); ConflictError (4) when the task was never dispatched, is done or cancelled.
 */
export async function reassign(orch: Orch, input: ReassignInput): Promise<DispatchResult & { cancelled_attempt: AttemptView | null }> {
  let cancelled: AttemptView | null = null;
  const result = await newAttempt(
    orch,
    input.runId,
    input.brief,
    async (trx) => {
      const run = await requireRun(trx, input.runId);
      const task = await requireTask(trx, run.id, input.taskId);
      assertRunOpen(run, `reassign task ${task.id}`);
      const live = await liveAttempt(trx, run.id, task.id);
      if (!live && task.state !== 'failed' && task.state !== 'expired') {
        const hint = task.state === 'pending' ? '; it was never dispatched: use dispatch --to' : '';
        throw new ConflictError(`task ${task.id} is ${task.state}; nothing to reassign${hint}`, { run: run.id, task: task.id, state: task.state });
      }
      await assertDependenciesDone(trx, run.id, task.id);
      const previous = await requirePrevious(trx, run.id, task.id);
      return {
        run,
        task,
        number: previous.number + 1,
        to: input.to,
        mode: previous.execution_mode,
        body: input.body ?? previous.body,
        code: codeFrom(previous, input.baseRef),
        replaces: live,
        reason: 'reassign',
      };
    },
    (a) => (cancelled = a),
  );
  return { ...result, cancelled_attempt: cancelled };
}

async function requirePrevious(trx: Tx, runId: string, taskId: string): Promise<AttemptRow> {
  const previous = await latestAttempt(trx, runId, taskId);
  if (!previous) throw new NotFoundError(`task ${taskId} has no previous attempt`);
  return previous;
}
