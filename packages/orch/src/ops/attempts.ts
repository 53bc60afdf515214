import { NotFoundError, readTransaction } from '@orch/store';
import type { Orch, Tx } from '../orch.ts';
import { getAttempt, listAttempts, type AttemptRow } from '../queries/attempts.ts';
import { LIVE_ATTEMPT_STATES, type OrchDatabase } from '../schema.ts';
import { attemptView, runView, taskView } from '../views.ts';
import type { DispatchResult } from './dispatch.ts';
import { requireRun } from './runs.ts';
import { requireTask } from './tasks.ts';

/** Who orch writes as on threads (the leader). */
export const LEADER = 'leader';

/** Who the leader's messages and events are recorded as: the env's author (a server token's name), else LEADER. */
export function leaderName(env: { author?: string | undefined }): string {
  return env.author ?? LEADER;
}

/** The task's newest live attempt, if it has one (there is at most one, unless the run was damaged). */
export async function liveAttempt(trx: Tx, runId: string, taskId: string): Promise<AttemptRow | undefined> {
  const live = await listAttempts(trx, { runId, taskId, states: LIVE_ATTEMPT_STATES });
  return live.at(-1);
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
