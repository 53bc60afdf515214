// Every git call orch makes, through simple-git (no shell: arguments are passed as an array).
// Callers validate ids and refs first; refs are additionally placed after `--end-of-options`
// where git accepts it, so nothing user-given is read as an option. Never call these inside a
// database transaction.
import fs from 'node:fs';
import path from 'node:path';
import type { SimpleGit } from 'simple-git';
import { AppError, ConflictError, ExitCode, ValidationError } from '@orch/store';

let factory: ((dir: string) => SimpleGit) | undefined;

/** simple-git is loaded on first use, so commands that never touch git never pay for it. */
async function git(dir: string): Promise<SimpleGit> {
  if (!factory) {
    const mod = await import('simple-git');
    factory = (d) =>
      mod.simpleGit({
        baseDir: d,
        maxConcurrentProcesses: 1,
        trimmed: false,
        // By default a non-zero exit with nothing on stderr counts as success; every non-zero exit is a failure here.
        errors: (error, result) => {
          if (error) return error;
          if (result.exitCode === 0) return undefined;
          return Buffer.concat([...result.stdErr, ...result.stdOut]);
        },
      });
  }
  return factory(dir);
}

/** Runs git in `dir`; throws GitFailure (with git's own message) on a non-zero exit. */
async function run(dir: string, args: string[]): Promise<string> {
  try {
    return await (await git(dir)).raw(args);
  } catch (err) {
    throw new GitFailure(args, (err as Error).message.trim());
  }
}

/** Like run, but a non-zero exit is an answer (`undefined`), not an error. */
async function probe(dir: string, args: string[]): Promise<string | undefined> {
  try {
    return await run(dir, args);
  } catch (err) {
    if (err instanceof GitFailure) return undefined;
    throw err;
  }
}

/** git refused (exit 4, code GIT_FAILED): the message carries git's own first line. */
export class GitFailure extends AppError {
  constructor(
    readonly args: string[],
    readonly gitMessage: string,
  ) {
    super('GIT_FAILED', ExitCode.conflict, `git ${args.slice(0, 2).join(' ')} failed: ${gitMessage.split('\n')[0] ?? ''}`, {
      details: { args, message: gitMessage },
    });
  }
}

/**
 * `mkdir -p`, one level at a time: returns the first directory it created (undefined if all
 * existed). Node's recursive mkdirSync can spin forever on some paths (e.g. under /proc); this
 * fails with a clear error instead.
 *
 * @throws ValidationError (2) when a directory cannot be created.
 */
export function makeDirs(dir: string): string | undefined {
  const missing: string[] = [];
  let d = path.resolve(dir);
  while (!fs.existsSync(d)) {
    missing.unshift(d);
    const parent = path.dirname(d);
    if (parent === d) break;
    d = parent;
  }
  for (const m of missing) {
    try {
      fs.mkdirSync(m);
    } catch (err) {
      throw new ValidationError(`cannot create directory ${m}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, [
        { path: '--workspace-root', message: 'cannot create the directory' },
      ]);
    }
  }
  return missing[0];
}

/** A ref or revision given by a user: no option look-alikes, control characters or whitespace. */
export function checkRef(ref: string, flag: string): void {
  if (ref === '' || ref.startsWith('-') || /[\u0000-\u0020\u007f]/.test(ref) || ref.includes('..') || ref.length > 250) {
    throw new ValidationError(`${flag} ${JSON.stringify(ref)} is not an acceptable git ref (no leading "-", spaces, control characters or "..")`, [
      { path: flag, message: 'is not an acceptable git ref' },
    ]);
  }
}

/**
 * The top directory of the repository containing `dir`.
 *
 * @throws ValidationError (2) when `dir` does not exist or is not in a git repository.
 */
export async function repoRoot(dir: string): Promise<string> {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new ValidationError(`--repo-path ${dir}: no such directory`, [{ path: '--repo-path', message: 'no such directory' }]);
  }
  const top = await probe(dir, ['rev-parse', '--show-toplevel']);
  if (top === undefined || top.trim() === '') {
    throw new ValidationError(`--repo-path ${dir} is not inside a git repository`, [{ path: '--repo-path', message: 'not a git repository' }]);
  }
  return fs.realpathSync(top.trim());
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

/**
 * A workspace root must not be the repository itself, lie inside its git directory, hold tracked
 * files, or have control characters in its path: worktrees inside it would mix with the project's
 * own files (or git's). Symbolic links are followed first, so a link to the repository (or into
 * it) is judged by where it leads. Returns the root with links resolved: the place worktrees go.
 *
 * @throws ValidationError (2)
 */
export async function checkWorkspaceRoot(repo: string, dir: string): Promise<string> {
  if (/[\u0000-\u001f\u007f]/.test(dir)) {
    throw new ValidationError('--workspace-root must not contain control characters', [{ path: '--workspace-root', message: 'control characters' }]);
  }
  const real = realPathSoFar(dir);
  const shown = real === dir ? dir : `${dir} (which leads to ${real})`;
  const rel = path.relative(repo, real);
  if (rel === '') {
    throw new ValidationError(`--workspace-root ${shown} must not be the repository itself`, [{ path: '--workspace-root', message: 'is the repository' }]);
  }
  for (const gitDir of [await run(repo, ['rev-parse', '--git-dir']), await run(repo, ['rev-parse', '--git-common-dir'])]) {
    const g = realPathSoFar(path.resolve(repo, gitDir.trim()));
    if (isInside(g, real)) {
      throw new ValidationError(`--workspace-root ${shown} is inside the git directory ${g}`, [{ path: '--workspace-root', message: 'is inside the git directory' }]);
    }
  }
  if (!isInside(repo, real)) return real;
  const tracked = (await run(repo, ['ls-files', '--', rel])).trim();
  if (tracked !== '') {
    throw new ValidationError(`--workspace-root ${shown} holds files git tracks; choose a directory of its own (default ${'.orch/worktrees'})`, [
      { path: '--workspace-root', message: 'holds tracked files' },
    ]);
  }
  return real;
}

/** Whether `dir` is `parent` or lies below it (plain path arithmetic; `..foo` is a name, not a way up). */
function isInside(parent: string, dir: string): boolean {
  const rel = path.relative(parent, dir);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** `dir` with symbolic links resolved in the part of it that exists (the rest may not exist yet). */
function realPathSoFar(dir: string): string {
  let existing = path.resolve(dir);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(existing), ...rest);
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) return path.resolve(dir);
      rest.unshift(path.basename(existing));
      existing = parent;
    }
  }
}

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
  await clearDeadGitLocks(repo, branch, dir);
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
  else if (registered && interrupted) await run(repo, ['worktree', 'unlock', dir]); // so prune forgets it
  else if (hasDir) fs.rmdirSync(dir);
  await probe(repo, ['worktree', 'prune']);
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
  const common = await gitCommonDir(repo);
  const candidates = [path.join(common, 'refs', 'heads', ...branch.split('/')) + '.lock'];
  if (dir !== undefined) {
    const admin = worktreeAdminDir(dir);
    if (admin !== undefined && isInside(path.join(common, 'worktrees'), admin)) {
      candidates.push(path.join(admin, 'index.lock'), path.join(admin, 'HEAD.lock'));
    }
  }
  const removed: string[] = [];
  for (const f of candidates) {
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

/** The private git directory of the linked worktree at `dir` (from its `.git` file), if any. */
function worktreeAdminDir(dir: string): string | undefined {
  try {
    const m = /^gitdir: (.+)$/m.exec(fs.readFileSync(path.join(dir, '.git'), 'utf8'));
    return m?.[1] === undefined ? undefined : path.resolve(dir, m[1].trim());
  } catch {
    return undefined;
  }
}

/** Removes `dir` and its parents while they are empty, stopping at `stop` (never removed). */
export function removeEmptyParents(dir: string, stop: string): void {
  for (let d = dir; d.startsWith(`${stop}${path.sep}`); d = path.dirname(d)) {
    try {
      fs.rmdirSync(d);
    } catch {
      return;
    }
  }
}

/** Makes sure git ignores `dir` when it lies inside the repository (via .git/info/exclude). */
export async function ignoreInside(root: string, dir: string): Promise<void> {
  const rel = path.relative(root, dir);
  if (rel === '' || !isInside(root, dir)) return;
  if ((await probe(root, ['check-ignore', '--quiet', '--no-index', '--', rel])) !== undefined) return;
  const common = (await run(root, ['rev-parse', '--git-common-dir'])).trim();
  const exclude = path.join(path.resolve(root, common), 'info', 'exclude');
  makeDirs(path.dirname(exclude));
  // Anchored, with gitignore's special characters escaped.
  const pattern = `/${rel
    .split(path.sep)
    .join('/')
    .replace(/[\\*?[\]!#]/g, (c) => `\\${c}`)}/`;
  const existing = fs.existsSync(exclude) ? fs.readFileSync(exclude, 'utf8') : '';
  if (!existing.split('\n').includes(pattern)) {
    fs.appendFileSync(exclude, `${existing === '' || existing.endsWith('\n') ? '' : '\n'}# orch attempt worktrees\n${pattern}\n`);
  }
}

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
  if ((await probe(root, ['check-ref-format', '--branch', branch])) === undefined) {
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
    await run(root, ['worktree', 'add', '-b', branch, dir, commit]);
  } catch (err) {
    // Neither the branch nor the directory existed before (checked above, and the caller's
    // dispatch marker keeps other orch processes away from this place): all of it is this call's.
    if ((await listWorktrees(root).catch(() => [])).some((w) => w.path === dir)) await probe(root, ['worktree', 'remove', '--force', '--force', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
    await probe(root, ['worktree', 'prune']);
    if ((await branchHead(root, branch)) === commit) await probe(root, ['branch', '-D', branch]);
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

/** Removes a worktree directory and git's record of it (`force` also drops uncommitted changes). */
export async function removeWorktree(root: string, dir: string, force: boolean): Promise<void> {
  await run(root, ['worktree', 'remove', ...(force ? ['--force', '--force'] : []), dir]);
}

/** Forgets worktrees whose directories are gone. */
export async function pruneWorktrees(root: string): Promise<void> {
  await run(root, ['worktree', 'prune']);
}

export async function deleteBranch(root: string, branch: string): Promise<void> {
  await run(root, ['branch', '-D', branch]);
}

/** Paths with uncommitted changes (including untracked files) in a worktree, exactly as named (read with -z). */
export async function uncommitted(dir: string): Promise<string[]> {
  return statusPaths(await run(dir, ['status', '--porcelain=v1', '-z', '--untracked-files=all']));
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

/** The git config key that names the orch database owning a branch (and the worktree on it). */
function ownerKey(branch: string): string {
  return `branch.${branch}.orchDatabase`;
}

/**
 * Which orch database owns each branch that carries an owner mark (branch name -> database id),
 * read from the repository's config in one call. `git branch -D` drops a branch's mark with it.
 */
export async function branchOwners(root: string): Promise<Map<string, string>> {
  const out = (await probe(root, ['config', '-z', '--get-regexp', '^branch\\..*\\.orchdatabase$'])) ?? '';
  const owners = new Map<string, string>();
  for (const entry of out.split('\0')) {
    const nl = entry.indexOf('\n');
    if (nl < 0) continue;
    const key = entry.slice(0, nl);
    if (!key.startsWith('branch.') || !key.endsWith('.orchdatabase')) continue;
    owners.set(key.slice('branch.'.length, -'.orchdatabase'.length), entry.slice(nl + 1));
  }
  return owners;
}

/** Runs a `git config` write, retrying while another git process holds the config file's lock. */
async function configWrite(root: string, args: string[]): Promise<void> {
  for (let round = 0; ; round += 1) {
    try {
      await run(root, ['config', ...args]);
      return;
    } catch (err) {
      if (!(err instanceof GitFailure) || !/could not lock config file/i.test(err.gitMessage) || round >= 100) throw err;
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
    }
  }
}

/** Marks `branch` (and the worktree that will hold it) as owned by the orch database `owner`. */
export async function setBranchOwner(root: string, branch: string, owner: string): Promise<void> {
  await configWrite(root, [ownerKey(branch), owner]);
}

/** Drops the config of a branch that does not exist (a failed add's owner mark). */
async function dropBranchConfig(root: string, branch: string): Promise<void> {
  if (await branchExists(root, branch)) return;
  await configWrite(root, ['--remove-section', `branch.${branch}`]).catch(() => undefined);
}

export interface CommitInfo {
  sha: string;
  subject: string;
}

/** Commits reachable from `head` but not from `base`, oldest first. */
export async function commitsBetween(root: string, base: string, head: string): Promise<CommitInfo[]> {
  const out = await run(root, ['log', '--reverse', '--format=%H%x09%s', `${base}..${head}`, '--']);
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [sha = '', ...rest] = l.split('\t');
      return { sha, subject: rest.join('\t') };
    });
}

export interface FileChange {
  path: string;
  /** null for binary files. */
  additions: number | null;
  deletions: number | null;
}

/** What changed between two commits, per file (names exactly as they are: read with -z). */
export async function diffStat(root: string, base: string, head: string): Promise<FileChange[]> {
  const out = await run(root, ['diff', '--numstat', '-z', '--no-renames', base, head, '--']);
  return out
    .split('\0')
    .filter((l) => l !== '')
    .map((l) => {
      const [a = '-', d = '-', ...p] = l.split('\t');
      return { path: p.join('\t'), additions: a === '-' ? null : Number(a), deletions: d === '-' ? null : Number(d) };
    });
}

/** The patch between two commits. */
export async function diffPatch(root: string, base: string, head: string): Promise<string> {
  return run(root, ['diff', '--no-color', base, head, '--']);
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
    list.push({ path: wt.slice('worktree '.length), branch: br ? br.slice('branch refs/heads/'.length) : null, locked: lock === undefined ? null : lock.slice('locked'.length).trim() });
  }
  return list;
}

/** Left by a `git worktree add` that was killed before its checkout completed: holds nobody's work. */
export function interruptedAdd(w: { locked: string | null }): boolean {
  return w.locked === 'initializing';
}

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

/** The repository's common git directory (shared by all its worktrees), absolute. */
export async function gitCommonDir(root: string): Promise<string> {
  return path.resolve(root, (await run(root, ['rev-parse', '--git-common-dir'])).trim());
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
    const dirty = statusPaths(await run(checkedOut.path, ['status', '--porcelain=v1', '-z', '--untracked-files=no']));
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
      return { merged: false, conflicts: [], up_to_date: false, error: `${args.into} moved or its checkout is in the way (${err.gitMessage.split('\n')[0] ?? ''})` };
    }
    return { merged: true, commit, conflicts: [], up_to_date: false };
  } finally {
    await probe(root, ['worktree', 'remove', '--force', '--force', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
    await probe(root, ['worktree', 'prune']);
  }
}
