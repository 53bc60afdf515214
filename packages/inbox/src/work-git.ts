// `inbox work --repo PATH`: code mode across machines on the worker's side. An attempt dispatched
// with `orch dispatch --remote/--repo-url` names a git remote instead of a worktree on the leader's
// disk; the runner makes the attempt's worktree in its own clone from the branch on that remote,
// runs the command there, and pushes the branch back (never forced) before the outcome is posted.
// git runs as a subprocess without a shell, never inside a database transaction.
import fs from 'node:fs';
import path from 'node:path';
import { ConflictError, LeaseLostError, ValidationError } from '@orch/store';
import { readTaskPayload } from './task-payload.ts';
import type { MessageView } from './views.ts';
import type { WorkBackend } from './work-backend.ts';

/** Where the runner makes attempt worktrees, relative to the top of the worker's clone (as orch does on the leader's side). */
export const WORKER_WORKTREES = '.orch/worktrees';

/** What an attempt dispatched across machines tells the worker: where its branch is, and what it starts from. */
export interface RemoteAttempt {
  url: string;
  branch: string;
  baseCommit: string;
  run: string;
  task: string;
  number: number;
}

/** What pushing the attempt branch back came to (see pushAttemptBranch). */
export type PushOutcome =
  | { pushed: true; remote_url: string; branch: string; head_commit: string; worktree: string; uncommitted: number }
  | { pushed: false; remote_url: string; branch: string; worktree: string; why: string };

/** The remote hand-off of a thread's task payload, or null for any other thread (analysis, or a worktree on the leader's disk). */
export function remoteAttempt(messages: MessageView[]): RemoteAttempt | null {
  const p = readTaskPayload(messages[0]?.payload ?? null);
  if (p?.attempt.execution_mode !== 'code' || p.attempt.remote_url === undefined) return null;
  return { url: p.attempt.remote_url, branch: p.attempt.branch, baseCommit: p.attempt.base_commit, run: p.run.id, task: p.task.id, number: p.attempt.number };
}

/**
 * The top of the git working tree at `repo` (links resolved): checked once, before anything is claimed.
 *
 * @throws ValidationError (2) when `repo` is not a directory in a git working tree.
 */
export async function checkWorkRepo(repo: string): Promise<string> {
  const refuse = (why: string): never => {
    throw new ValidationError(`--repo ${repo}: ${why}`, [{ path: '--repo', message: why }]);
  };
  if (!fs.existsSync(repo) || !fs.statSync(repo).isDirectory()) refuse('no such directory');
  const top = await git(repo, ['rev-parse', '--show-toplevel']);
  if (top.code !== 0 || top.out.trim() === '') refuse('is not inside a git working tree (give your clone of the run repository)');
  return fs.realpathSync(top.out.trim());
}

/**
 * Makes (or finds again) the attempt's worktree in the worker's clone `repo`:
 * `<repo>/.orch/worktrees/<run>/<task>/<N>` on branch `<branch>`, started from the branch as the
 * remote has it (the base commit, or what an earlier holder of this attempt pushed). A worktree or
 * local branch already there from an earlier claim is kept, moved forward to the remote's when
 * that is ahead; work that exists only here is never dropped (diverged: refused).
 *
 * @returns the worktree's path.
 * @throws Error with a message for the thread's failure: the remote cannot be reached, lacks the
 *   branch or the base commit, `repo` shares no history with it (not a clone), or the place is taken.
 */
export async function prepareAttemptWorktree(repo: string, a: RemoteAttempt): Promise<string> {
  const ls = await git(repo, ['ls-remote', '--', a.url, `refs/heads/${a.branch}`]);
  if (ls.code !== 0) throw new Error(`cannot reach the git remote ${a.url}: ${firstLine(ls.err)}`);
  const tip = ls.out
    .split('\n')
    .find((l) => l.endsWith(`\trefs/heads/${a.branch}`))
    ?.split('\t')[0];
  if (tip === undefined) {
    throw new Error(
      `the attempt branch ${a.branch} is not on ${a.url} (deleted, or the remote is not the one the leader pushed to); ask the leader to retry the task`,
    );
  }
  const mirror = `refs/orch/remote/${a.branch}`;
  const fetched = await git(repo, ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--', a.url, `+refs/heads/${a.branch}:${mirror}`]);
  if (fetched.code !== 0) throw new Error(`cannot fetch ${a.branch} from ${a.url}: ${firstLine(fetched.err)}`);
  if (!(await isAncestor(repo, a.baseCommit, tip))) {
    throw new Error(`the branch ${a.branch} on ${a.url} (at ${tip.slice(0, 12)}) does not contain the attempt's base commit ${a.baseCommit.slice(0, 12)}`);
  }
  const shared = await git(repo, ['merge-base', 'HEAD', tip]);
  if (shared.code !== 0 || shared.out.trim() === '') {
    throw new Error(
      `${repo} is not a clone of ${a.url}: it shares no history with the attempt's base commit ${a.baseCommit.slice(0, 12)} (give --repo your clone of that repository)`,
    );
  }
  const root = path.join(repo, WORKER_WORKTREES);
  const dir = path.join(root, a.run, a.task, String(a.number));
  if (path.relative(root, dir).startsWith('..')) throw new Error(`worktree path ${dir} escapes ${root}`);
  await ignoreWorktrees(repo);
  const local = await revParse(repo, `refs/heads/${a.branch}`);
  if (fs.existsSync(dir)) {
    const on = await git(dir, ['symbolic-ref', '--quiet', '--short', 'HEAD']);
    const common = await git(dir, ['rev-parse', '--path-format=absolute', '--git-common-dir']);
    const mine = await git(repo, ['rev-parse', '--path-format=absolute', '--git-common-dir']);
    if (on.out.trim() !== a.branch || common.code !== 0 || common.out.trim() !== mine.out.trim()) {
      throw new Error(`${dir} already exists and is not this repository's worktree of ${a.branch}; move it away`);
    }
  }
  if (local !== undefined && local !== tip) {
    if (await isAncestor(repo, tip, local)) {
      // This clone is ahead (pushed nothing yet, or a push failed): its work stays.
    } else if (await isAncestor(repo, local, tip)) {
      const moved = fs.existsSync(dir)
        ? await git(dir, ['merge', '--ff-only', '--quiet', tip])
        : await git(repo, ['update-ref', `refs/heads/${a.branch}`, tip, local]);
      if (moved.code !== 0) throw new Error(`cannot bring ${a.branch} forward to ${a.url}'s ${tip.slice(0, 12)}: ${firstLine(moved.err)}`);
    } else {
      throw new Error(
        `the local branch ${a.branch} (${local.slice(0, 12)}) and ${a.url}'s (${tip.slice(0, 12)}) have diverged; nothing was changed: reconcile them by hand`,
      );
    }
  }
  if (fs.existsSync(dir)) return dir;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const add =
    local === undefined
      ? await git(repo, ['worktree', 'add', '--quiet', '-b', a.branch, dir, tip])
      : await git(repo, ['worktree', 'add', '--quiet', dir, a.branch]);
  if (add.code !== 0) throw new Error(`cannot make the worktree ${dir}: ${firstLine(add.err)}`);
  return dir;
}

/** What pushing needs of the claim: the lease to check just before, and whether it was lost already. */
export interface PushClaim {
  readonly inbox: Pick<WorkBackend, 'heartbeat'>;
  readonly threadId: string;
  readonly lease: string;
  readonly leaseLost: boolean;
}

/**
 * Pushes the attempt branch from the worktree to the remote once the command has ended: only while
 * this claim still holds the thread (a heartbeat just before says so; a thread the command finished
 * itself counts as held), and never forced, so a push by anyone else meanwhile makes git refuse
 * this one instead of losing theirs. The worktree is kept either way.
 *
 * @returns undefined when the lease was lost (nothing pushed); else what the push came to.
 */
export async function pushAttemptBranch(claim: PushClaim, worktree: string, a: RemoteAttempt): Promise<PushOutcome | undefined> {
  if (claim.leaseLost) return undefined;
  try {
    await claim.inbox.heartbeat({ threadId: claim.threadId, lease: claim.lease });
  } catch (err) {
    if (err instanceof LeaseLostError) return undefined;
    if (!(err instanceof ConflictError)) throw err;
  }
  const base = { remote_url: a.url, branch: a.branch, worktree };
  const head = await revParse(worktree, `refs/heads/${a.branch}`);
  if (head === undefined) return { pushed: false, ...base, why: `the branch ${a.branch} is gone from the worktree's repository` };
  const status = await git(worktree, ['status', '--porcelain=v1', '-z', '--untracked-files=all']);
  const uncommitted = status.out.split('\0').filter((f) => f.length > 3).length;
  const push = await git(worktree, ['push', '--quiet', '--', a.url, `refs/heads/${a.branch}:refs/heads/${a.branch}`]);
  if (push.code !== 0) {
    const why = /non-fast-forward|fetch first|rejected/i.test(push.err)
      ? `the remote's ${a.branch} has commits this worktree lacks (someone else pushed this attempt's branch); git refused the push`
      : `git push to ${a.url} failed: ${firstLine(push.err)}`;
    return { pushed: false, ...base, why };
  }
  return { pushed: true, ...base, head_commit: head, uncommitted };
}

async function isAncestor(dir: string, commit: string, of: string): Promise<boolean> {
  return (await git(dir, ['merge-base', '--is-ancestor', commit, of])).code === 0;
}

async function revParse(dir: string, ref: string): Promise<string | undefined> {
  const r = await git(dir, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  return r.code === 0 && r.out.trim() !== '' ? r.out.trim() : undefined;
}

/** Makes git ignore the worktrees folder of the clone (in its info/exclude), unless something ignores it already. */
async function ignoreWorktrees(repo: string): Promise<void> {
  if ((await git(repo, ['check-ignore', '--quiet', '--no-index', '--', WORKER_WORKTREES])).code === 0) return;
  const common = await git(repo, ['rev-parse', '--path-format=absolute', '--git-common-dir']);
  if (common.code !== 0) return;
  const exclude = path.join(common.out.trim(), 'info', 'exclude');
  fs.mkdirSync(path.dirname(exclude), { recursive: true });
  const existing = fs.existsSync(exclude) ? fs.readFileSync(exclude, 'utf8') : '';
  const pattern = `/${WORKER_WORKTREES}/`;
  if (existing.split('\n').includes(pattern)) return;
  fs.appendFileSync(exclude, `${existing === '' || existing.endsWith('\n') ? '' : '\n'}# orch attempt worktrees\n${pattern}\n`);
}

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .find((l) => l.trim() !== '' && !l.startsWith('hint:'))
      ?.trim() ?? '(no message)'
  );
}

/** Runs git in `dir` without a shell and without ever prompting for credentials. */
async function git(dir: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  // Loaded here, not at the top: every inbox command loads this package, only the runner runs git.
  const { execFile } = process.getBuiltinModule('node:child_process');
  return new Promise((resolve) => {
    execFile(
      'git',
      args,
      { cwd: dir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? Number(err.code) : 1;
        resolve({ code, out: stdout, err: stderr || (err?.message ?? '') });
      },
    );
  });
}

/**
 * The worktree for a claimed attempt dispatched across machines, made in `repo` (--repo).
 *
 * @throws Error saying what to do when the runner has no --repo, or as prepareAttemptWorktree.
 */
export async function remoteWorktree(repo: string | undefined, a: RemoteAttempt): Promise<string> {
  if (repo === undefined) {
    throw new Error(
      `attempt ${a.number} of ${a.run}/${a.task} is handed over through the git remote ${a.url}: run \`inbox work --repo PATH\` with PATH your clone of it`,
    );
  }
  return prepareAttemptWorktree(repo, a);
}
