// A git remote an attempt's branch travels through (code mode across machines): its URL, the
// branch's head there, and moving the branch to and from it. Pushes are never forced: a push that
// is not a fast-forward is refused by git, and a deletion names the commit it expects to delete.
import { ValidationError } from '@orch/store';
import { GitFailure, probe, run } from './run.ts';

/** A URL or path given with --repo-url: no option look-alikes, control characters or whitespace. */
export function checkRemoteUrl(url: string, flag: string): void {
  if (url === '' || url.startsWith('-') || /[\u0000-\u0020\u007f]/.test(url) || url.length > 2000) {
    throw new ValidationError(`${flag} ${JSON.stringify(url)} is not an acceptable git remote URL (no leading "-", spaces or control characters)`, [
      { path: flag, message: 'is not an acceptable git remote URL' },
    ]);
  }
}

/**
 * The URL of the remote called `name` in the repository (`git remote get-url`).
 *
 * @throws ValidationError (2) for a name that is no remote of the repository.
 */
export async function remoteUrl(root: string, name: string): Promise<string> {
  if (name === '' || name.startsWith('-') || /[\u0000-\u0020\u007f]/.test(name)) {
    throw new ValidationError(`--remote ${JSON.stringify(name)} is not an acceptable remote name`, [{ path: '--remote', message: 'not a remote name' }]);
  }
  const url = (await probe(root, ['remote', 'get-url', '--', name]))?.trim();
  if (!url) {
    throw new ValidationError(`--remote ${name}: the repository at ${root} has no remote called ${name} (see \`git remote -v\`)`, [
      { path: '--remote', message: 'no such remote' },
    ]);
  }
  checkRemoteUrl(url, '--remote');
  return url;
}

/**
 * The commit `refs/heads/<branch>` names on the remote, or undefined when the remote has no such branch.
 *
 * @throws GitFailure (4) when the remote cannot be reached or read.
 */
export async function remoteBranchHead(root: string, url: string, branch: string): Promise<string | undefined> {
  const ref = `refs/heads/${branch}`;
  const out = await run(root, ['ls-remote', '--', url, ref]);
  for (const line of out.split('\n')) {
    const [sha, name] = line.split('\t');
    if (name === ref && sha) return sha.trim();
  }
  return undefined;
}

/**
 * Makes `refs/heads/<branch>` on the remote point at `commit`, sending whatever objects the remote
 * lacks (so a base that exists only in this repository, a local branch or a commit, reaches it).
 * Not forced: git refuses when the remote branch exists and is not an ancestor of `commit`.
 *
 * @throws GitFailure (4) when git refuses or the remote cannot be reached.
 */
export async function pushCommitToBranch(root: string, url: string, commit: string, branch: string): Promise<void> {
  await run(root, ['push', '--quiet', '--no-verify', '--', url, `${commit}:refs/heads/${branch}`]);
}

/**
 * Brings the remote's `refs/heads/<branch>` into the local branch of the same name, creating it,
 * or moving it only forward (git refuses an update that is not a fast-forward, and one of a branch
 * checked out in a worktree). Returns the local branch's head afterwards.
 *
 * @throws GitFailure (4) when git refuses or the remote cannot be reached.
 */
export async function fetchBranch(root: string, url: string, branch: string): Promise<string> {
  const ref = `refs/heads/${branch}`;
  await run(root, ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--', url, `${ref}:${ref}`]);
  return (await run(root, ['rev-parse', '--verify', `${ref}^{commit}`])).trim();
}

/** Fetches the commits of the remote's `refs/heads/<branch>` without moving any ref (FETCH_HEAD not written either). */
export async function fetchObjects(root: string, url: string, branch: string): Promise<void> {
  await run(root, ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--', url, `refs/heads/${branch}`]);
}

/**
 * Deletes `refs/heads/<branch>` on the remote only while it still points at `expected`: a branch
 * someone pushed to since is left alone (git refuses: "stale info").
 *
 * @throws GitFailure (4) when git refuses or the remote cannot be reached.
 */
export async function deleteRemoteBranch(root: string, url: string, branch: string, expected: string): Promise<void> {
  const ref = `refs/heads/${branch}`;
  await run(root, ['push', '--quiet', '--no-verify', `--force-with-lease=${ref}:${expected}`, '--', url, `:${ref}`]);
}

/** git's message for a failed remote operation, or the error itself when it is not git's. */
export function remoteFailure(err: unknown): string {
  return err instanceof GitFailure ? (err.gitMessage.split('\n').find((l) => l.trim() !== '') ?? err.message) : (err as Error).message;
}
