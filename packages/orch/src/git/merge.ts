// Merging a branch into another without touching anyone's checkout (see mergeBranch).
import fs from 'node:fs';
import path from 'node:path';
import { ConflictError, ValidationError } from '@orch/store';
import { makeDirs } from '../dirs.ts';
import { branchHead } from './refs.ts';
import { GitFailure, probe, run } from './run.ts';
import { listWorktrees, uncommittedTracked } from './worktrees.ts';

export interface MergeOutcome {
  merged: boolean;
  /** The target's new head (when merged). */
  commit?: string;
  conflicts: string[];
  /** Nothing to merge: the target already contains the branch. */
  up_to_date: boolean;
  /** git's message when the merge failed. */
  error?: string;
}

/**
 * Merges `branch` into `into` (`squash`: one commit). The merge is made in a temporary detached
 * worktree at `tmpDir`, never in anyone's checkout, so a conflict or a failure has nothing to
 * restore: `into` is left exactly as it was. The result then moves `into` only if it still points
 * where the merge started: with a compare-and-swap of the ref, or, when `into` is checked out, a
 * fast-forward in that checkout (which git refuses if the branch moved or the checkout's changes
 * are in the way). A checkout of `into` with uncommitted changes to tracked files is refused first.
 * Callers serialise merges into one target (see `mergeAttempt`).
 *
 * @throws ValidationError (2) when `into` does not exist; ConflictError (4) when the branch is gone
 *   or the checkout of `into` has uncommitted changes.
 */
export async function mergeBranch(
  root: string,
  args: { branch: string; into: string; strategy: 'merge' | 'squash'; message: string; tmpDir: string },
): Promise<MergeOutcome> {
  const target = await branchHead(root, args.into);
  if (!target) throw new ValidationError(`--into ${args.into}: no such branch`, [{ path: '--into', message: 'no such branch' }]);
  const source = await branchHead(root, args.branch);
  if (!source) throw new ConflictError(`branch ${args.branch} no longer exists`, { branch: args.branch });
  if ((await probe(root, ['merge-base', '--is-ancestor', source, target])) !== undefined) {
    return { merged: false, conflicts: [], up_to_date: true, commit: target };
  }
  const checkedOut = (await listWorktrees(root)).find((w) => w.branch === args.into);
  if (checkedOut) {
    const dirty = await uncommittedTracked(checkedOut.path);
    if (dirty.length > 0) {
      throw new ConflictError(`${args.into} is checked out at ${checkedOut.path} with uncommitted changes; commit or stash them first`, {
        into: args.into,
        files: dirty,
      });
    }
  }
  const dir = args.tmpDir;
  makeDirs(path.dirname(dir));
  try {
    // --no-checkout, then reset: orch's own scratch checkout runs no post-checkout hook.
    await run(root, ['worktree', 'add', '--detach', '--no-checkout', dir, target]);
    await run(dir, ['reset', '--quiet', '--hard', target]);
    const mergeArgs = args.strategy === 'squash' ? ['merge', '--squash', source] : ['merge', '--no-ff', '--no-edit', '-m', args.message, source];
    let failure: string | undefined;
    try {
      await run(dir, mergeArgs);
      if (args.strategy === 'squash') {
        // Squashing work the target already has (e.g. squash-merged before) stages nothing.
        if ((await probe(dir, ['diff', '--cached', '--quiet'])) !== undefined) return { merged: false, conflicts: [], up_to_date: true, commit: target };
        await run(dir, ['commit', '--no-verify', '-m', args.message]);
      }
    } catch (err) {
      if (!(err instanceof GitFailure)) throw err;
      failure = err.gitMessage;
    }
    const conflicts = (await run(dir, ['diff', '--name-only', '-z', '--diff-filter=U'])).split('\0').filter((l) => l !== '');
    if (failure !== undefined || conflicts.length > 0) {
      return { merged: false, conflicts, up_to_date: false, ...(failure !== undefined ? { error: failure } : {}) };
    }
    const commit = (await run(dir, ['rev-parse', 'HEAD'])).trim();
    try {
      if (checkedOut) await run(checkedOut.path, ['merge', '--ff-only', '--quiet', commit]);
      else await run(root, ['update-ref', `refs/heads/${args.into}`, commit, target]);
    } catch (err) {
      if (!(err instanceof GitFailure)) throw err;
      return {
        merged: false,
        conflicts: [],
        up_to_date: false,
        error: `${args.into} moved or its checkout is in the way (${err.gitMessage.split('\n')[0] ?? ''})`,
      };
    }
    return { merged: true, commit, conflicts: [], up_to_date: false };
  } finally {
    await probe(root, ['worktree', 'remove', '--force', '--force', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
    await probe(root, ['worktree', 'prune']);
  }
}
