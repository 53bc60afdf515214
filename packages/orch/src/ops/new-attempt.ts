// What dispatch, retry and reassign share: a plan decided in a transaction, the worktree made
// outside it (code mode), and the attempt, its thread and its task message recorded.
import { openThreadIn, type TaskPayload, type TaskPayloadAttempt } from '@orch/inbox';
import { ConflictError, failpoint, parseStoredJson, writeTransaction } from '@orch/store';
import { renderWorkerBrief, type BriefSettings } from '../brief.ts';
import { emitIn, settleRunIn } from '../events.ts';
import { dropMarker } from '../marker.ts';
import { inboxTx, type Orch, type OrchEnv, type Tx } from '../orch.ts';
import { insertAttempt, type AttemptRow } from '../queries/attempts.ts';
import type { RunRow } from '../queries/runs.ts';
import { setTaskState, type TaskRow } from '../queries/tasks.ts';
import type { ExecutionMode, OrchDatabase } from '../schema.ts';
import { attemptView, runView, taskView, type AttemptView } from '../views.ts';
import { leaderName } from './attempts.ts';
import { cancelLiveAttemptsIn } from './cancel.ts';
import type { DispatchResult } from './dispatch.ts';
import { discardWorkspace, prepareWorkspace, type CodeOptions, type Workspace } from './dispatch-worktree.ts';
import { reconcileIn, writeOrRollBack } from './reconcile.ts';
import { reopenTaskIn } from './retry.ts';
import { requireRun } from './runs.ts';

/** A new attempt, fully decided except for the git work. */
export interface Plan {
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

/**
 * The shared shape of dispatch, retry and reassign. First, in one write transaction: fold in worker
 * activity, decide, and (analysis mode) record the attempt, so a refusal rolls everything back.
 * Code mode leaves that transaction with the decision, makes the worktree with git outside any
 * transaction, then decides again and records the attempt in a second one. If the decision changed
 * meanwhile or the write fails, the fresh worktree and branch are removed again. A crash between
 * the two leaves a worktree no attempt owns: `cleanup --all-completed` reports it, and the next
 * dispatch of that attempt number takes its place if it holds no work.
 */
export async function newAttempt(
  orch: Orch,
  runId: string,
  brief: BriefSettings | undefined,
  decide: (trx: Tx) => Promise<Plan>,
  onCancelled?: (a: AttemptView) => void,
): Promise<DispatchResult> {
  const settings = brief ?? { db: orch.store.location, inbox: 'inbox' };
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
  if (ws.marker !== null) dropMarker(ws.marker);
  return done;
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
    remote_url: ws?.remoteUrl ?? null,
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
    from: leaderName(env),
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
      ...(ws?.remoteUrl ? { remote_url: ws.remoteUrl } : {}),
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
    ...(ws.remoteUrl !== null ? { remote_url: ws.remoteUrl } : {}),
  };
}
