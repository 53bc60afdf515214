// Making an attempt's worktree: the branch name checked, the place free, the branch marked as this
// orch database's before git makes it, and everything undone when git fails part-way.
import fs from 'node:fs';
import path from 'node:path';
import { ConflictError, ValidationError } from '@orch/store';
import { setBranchOwner } from './branch-owner.ts';
import { makeDirs } from './dirs.ts';
import { addWorktreeOnNewBranch, branchExists, dropBranchConfig, isValidBranchName, undoWorktreeAdd } from './git.ts';

/**
 * Creates branch `branch` at `commit` and a worktree for it at `dir`, the branch marked as owned
 * by the orch database `owner` first (so even a worktree whose making is cut short says whose it
 * is). If git fails part-way (a failing post-checkout hook, a full disk), what this call made is
 * undone: the worktree, its directories, the branch and its mark; then the failure is thrown.
 *
 * @throws ValidationError (2) for a branch name git refuses; ConflictError (4) when the branch or
 *   the directory already exists; GitFailure (4) when git fails.
 */
export async function addWorktree(root: string, dir: string, branch: string, commit: string, owner: string): Promise<void> {
  if (!(await isValidBranchName(root, branch))) {
    throw new ValidationError(`${branch} is not a valid git branch name (a run or task id git does not accept, such as one ending in ".lock")`, [
      { path: '--task', message: 'not usable in a git branch name' },
    ]);
  }
  if (await branchExists(root, branch)) {
    throw new ConflictError(`branch ${branch} already exists (left by an earlier attempt?); see \`orch cleanup\``, { branch });
  }
  if (fs.existsSync(dir)) throw new ConflictError(`${dir} already exists; see \`orch cleanup\``, { worktree_path: dir });
  const made = makeDirs(path.dirname(dir));
  try {
    await setBranchOwner(root, branch, owner);
    await addWorktreeOnNewBranch(root, dir, branch, commit);
  } catch (err) {
    // Neither the branch nor the directory existed before (checked above, and the caller's
    // dispatch marker keeps other orch processes away from this place): all of it is this call's.
    await undoWorktreeAdd(root, dir, branch, commit);
    await dropBranchConfig(root, branch);
    // Leave no directory behind: remove what this call created, innermost first.
    for (let d = path.dirname(dir); made !== undefined && d.length >= made.length; d = path.dirname(d)) {
      try {
        fs.rmdirSync(d);
      } catch {
        break;
      }
    }
    throw err;
  }
}
