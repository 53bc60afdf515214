import { ConflictError, NotFoundError, ValidationError } from '@orch/store';
import type { BriefSettings } from '../brief.ts';
import { emitIn } from '../events.ts';
import type { Orch, OrchEnv, Tx } from '../orch.ts';
import { latestAttempt, type AttemptRow } from '../queries/attempts.ts';
import { setTaskState, type TaskRow } from '../queries/tasks.ts';
import { LIVE_ATTEMPT_STATES } from '../schema.ts';
import type { CodeOptions } from './dispatch-worktree.ts';
import type { DispatchResult } from './dispatch.ts';
import { newAttempt } from './new-attempt.ts';
import { taskReadinessIn } from './readiness.ts';
import { assertRunOpen, requireRun } from './runs.ts';
import { requireTask } from './tasks.ts';

export interface RetryInput {
  runId: string;
  taskId: string;
  /** Default: the previous attempt's agent. */
  to?: string | undefined;
  /** Default: the previous attempt's body. */
  body?: string | undefined;
  /** Code mode: base the new worktree on this ref instead of the previous attempt's (re-resolved). */
  baseRef?: string | undefined;
  /** As for dispatch. */
  brief?: BriefSettings | undefined;
}

/**
 * `orch retry`: a new attempt (and thread; in code mode a fresh worktree and branch from the same
 * base ref, re-resolved) for a failed or expired task, reusing the previous attempt's agent,
 * execution mode and body unless overridden.
 *
 * @throws NotFoundError (3); ConflictError (4) when the task is not failed or expired.
 */
export async function retry(orch: Orch, input: RetryInput): Promise<DispatchResult> {
  return newAttempt(orch, input.runId, input.brief, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const task = await requireTask(trx, run.id, input.taskId);
    assertRunOpen(run, `retry task ${task.id}`);
    const previous = await latestAttempt(trx, run.id, task.id);
    const reopens = retryReopens(task, previous);
    await assertDependenciesDone(trx, run.id, task.id);
    if (previous === undefined) throw new NotFoundError(`task ${task.id} has no previous attempt`);
    return {
      run,
      task,
      number: previous.number + 1,
      to: input.to ?? previous.assigned_to,
      mode: previous.execution_mode,
      body: input.body ?? previous.body,
      code: codeFrom(previous, input.baseRef),
      replaces: undefined,
      reason: 'retry',
      reopens: reopens ? previous : undefined,
    };
  });
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
  throw new ConflictError(
    `task ${task.id} is ${task.state}; only failed or expired tasks can be retried (and done code tasks whose attempt was not merged)${hint}`,
    where,
  );
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

export function codeFrom(previous: AttemptRow, baseRef: string | undefined): CodeOptions | undefined {
  if (previous.execution_mode !== 'code' || previous.repo_path === null) {
    if (baseRef !== undefined) {
      throw new ValidationError(`--base-ref applies to code-mode attempts; attempt ${previous.number} of task ${previous.task_id} is analysis`, [
        { path: '--base-ref', message: 'applies to code mode only' },
      ]);
    }
    return undefined;
  }
  return {
    repoPath: previous.repo_path,
    workspaceRoot: previous.workspace_root ?? undefined,
    baseRef: baseRef ?? previous.base_ref ?? undefined,
    // Across machines again, through the same remote.
    remoteUrl: previous.remote_url ?? undefined,
  };
}

/** A dependency added after the first dispatch holds back retries and reassignments too. */
export async function assertDependenciesDone(trx: Tx, runId: string, taskId: string): Promise<void> {
  const waitingOn = (await taskReadinessIn(trx, await requireTask(trx, runId, taskId))).waiting_on;
  if (waitingOn.length > 0) {
    throw new ConflictError(`task ${taskId} waits on ${waitingOn.join(', ')}; it can start again once they are done`, {
      run: runId,
      task: taskId,
      waiting_on: waitingOn,
    });
  }
}
