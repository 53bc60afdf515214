// Branches, refs and commits: reading what they name, checking a name, deleting a branch.
// Refs are placed after `--end-of-options` where git accepts it, so nothing user-given is read as an option.
import { ValidationError } from '@orch/store';
import { probe, run } from './run.ts';

/** A ref or revision given by a user: no option look-alikes, control characters or whitespace. */
export function checkRef(ref: string, flag: string): void {
  if (ref === '' || ref.startsWith('-') || /[\u0000-\u0020\u007f]/.test(ref) || ref.includes('..') || ref.length > 250) {
    throw new ValidationError(`${flag} ${JSON.stringify(ref)} is not an acceptable git ref (no leading "-", spaces, control characters or "..")`, [
      { path: flag, message: 'is not an acceptable git ref' },
    ]);
  }
}

/** Whether git accepts `branch` as a branch name (`git check-ref-format --branch`). */
export async function isValidBranchName(root: string, branch: string): Promise<boolean> {
  return (await probe(root, ['check-ref-format', '--branch', branch])) !== undefined;
}

/** The branch checked out in `dir`, or undefined when HEAD is detached (or unborn). */
export async function currentBranch(dir: string): Promise<string | undefined> {
  const name = await probe(dir, ['symbolic-ref', '--quiet', '--short', 'HEAD']);
  return name?.trim() || undefined;
}

/**
 * The commit `ref` names in the repository.
 *
 * @throws ValidationError (2) when the repository has no commits or the ref names no commit.
 */
export async function resolveCommit(root: string, ref: string): Promise<string> {
  const head = await probe(root, ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']);
  if (head === undefined) {
    throw new ValidationError(`the repository at ${root} has no commits yet; commit something to base the work on`, [
      { path: '--repo-path', message: 'repository has no commits' },
    ]);
  }
  const sha = await probe(root, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`]);
  if (sha === undefined || sha.trim() === '') {
    throw new ValidationError(`--base-ref ${ref} does not name a commit in ${root}`, [{ path: '--base-ref', message: 'no such commit' }]);
  }
  return sha.trim();
}

/** Whether `refs/heads/<name>` exists. */
export async function branchExists(root: string, name: string): Promise<boolean> {
  return (await probe(root, ['show-ref', '--verify', '--quiet', `refs/heads/${name}`])) !== undefined;
}

/** The commit a branch points at. */
export async function branchHead(root: string, branch: string): Promise<string | undefined> {
  return (await probe(root, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`]))?.trim() || undefined;
}

/** Local branches under `dir/` (e.g. `orch/<run>` gives `orch/<run>/<task>/<n>`). */
export async function branchesUnder(root: string, dir: string): Promise<string[]> {
  const out = await run(root, ['for-each-ref', '--format=%(refname)', `refs/heads/${dir}`]);
  return out
    .split('\n')
    .filter((l) => l.startsWith(`refs/heads/${dir}/`))
    .map((l) => l.slice('refs/heads/'.length));
}

/** Deletes a local branch even when unmerged (`git branch -D`); git drops its config section with it. */
export async function deleteBranch(root: string, branch: string): Promise<void> {
  await run(root, ['branch', '-D', branch]);
}

/** Whether commit `commit` is contained in `ref`. */
export async function isAncestor(root: string, commit: string, ref: string): Promise<boolean> {
  return (await probe(root, ['merge-base', '--is-ancestor', commit, ref])) !== undefined;
}

/** Commits on `branch` that no other branch contains (work that deleting the branch would lose). */
export async function unmergedCommits(root: string, branch: string, alsoGone: string[] = []): Promise<string[]> {
  // With --branches, --exclude takes the name without refs/heads/ (ids and refs hold no glob characters).
  const excludes = [branch, ...alsoGone].map((b) => `--exclude=${b}`);
  const out = await run(root, ['rev-list', `refs/heads/${branch}`, '--not', ...excludes, '--branches']);
  return out.split('\n').filter((l) => l.trim() !== '');
}

/** Commits reachable from any of `tips` that no branch but those in `exclude` contains. */
export async function commitsOnNoOtherBranch(root: string, tips: string[], exclude: string[]): Promise<string[]> {
  if (tips.length === 0) return [];
  const excludes = exclude.map((b) => `--exclude=${b}`);
  const out = await run(root, ['rev-list', ...tips, '--not', ...excludes, '--branches']);
  return out.split('\n').filter((l) => l.trim() !== '');
}
