// The owner marks themselves (see owner.ts for what they mean and who may touch what): the id of
// the orch database that made a branch, kept in git config as `branch.<name>.orchDatabase`.
import { branchConfigValues, setBranchConfig } from './git.ts';

/** The git config variable (under `branch.<name>.`) that names the orch database owning a branch (and the worktree on it). */
const OWNER_VARIABLE = 'orchDatabase';

/**
 * Which orch database owns each branch that carries an owner mark (branch name -> database id),
 * read from the repository's config in one call. `git branch -D` drops a branch's mark with it.
 */
export async function branchOwners(root: string): Promise<Map<string, string>> {
  return branchConfigValues(root, OWNER_VARIABLE.toLowerCase());
}

/** Marks `branch` (and the worktree that will hold it) as owned by the orch database `owner`. */
export async function setBranchOwner(root: string, branch: string, owner: string): Promise<void> {
  await setBranchConfig(root, branch, OWNER_VARIABLE, owner);
}
