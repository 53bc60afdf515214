import { ConflictError } from '@orch/store';
import fs from 'node:fs';
import { branchHead, commitsBetween, diffPatch, diffStat, uncommitted, type CommitInfo, type FileChange } from '../git.ts';
import type { Orch } from '../orch.ts';
import { attemptView, type AttemptView } from '../views.ts';
import { codeAttempt, fetchAttemptBranch, type AttemptRef } from './code-attempt.ts';

export interface DiffResult {
  attempt: AttemptView;
  base_commit: string;
  branch: string;
  head_commit: string;
  /** Commits on the branch since the base commit, oldest first. */
  commits: CommitInfo[];
  files: FileChange[];
  /** The patch (absent with --stat). */
  patch?: string;
  /** Uncommitted changes in the worktree (null when the worktree is gone): not part of the diff. */
  uncommitted: string[] | null;
}

/**
 * `orch diff`: what the attempt's branch changed against its base commit (committed work only),
 * and whether its worktree has uncommitted changes. Across machines, the branch is fetched from its
 * remote first (what the worker pushed; its worktree is on its own machine: `uncommitted` is null).
 *
 * @throws NotFoundError (3); ConflictError (4) for an analysis attempt or a deleted branch; GitFailure (4)
 *   when the attempt's remote cannot be reached.
 */
export async function diffAttempt(orch: Orch, input: AttemptRef & { stat?: boolean | undefined }): Promise<DiffResult> {
  const a = await codeAttempt(orch, input);
  await fetchAttemptBranch(orch, a);
  const repo = a.repo_path as string;
  const branch = a.branch as string;
  const base = a.base_commit as string;
  const head = await branchHead(repo, branch);
  if (!head) throw new ConflictError(`branch ${branch} no longer exists (cleaned up?)`, { branch });
  const dirty = a.worktree_path !== null && fs.existsSync(a.worktree_path) ? await uncommitted(a.worktree_path) : null;
  return {
    attempt: attemptView(a),
    base_commit: base,
    branch,
    head_commit: head,
    commits: await commitsBetween(repo, base, head),
    files: await diffStat(repo, base, head),
    ...(input.stat ? {} : { patch: await diffPatch(repo, base, head) }),
    uncommitted: dirty,
  };
}
