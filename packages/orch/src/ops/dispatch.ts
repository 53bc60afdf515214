import { ConflictError, ValidationError } from '@orch/store';
import type { BriefSettings } from '../brief.ts';
import type { Orch, Tx } from '../orch.ts';
import { latestAttempt } from '../queries/attempts.ts';
import { getTask } from '../queries/tasks.ts';
import type { ExecutionMode } from '../schema.ts';
import type { AttemptView, RunView, TaskView } from '../views.ts';
import { resolveBase, type CodeOptions } from './dispatch-worktree.ts';
import { newAttempt } from './new-attempt.ts';
import { taskReadinessIn } from './readiness.ts';
import { assertRunOpen, requireRun } from './runs.ts';
import { requireTask } from './tasks.ts';

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
  /** Required for code mode (the CLI defaults repoPath to the current directory). */
  code?: CodeOptions | undefined;
  /** How the brief rendered into the task message reaches the database and the inbox CLI (default: the database's path made absolute, and `inbox` on PATH). */
  brief?: BriefSettings | undefined;
}

/**
 * `orch dispatch`: creates attempt N of a ready task and an inbox thread assigned to the worker,
 * whose first message carries the task, its acceptance criteria, the body and (code mode) the
 * worktree. Code mode first creates branch `orch/<run>/<task>/<N>` at the base commit and a
 * worktree for it at `<workspace-root>/<run>/<task>/<N>`.
 *
 * @throws NotFoundError (3); ValidationError (2) when no agent is given and the task has no
 *   default_to, or for a bad repository, ref or path; ConflictError (4) when the task is not ready
 *   or the run is cancelled; GitFailure (4) when git refuses.
 */
export async function dispatch(orch: Orch, input: DispatchInput): Promise<DispatchResult> {
  if (input.executionMode === 'code' && !input.code) {
    throw new ValidationError('code mode needs a repository (--repo-path)', [{ path: '--repo-path', message: 'is required for code mode' }]);
  }
  if (input.executionMode === 'analysis' && input.code) {
    throw new ValidationError('--repo-path, --workspace-root and --base-ref apply to --execution-mode code only');
  }
  // A bad repository or ref is refused before anything is written.
  if (input.code) await resolveBase(input.code);
  return newAttempt(orch, input.runId, input.brief, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const task = await requireTask(trx, run.id, input.taskId);
    assertRunOpen(run, `dispatch task ${task.id}`);
    await assertReady(trx, run.id, task.id);
    const to = input.to ?? task.default_to;
    if (to === null) {
      throw new ValidationError(`task ${task.id} has no default agent; give --to AGENT`, [
        { path: '--to', message: 'is required (the task has no --default-to)' },
      ]);
    }
    return {
      run,
      task,
      number: await nextNumber(trx, run.id, task.id),
      to,
      mode: input.executionMode,
      body: input.body,
      code: input.code,
      replaces: undefined,
      reason: 'dispatch',
    };
  });
}

async function nextNumber(trx: Tx, runId: string, taskId: string): Promise<number> {
  return ((await latestAttempt(trx, runId, taskId))?.number ?? 0) + 1;
}

async function assertReady(trx: Tx, runId: string, taskId: string): Promise<void> {
  const task = await getTask(trx, runId, taskId);
  if (!task) return;
  const r = await taskReadinessIn(trx, task);
  if (r.ready) return;
  let why: string;
  if (task.state === 'done' || task.state === 'cancelled') why = `it is ${task.state}`;
  else if (r.waiting_on.length > 0) why = `it waits on ${r.waiting_on.join(', ')}`;
  else why = `it already has a live attempt (${task.state}); use reassign to move it`;
  throw new ConflictError(`task ${taskId} is not ready: ${why}`, { run: runId, task: taskId, state: task.state, waiting_on: r.waiting_on });
}
