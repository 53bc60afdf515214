// The code-mode attempt diff and merge work on, and (across machines) bringing its branch from its remote.
import { ConflictError, NotFoundError } from '@orch/store';
import { setBranchOwner } from '../branch-owner.ts';
import { GitFailure, branchExists, dropBranchConfig, fetchBranch, remoteBranchHead, remoteFailure } from '../git.ts';
import type { Orch } from '../orch.ts';
import { databaseId } from '../owner.ts';
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

/**
 * Code mode across machines: brings the attempt's branch from its remote into the leader's
 * repository (a local branch of the same name, created, or moved only forward; marked as this
 * database's when made here). Returns the remote's head of the branch, or undefined when the
 * remote has none (deleted by an earlier cleanup): the local branch, if any, is then all there is.
 * Does nothing for an attempt whose worktree is on this machine.
 *
 * @throws GitFailure (4) when the remote cannot be reached, or the local branch cannot move forward to it.
 */
export async function fetchAttemptBranch(orch: Orch, a: AttemptRow): Promise<string | undefined> {
  if (a.remote_url === null || a.repo_path === null || a.branch === null) return undefined;
  const { repo_path: repo, remote_url: url, branch } = a;
  const there = await remoteBranchHead(repo, url, branch).catch((err: unknown) => {
    throw new GitFailure(['ls-remote', url], `cannot reach the remote ${url} of attempt ${a.id}: ${remoteFailure(err)}`);
  });
  if (there === undefined) return undefined;
  const made = !(await branchExists(repo, branch));
  if (made) await setBranchOwner(repo, branch, await databaseId(orch));
  await fetchBranch(repo, url, branch).catch(async (err: unknown) => {
    if (made) await dropBranchConfig(repo, branch);
    throw new GitFailure(
      ['fetch', url],
      `cannot bring ${branch} from ${url} into ${repo}: ${remoteFailure(err)} (the local branch has commits the remote's lacks, or is checked out)`,
    );
  });
  return there;
}
