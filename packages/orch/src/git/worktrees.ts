// Linked worktrees: making and removing them, listing them, what they hold that nothing else does,
// and where git keeps each one's private files (and the lock files a killed git leaves there).
import fs from 'node:fs';
import path from 'node:path';
import { isInside } from '../dirs.ts';
import { gitCommonDir } from './repo.ts';
import { branchHead } from './refs.ts';
import { probe, run } from './run.ts';

/**
 * Creates branch `branch` at `commit` and a worktree for it at `dir` (`git worktree add -b`). The
 * caller has made sure neither exists; when this fails part-way, `undoWorktreeAdd` removes what it made.
 *
 * @throws GitFailure (4) when git fails.
 */
export async function addWorktreeOnNewBranch(root: string, dir: string, branch: string, commit: string): Promise<void> {
  await run(root, ['worktree', 'add', '-b', branch, dir, commit]);
}

/**
 * Removes what an `addWorktreeOnNewBranch` that failed part-way made: the worktree and its
 * directory, git's record of it, and the branch if it still points at `commit`. Only for a place
 * where neither the branch nor the directory existed before the add: all of it is the add's.
 */
export async function undoWorktreeAdd(root: string, dir: string, branch: string, commit: string): Promise<void> {
  if ((await listWorktrees(root).catch(() => [])).some((w) => w.path === dir)) await probe(root, ['worktree', 'remove', '--force', '--force', dir]);
  fs.rmSync(dir, { recursive: true, force: true });
  await probe(root, ['worktree', 'prune']);
  if ((await branchHead(root, branch)) === commit) await probe(root, ['branch', '-D', branch]);
}

/** Removes a worktree directory and git's record of it (`force` also drops uncommitted changes). */
export async function removeWorktree(root: string, dir: string, force: boolean): Promise<void> {
  await run(root, ['worktree', 'remove', ...(force ? ['--force', '--force'] : []), dir]);
}

/** Forgets worktrees whose directories are gone. */
export async function pruneWorktrees(root: string): Promise<void> {
  await run(root, ['worktree', 'prune']);
}

/** Like pruneWorktrees, but a failure of git is ignored (a tidy-up after the real work). */
export async function tryPruneWorktrees(root: string): Promise<void> {
  await probe(root, ['worktree', 'prune']);
}

/** Unlocks the worktree at `dir` (so prune may forget it once its directory is gone). */
export async function unlockWorktree(root: string, dir: string): Promise<void> {
  await run(root, ['worktree', 'unlock', dir]);
}

/**
 * Worktrees git knows about: path, branch (null when detached) and lock reason (null when not
 * locked). `git worktree add` locks a new worktree with the reason "initializing" until its
 * checkout is complete, so a worktree still locked that way was left by an interrupted add.
 */
export async function listWorktrees(root: string): Promise<{ path: string; branch: string | null; locked: string | null }[]> {
  const out = await run(root, ['worktree', 'list', '--porcelain']);
  const list: { path: string; branch: string | null; locked: string | null }[] = [];
  for (const block of out.split('\n\n')) {
    const lines = block.split('\n');
    const wt = lines.find((l) => l.startsWith('worktree '));
    if (!wt) continue;
    const br = lines.find((l) => l.startsWith('branch '));
    const lock = lines.find((l) => l === 'locked' || l.startsWith('locked '));
    list.push({
      path: wt.slice('worktree '.length),
      branch: br ? br.slice('branch refs/heads/'.length) : null,
      locked: lock === undefined ? null : lock.slice('locked'.length).trim(),
    });
  }
  return list;
}

/** Left by a `git worktree add` that was killed before its checkout completed: holds nobody's work. */
export function interruptedAdd(w: { locked: string | null }): boolean {
  return w.locked === 'initializing';
}

/** Paths with uncommitted changes (including untracked files) in a worktree, exactly as named (read with -z). */
export async function uncommitted(dir: string): Promise<string[]> {
  return statusPaths(await run(dir, ['status', '--porcelain=v1', '-z', '--untracked-files=all']));
}

/** Paths of tracked files with uncommitted changes in a worktree (untracked files left out). */
export async function uncommittedTracked(dir: string): Promise<string[]> {
  return statusPaths(await run(dir, ['status', '--porcelain=v1', '-z', '--untracked-files=no']));
}

/** The paths of `git status --porcelain=v1 -z` output; a rename's or copy's source path is skipped. */
function statusPaths(out: string): string[] {
  const fields = out.split('\0');
  const paths: string[] = [];
  for (let i = 0; i < fields.length; i += 1) {
    const f = fields[i] ?? '';
    if (f.length < 4) continue;
    paths.push(f.slice(3));
    if (f[0] === 'R' || f[0] === 'C') i += 1;
  }
  return paths;
}

/**
 * Commits that only the worktree at `dir` reaches: its HEAD (a detached HEAD included) and every
 * commit its HEAD reflog names, with their history, minus what some branch other than `alsoGone`
 * contains. Removing the worktree removes its HEAD and reflog, so these would be lost with it.
 */
export async function worktreeOnlyCommits(dir: string, alsoGone: string[] = []): Promise<string[]> {
  const tips = new Set<string>();
  const head = (await probe(dir, ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']))?.trim();
  if (head) tips.add(head);
  // The worktree's own HEAD reflog (each worktree has one); absent when reflogs are off.
  const log = await probe(dir, ['log', '--walk-reflogs', '--format=%H', 'HEAD', '--']);
  for (const sha of (log ?? '').split('\n')) if (/^[0-9a-f]{40,64}$/.test(sha)) tips.add(sha);
  if (tips.size === 0) return [];
  const excludes = alsoGone.map((b) => `--exclude=${b}`);
  const found = new Set<string>();
  const all = [...tips];
  // In batches, so a long reflog never overflows the argument list.
  for (let i = 0; i < all.length; i += 500) {
    const out = await run(dir, ['rev-list', ...all.slice(i, i + 500), '--not', ...excludes, '--branches']);
    for (const l of out.split('\n')) if (l.trim() !== '') found.add(l.trim());
  }
  return [...found];
}

/**
 * The lock files a killed git process would have left on `branch`'s ref and, when `dir` is a
 * linked worktree of this repository, in its private git directory (index and HEAD). Git never
 * clears them itself ("Unable to create '....lock': File exists"). The paths may not exist.
 */
export async function gitLockFiles(repo: string, branch: string, dir?: string): Promise<string[]> {
  const common = await gitCommonDir(repo);
  const candidates = [`${path.join(common, 'refs', 'heads', ...branch.split('/'))}.lock`];
  if (dir !== undefined) {
    const admin = worktreeAdminDir(dir);
    if (admin !== undefined && isInside(path.join(common, 'worktrees'), admin)) {
      candidates.push(path.join(admin, 'index.lock'), path.join(admin, 'HEAD.lock'));
    }
  }
  return candidates;
}

/** The private git directory of the linked worktree at `dir` (from its `.git` file), if any. */
function worktreeAdminDir(dir: string): string | undefined {
  try {
    const m = /^gitdir: (.+)$/m.exec(fs.readFileSync(path.join(dir, '.git'), 'utf8'));
    return m?.[1] === undefined ? undefined : path.resolve(dir, m[1].trim());
  } catch {
    return undefined;
  }
}
