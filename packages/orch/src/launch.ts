import { openThreadIn, type TaskPayload, type TaskPayloadAttempt } from '@orch/inbox';
import { ConflictError, NotFoundError, ValidationError, failpoint, parseStoredJson, readTransaction, writeTransaction } from '@orch/store';
import path from 'node:path';
import { LEADER, cancelLiveAttemptsIn, liveAttempt, reopenTaskIn, retryReopens, type DispatchResult } from './attempts.ts';
import { renderWorkerBrief, type BriefSettings } from './brief.ts';
import { emitIn, settleRunIn } from './events.ts';
import { addWorktree } from './attempt-worktree.ts';
import { makeDirs, removeEmptyParents } from './dirs.ts';
import { checkRef, currentBranch, deleteBranch, removeWorktree, repoRoot, resolveCommit } from './git.ts';
import { reclaimLeftover } from './leftovers.ts';
import { checkWorkspaceRoot, ignoreInside } from './workspace-root.ts';
import { inboxTx, type Orch, type OrchEnv, type Tx } from './orch.ts';
import { dropMarker, takeMarker } from './marker.ts';
import { databaseId } from './owner.ts';
import { attemptByWorktree, insertAttempt, latestAttempt, type AttemptRow } from './queries/attempts.ts';
import type { RunRow } from './queries/runs.ts';
import { getTask, setTaskState, type TaskRow } from './queries/tasks.ts';
import { reconcileIn, writeOrRollBack } from './reconcile.ts';
import { assertRunOpen, requireRun } from './runs.ts';
import { LIVE_ATTEMPT_STATES, type ExecutionMode, type OrchDatabase } from './schema.ts';
import { requireTask, taskReadinessIn } from './tasks.ts';
import { attemptView, runView, taskView, type AttemptView } from './views.ts';

/** Where code-mode worktrees go when no --workspace-root is given, relative to the repository. */
export const DEFAULT_WORKSPACE_ROOT = '.orch/worktrees';

/** Code-mode settings as the leader gave them (paths absolute; refs unresolved). */
export interface CodeOptions {
  /** A directory inside the repository. */
  repoPath: string;
  /** Default `<repository>/.orch/worktrees`. */
  workspaceRoot?: string | undefined;
  /** Default: the repository's current branch. */
  baseRef?: string | undefined;
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

/** A new attempt, fully decided except for the git work. */
interface Plan {
  run: RunRow;
  task: TaskRow;
  number: number;
  to: string;
  mode: ExecutionMode;
  body: string;
  code: CodeOptions | undefined;
  /** reassign: the live attempt to cancel first (with any other live attempt of the task). */
  replaces: AttemptRow | undefined;
  reason: 'dispatch' | 'retry' | 'reassign';
  /** retry of a done task whose code attempt (this one) was never merged: the task reopens. */
  reopens?: AttemptRow | undefined;
}

/** A worktree made for a plan, before the attempt row exists. */
interface Workspace {
  repo: string;
  root: string;
  baseRef: string;
  baseCommit: string;
  branch: string;
  dir: string;
  /** `<dir>.dispatch`: this process is making the worktree (see marker.ts); removed once recorded. */
  marker: string;
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
  return launch(orch, input.runId, input.brief, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const task = await requireTask(trx, run.id, input.taskId);
    assertRunOpen(run, `dispatch task ${task.id}`);
    await assertReady(trx, run.id, task.id);
    const to = input.to ?? task.default_to;
    if (to === null) {
      throw new ValidationError(`task ${task.id} has no default agent; give --to AGENT`, [{ path: '--to', message: 'is required (the task has no --default-to)' }]);
    }
    return { run, task, number: await nextNumber(trx, run.id, task.id), to, mode: input.executionMode, body: input.body, code: input.code, replaces: undefined, reason: 'dispatch' };
  });
}

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
  return launch(orch, input.runId, input.brief, async (trx) => {
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
  const result = await launch(
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

/**
 * The shared shape of dispatch, retry and reassign. First, in one write transaction: fold in worker
 * activity, decide, and (analysis mode) record the attempt, so a refusal rolls everything back.
 * Code mode leaves that transaction with the decision, makes the worktree with git outside any
 * transaction, then decides again and records the attempt in a second one. If the decision changed
 * meanwhile or the write fails, the fresh worktree and branch are removed again. A crash between
 * the two leaves a worktree no attempt owns: `cleanup --all-completed` reports it, and the next
 * dispatch of that attempt number takes its place if it holds no work.
 */
async function launch(
  orch: Orch,
  runId: string,
  brief: BriefSettings | undefined,
  decide: (trx: Tx) => Promise<Plan>,
  onCancelled?: (a: AttemptView) => void,
): Promise<DispatchResult> {
  const settings = brief ?? { db: path.resolve(orch.store.path), inbox: 'inbox' };
  const record = async (trx: Tx, plan: Plan, ws: Workspace | undefined): Promise<DispatchResult> => {
    if (plan.replaces) {
      const cancelled = await cancelLiveAttemptsIn(trx, orch, plan.run.id, plan.task.id, `reassigned to ${plan.to}`);
      const newest = cancelled.at(-1);
      if (newest) onCancelled?.(attemptView(newest));
    }
    if (plan.reopens) await reopenTaskIn(trx, orch, plan.task, plan.reopens);
    const done = await createAttemptIn(trx, orch, plan, ws, settings);
    if (!plan.reopens) return done;
    await settleRunIn(trx, orch, plan.run.id); // a done run is active again
    return { ...done, run: runView(await requireRun(trx, plan.run.id)) };
  };
  const first = await writeOrRollBack<{ plan: Plan; done?: DispatchResult }>(orch, async (trx, rollBack) => {
    await reconcileIn(trx, orch, runId);
    const plan = await decide(trx);
    // Code mode records in a second transaction, after the git work, that reconciles again: this
    // one keeps nothing, so a refusal at any later step leaves the database as it was.
    if (plan.mode === 'code' && plan.code) return rollBack({ plan });
    return { plan, done: await record(trx, plan, undefined) };
  });
  if (first.done) return first.done;
  const plan = first.plan;
  failpoint('dispatch:before-worktree');
  const ws = await prepareWorkspace(orch, plan);
  failpoint('dispatch:after-worktree');
  let done: DispatchResult;
  try {
    done = await writeTransaction<OrchDatabase, DispatchResult>(orch.store, async (trx) => {
      await reconcileIn(trx, orch, runId);
      const again = await decide(trx);
      if (again.number !== plan.number || again.mode !== plan.mode) {
        throw new ConflictError(`task ${again.task.id} changed while its worktree was being made; run the command again`, { task: again.task.id });
      }
      return record(trx, again, ws);
    });
  } catch (err) {
    await discardWorkspace(ws);
    throw err;
  }
  dropMarker(ws.marker);
  return done;
}

/** The repository and base commit code mode would use: checked before anything is written. */
export async function resolveBase(code: CodeOptions): Promise<{ repo: string; baseRef: string; baseCommit: string; root: string }> {
  const repo = await repoRoot(code.repoPath);
  let baseRef = code.baseRef;
  if (baseRef === undefined) baseRef = (await currentBranch(repo)) ?? 'HEAD';
  checkRef(baseRef, '--base-ref');
  const baseCommit = await resolveCommit(repo, baseRef);
  const root = await checkWorkspaceRoot(repo, path.resolve(repo, code.workspaceRoot ?? DEFAULT_WORKSPACE_ROOT));
  return { repo, baseRef, baseCommit, root };
}

async function prepareWorkspace(orch: Orch, plan: Plan): Promise<Workspace> {
  const { repo, baseRef, baseCommit, root } = await resolveBase(plan.code as CodeOptions);
  const dir = path.join(root, plan.run.id, plan.task.id, String(plan.number));
  if (path.relative(root, dir).startsWith('..')) throw new ValidationError(`worktree path ${dir} escapes ${root}`);
  const branch = `orch/${plan.run.id}/${plan.task.id}/${plan.number}`;
  makeDirs(path.dirname(dir));
  // Refused while another live dispatch is making this very worktree; taken over from a dead one.
  const marker = takeMarker(dir);
  try {
    // Read again under the marker: another leader's dispatch of this attempt may have recorded it
    // (and let go of its marker) since this one decided.
    const owner = await readTransaction<OrchDatabase, AttemptRow | undefined>(orch.store, (trx) => attemptByWorktree(trx, dir));
    if (owner) {
      throw new ConflictError(`task ${plan.task.id} was dispatched by someone else meanwhile (attempt ${owner.id}); see \`orch status\``, {
        task: plan.task.id,
        attempt: owner.id,
      });
    }
    // No attempt owns this number and no live dispatch is making it, so anything already here
    // was left by an interrupted dispatch: of this database (taken over if it holds no work), or
    // of another one sharing the repository and the run id (never touched; see owner.ts).
    const me = await databaseId(orch);
    await reclaimLeftover(repo, dir, branch, me);
    await addWorktree(repo, dir, branch, baseCommit, me);
    await ignoreInside(repo, root);
  } catch (err) {
    dropMarker(marker);
    removeEmptyParents(path.dirname(dir), root);
    throw err;
  }
  return { repo, root, baseRef, baseCommit, branch, dir, marker };
}

async function discardWorkspace(ws: Workspace): Promise<void> {
  // The branch is brand new and the worktree untouched: nothing of anyone's is lost.
  await removeWorktree(ws.repo, ws.dir, true).catch(() => undefined);
  await deleteBranch(ws.repo, ws.branch).catch(() => undefined);
  dropMarker(ws.marker);
  removeEmptyParents(path.dirname(ws.dir), ws.root);
}

function codeFrom(previous: AttemptRow, baseRef: string | undefined): CodeOptions | undefined {
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
  };
}

async function requirePrevious(trx: Tx, runId: string, taskId: string): Promise<AttemptRow> {
  const previous = await latestAttempt(trx, runId, taskId);
  if (!previous) throw new NotFoundError(`task ${taskId} has no previous attempt`);
  return previous;
}

async function nextNumber(trx: Tx, runId: string, taskId: string): Promise<number> {
  return ((await latestAttempt(trx, runId, taskId))?.number ?? 0) + 1;
}

/** A dependency added after the first dispatch holds back retries and reassignments too. */
async function assertDependenciesDone(trx: Tx, runId: string, taskId: string): Promise<void> {
  const waitingOn = (await taskReadinessIn(trx, await requireTask(trx, runId, taskId))).waiting_on;
  if (waitingOn.length > 0) {
    throw new ConflictError(`task ${taskId} waits on ${waitingOn.join(', ')}; it can start again once they are done`, {
      run: runId,
      task: taskId,
      waiting_on: waitingOn,
    });
  }
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

/**
 * Opens the thread, records attempt N, marks the task dispatched and logs task_dispatched. The
 * thread's task message carries the task payload (see @orch/inbox's task-payload.ts) with the
 * worker's brief rendered into it.
 */
async function createAttemptIn(trx: Tx, env: OrchEnv, plan: Plan, ws: Workspace | undefined, settings: BriefSettings): Promise<DispatchResult> {
  const now = env.clock.now();
  const { run, task, number } = plan;
  const id = env.ids.next('at');
  const threadId = env.ids.next('th');
  const worktree = {
    repo_path: ws?.repo ?? null,
    workspace_root: ws?.root ?? null,
    base_ref: ws?.baseRef ?? null,
    base_commit: ws?.baseCommit ?? null,
    worktree_path: ws?.dir ?? null,
    branch: ws?.branch ?? null,
  };
  const payload: Omit<TaskPayload, 'brief'> = {
    run: { id: run.id, goal: run.goal, summary: run.summary },
    task: {
      id: task.id,
      title: task.title,
      summary: task.summary,
      acceptance: task.acceptance === null ? null : parseStoredJson(task.acceptance),
    },
    attempt: taskAttempt(plan, id, ws),
  };
  const brief = renderWorkerBrief({ payload, agent: plan.to, threadId, body: plan.body, settings });
  const { thread, message } = await openThreadIn(inboxTx(trx), env, {
    id: threadId,
    to: plan.to,
    from: LEADER,
    subject: `${task.title} [${run.id}/${task.id} attempt ${number}]`,
    body: plan.body,
    payload: { ...payload, brief: { text: brief, ...settings } } satisfies TaskPayload,
  });
  const attempt = await insertAttempt(trx, {
    id,
    run_id: run.id,
    task_id: task.id,
    number,
    assigned_to: plan.to,
    execution_mode: plan.mode,
    thread_id: thread.id,
    state: 'dispatched',
    body: plan.body,
    ...worktree,
    merged_at: null,
    merged_into: null,
    merge_commit: null,
    merged_head: null,
    worktree_removed_at: null,
    branch_deleted_at: null,
    result: null,
    claims_seen: 0,
    // The first message is the leader's own task: reconcile starts after it.
    last_message_id: message.id,
    created_at: now,
    updated_at: now,
    ended_at: null,
  });
  const updated = await setTaskState(trx, { runId: run.id, id: task.id, state: 'dispatched', now });
  await emitIn(trx, env, {
    runId: run.id,
    taskId: task.id,
    attemptId: attempt.id,
    type: 'task_dispatched',
    taskState: 'dispatched',
    data: {
      number,
      thread_id: thread.id,
      assigned_to: plan.to,
      execution_mode: plan.mode,
      reason: plan.reason,
      ...(ws ? { worktree_path: ws.dir, branch: ws.branch, base_commit: ws.baseCommit } : {}),
    },
  });
  return { run: runView(run), task: taskView(updated), attempt: attemptView(attempt) };
}

/** The attempt part of the task payload; a code attempt always has its worktree by now. */
function taskAttempt(plan: Plan, id: string, ws: Workspace | undefined): TaskPayloadAttempt {
  if (plan.mode === 'analysis') return { id, number: plan.number, execution_mode: 'analysis' };
  if (!ws) {
    throw new ConflictError(
      `attempt ${plan.number} of task ${plan.task.id} would be a code attempt without a worktree (the previous attempt records no repository); dispatch a new task instead`,
      { task: plan.task.id },
    );
  }
  return {
    id,
    number: plan.number,
    execution_mode: 'code',
    repo_path: ws.repo,
    workspace_root: ws.root,
    base_ref: ws.baseRef,
    base_commit: ws.baseCommit,
    worktree_path: ws.dir,
    branch: ws.branch,
  };
}
