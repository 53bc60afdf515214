// What an interrupted dispatch leaves behind at an attempt's place (its branch, its worktree, the
// lock files of a git killed mid-write), and the rules for clearing it: only what this orch
// database marked as its own and what holds no work.
import fs from 'node:fs';
import { ConflictError } from '@orch/store';
import { branchOwners } from './branch-owner.ts';
import {
  branchExists,
  deleteBranch,
  GitFailure,
  gitLockFiles,
  interruptedAdd,
  listWorktrees,
  removeWorktree,
  tryPruneWorktrees,
  uncommitted,
  unlockWorktree,
  unmergedCommits,
  worktreeOnlyCommits,
} from './git.ts';

/**
 * Clears the way for a new attempt worktree at `dir` on `branch` when an interrupted dispatch of
 * the orch database `owner` left them behind: removed only when they carry that database's owner
 * mark and hold no work (a clean worktree, no commit that only its branch, its HEAD or its HEAD
 * reflog reaches).
 *
 * @throws ConflictError (4) when they belong to another database, carry no owner mark (made
 *   before orch recorded owners, or by hand: they may be another database's), or hold work,
 *   saying how to look and remove them by hand.
 */
export async function reclaimLeftover(repo: string, dir: string, branch: string, owner: string): Promise<void> {
  const hasBranch = await branchExists(repo, branch);
  const hasDir = fs.existsSync(dir);
  if (!hasBranch && !hasDir) return;
  const entry = (await listWorktrees(repo)).find((w) => w.path === dir);
  const registered = entry !== undefined;
  const byHand = `look at it, then remove it (git worktree remove --force ${dir}; git branch -D ${branch}) and dispatch again`;
  if (hasBranch || registered) {
    const owners = await branchOwners(repo);
    const markedBy = owners.get(entry?.branch ?? branch) ?? owners.get(branch);
    if (markedBy !== undefined && markedBy !== owner) {
      throw new ConflictError(
        `${hasDir ? dir : `branch ${branch}`} belongs to another orch database (id ${markedBy}) that uses the same run id in this repository; ` +
          'it is left alone: use another run id here',
        { worktree_path: dir, branch, owner: markedBy },
      );
    }
    if (markedBy === undefined) {
      throw new ConflictError(
        `${hasDir ? dir : `branch ${branch}`} is in the way and carries no orch owner mark (made before orch recorded owners, or by hand), ` +
          `so it may belong to another orch database using this repository; ${byHand}`,
        { worktree_path: dir, branch, owner: null },
      );
    }
  }
  // Ours (checked above), and the caller holds this place's marker: a lock on its branch or in its
  // worktree's git dir is a killed dispatch's, and would stop every git step below.
  if (hasBranch || registered) await clearDeadGitLocks(repo, branch, dir);
  // A checkout cut short shows its missing files as changes: they are nobody's work.
  const interrupted = entry !== undefined && interruptedAdd(entry);
  const dirty = hasDir && registered && !interrupted ? await uncommitted(dir) : [];
  const foreignDir = hasDir && !registered && fs.readdirSync(dir).length > 0;
  const unmerged = hasBranch ? await unmergedCommits(repo, branch) : [];
  const headOnly = hasDir && registered && !interrupted ? await worktreeOnlyCommits(dir, [branch]) : [];
  const lost = new Set([...unmerged, ...headOnly]).size;
  if (dirty.length > 0 || foreignDir || lost > 0) {
    throw new ConflictError(
      `${hasDir ? dir : `branch ${branch}`} was left by an interrupted dispatch and holds work ` +
        `(${dirty.length} uncommitted change(s), ${lost} commit(s) on no other branch${foreignDir ? ', files outside git' : ''}); ${byHand}`,
      { worktree_path: dir, branch, uncommitted: dirty, unmerged_commits: lost },
    );
  }
  if (registered && hasDir) await removeWorktree(repo, dir, interrupted);
  else if (registered && interrupted)
    await unlockWorktree(repo, dir); // so prune forgets it
  else if (hasDir) fs.rmdirSync(dir);
  await tryPruneWorktrees(repo);
  if (hasBranch) await deleteBranch(repo, branch);
}

/**
 * Removes the lock files a killed git process left on `branch`'s ref and in the worktree `dir`'s
 * private git directory (git never clears them itself: "Unable to create '....lock': File exists").
 * Only for a branch and worktree that no live process is making or using: orch's attempt branches
 * and worktrees are its own (the owner mark), and the caller holds the place's dispatch marker
 * taken over from a dead process, or has checked that no live dispatch is making it. A lock held
 * right now by someone's git on that branch would lose that one git command, never work.
 */
export async function clearDeadGitLocks(repo: string, branch: string, dir?: string): Promise<string[]> {
  const removed: string[] = [];
  for (const f of await gitLockFiles(repo, branch, dir)) {
    try {
      if (!fs.lstatSync(f).isFile()) continue;
      fs.unlinkSync(f);
      removed.push(f);
    } catch {
      // Not there (the usual case), or gone meanwhile.
    }
  }
  return removed;
}

/** How old a lock on a branch that does not exist must be to count as a killed git's. */
export const DEAD_REF_LOCK_MS = 2000;

/**
 * Runs `make` (which creates `branch`); when git refuses because a lock file on that branch is in
 * the way although the branch does not exist, and the lock is older than DEAD_REF_LOCK_MS, the
 * lock is a git's killed while creating the branch (a dispatch killed inside `worktree add -b`):
 * it is removed and `make` runs once more. Only for callers that hold the place's dispatch
 * marker (no live orch process of this database is making this branch); a live git holds such a
 * lock for milliseconds.
 */
export async function withDeadRefLockCleared(repo: string, branch: string, make: () => Promise<void>): Promise<void> {
  try {
    await make();
  } catch (err) {
    if (!(err instanceof GitFailure) || !/\.lock'?:? File exists|cannot lock ref/i.test(err.gitMessage) || (await branchExists(repo, branch))) throw err;
    const [refLock] = await gitLockFiles(repo, branch);
    const st = refLock === undefined ? undefined : fs.statSync(refLock, { throwIfNoEntry: false });
    if (refLock === undefined || st === undefined || Date.now() - st.mtimeMs < DEAD_REF_LOCK_MS) throw err;
    fs.rmSync(refLock, { force: true });
    await make();
  }
}
