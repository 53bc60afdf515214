import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { WorkResult } from '@orch/inbox';
import {
  INBOX_BIN,
  ROOT,
  commitAll,
  git,
  gitRun,
  initDb,
  initGitRepo,
  json,
  newGitRepo,
  ok,
  orch,
  orchOk,
  rows,
  snapshot,
  tempDir,
  watchRun,
  type CliRun,
} from './helpers.ts';

/**
 * Code mode across machines through the built CLIs: one bare repository stands for the shared git
 * remote, and two clones of it for two machines (the leader's and the worker's), sharing one
 * database. The leader dispatches with --remote (no worktree on its side), `inbox work --repo`
 * makes the worktree in the worker's clone, a scripted agent commits there, the runner pushes the
 * branch back, and the leader's diff, merge and cleanup fetch it. Assertions are on git's own view
 * of all three repositories, the JSON, and the database rows.
 */

const RUN = 'r';
const NODE = process.execPath;
const AGENT = 'remote-worker';

interface Machines {
  db: string;
  dir: string;
  bare: string;
  leader: string;
  worker: string;
}

/** A bare remote, the leader's clone (with one commit on main the remote does not have yet) and the worker's clone. */
function machines(tasks: string[] = ['T1']): Machines {
  const { db, dir } = initDb();
  const bare = path.join(fs.realpathSync(tempDir('orch-remote-bare-')), 'shared.git');
  git(path.dirname(bare), 'init', '-q', '--bare', '--initial-branch=main', bare);
  const leader = newGitRepo('orch-remote-leader-', { 'a.txt': 'one\ntwo\nthree\n' });
  git(leader, 'remote', 'add', 'origin', bare);
  git(leader, 'push', '-q', 'origin', 'main');
  const worker = path.join(fs.realpathSync(tempDir('orch-remote-worker-')), 'clone');
  git(path.dirname(worker), 'clone', '-q', bare, worker);
  git(worker, 'config', 'user.name', 'Worker');
  git(worker, 'config', 'user.email', 'worker@example.com');
  git(worker, 'config', 'commit.gpgsign', 'false');
  // The base the leader dispatches from exists only on the leader's machine.
  fs.writeFileSync(path.join(leader, 'b.txt'), 'local only\n');
  commitAll(leader, 'leader-only commit');
  orchOk(db, ['run', 'init', '--run', RUN, '--goal', 'code across machines']);
  for (const t of tasks) orchOk(db, ['task', 'add', '--run', RUN, '--task', t, '--title', `title of ${t}`, '--default-to', AGENT]);
  return { db, dir, bare, leader, worker };
}

interface Attempt {
  id: string;
  thread_id: string;
  branch: string;
  base_commit: string;
  worktree_path: string | null;
  workspace_root: string | null;
  remote_url: string | null;
  repo_path: string;
  state: string;
}

function dispatchRemote(m: Machines, task = 'T1', flags: string[] = ['--remote', 'origin']): Attempt {
  return orchOk(m.db, ['dispatch', '--run', RUN, '--task', task, '--execution-mode', 'code', '--base-ref', 'main', '--body', `do ${task}`, ...flags], {
    cwd: m.leader,
  }).attempt;
}

/** The commit `refs/heads/<branch>` names in the bare remote, or undefined. */
function remoteHead(bare: string, branch: string): string | undefined {
  const r = gitRun(bare, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** A shell agent that commits `file` in its worktree (its current directory). Extra script lines run first. */
function committingAgent(file: string, before = ''): string[] {
  return ['/bin/sh', '-c', `set -e\n${before}\necho "from the worker" > ${file}\ngit add ${file}\ngit commit -q -m "worker adds ${file}"\necho committed`];
}

function runWork(m: Machines, command: string[], extra: string[] = ['--repo', '']): Promise<CliRun> {
  const args = extra[0] === '--repo' && extra[1] === '' ? ['--repo', m.worker] : extra;
  const child = spawn(
    NODE,
    [INBOX_BIN, '--db', m.db, '--json', 'work', '--agent', AGENT, '--once', '--work-dir', path.join(m.dir, 'work'), ...args, '--', ...command],
    {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', GIT_TERMINAL_PROMPT: '0' },
    },
  );
  return watchRun(child, 'inbox work', 60_000).done;
}

function output(r: CliRun): WorkResult {
  try {
    return json<WorkResult>(r);
  } catch {
    throw new Error(`runner printed no JSON (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

function lastMessage(db: string, threadId: string): { kind: string; body: string; payload: Record<string, unknown> } {
  const all = rows<{ kind: string; body: string; payload: string | null }>(
    db,
    'select kind, body, payload from inbox_messages where thread_id = ? order by id',
    threadId,
  );
  const m = all.at(-1);
  if (!m) throw new Error(`no messages on ${threadId}`);
  return { kind: m.kind, body: m.body, payload: m.payload ? (JSON.parse(m.payload) as Record<string, unknown>) : {} };
}

function threadState(db: string, id: string): string {
  return rows<{ state: string }>(db, 'select state from inbox_threads where id = ?', id)[0]?.state ?? '?';
}

const workerWorktree = (m: Machines, task = 'T1', n = 1): string => path.join(m.worker, '.orch', 'worktrees', RUN, task, String(n));

describe('code mode across machines (slow)', () => {
  it('dispatch --remote pushes the base as the attempt branch; the worker commits via inbox work --repo; diff, merge and cleanup fetch it', async () => {
    const m = machines();
    const base = git(m.leader, 'rev-parse', 'main');
    const a = dispatchRemote(m);
    expect(a).toMatchObject({
      state: 'dispatched',
      branch: `orch/${RUN}/T1/1`,
      base_commit: base,
      worktree_path: null,
      workspace_root: null,
      remote_url: m.bare,
      repo_path: m.leader,
    });
    // The remote has the attempt branch at the leader-only base; the leader has no worktree and no branch.
    expect(remoteHead(m.bare, a.branch)).toBe(base);
    expect(
      git(m.leader, 'worktree', 'list', '--porcelain')
        .split('\n')
        .filter((l) => l.startsWith('worktree ')),
    ).toEqual([`worktree ${m.leader}`]);
    expect(gitRun(m.leader, ['rev-parse', '--verify', '--quiet', `refs/heads/${a.branch}`]).code).not.toBe(0);
    expect(rows(m.db, 'select remote_url, worktree_path, branch from orch_attempts')).toEqual([{ remote_url: m.bare, worktree_path: null, branch: a.branch }]);
    // The brief gives a worker without the runner the exact git commands.
    const brief = ok(m.db, ['show', '--thread', a.thread_id]).messages[0].payload.brief.text as string;
    expect(brief).toContain(`git fetch ${m.bare} refs/heads/${a.branch}`);
    expect(brief).toContain(`git worktree add -b ${a.branch} .orch/worktrees/${RUN}/T1/1 FETCH_HEAD`);
    expect(brief).toContain(`git push ${m.bare} ${a.branch}:refs/heads/${a.branch}`);

    const r = await runWork(m, committingAgent('new.txt'));
    expect(r.code, r.stderr).toBe(0);
    const wt = workerWorktree(m);
    expect(output(r).handled[0]).toMatchObject({ thread_id: a.thread_id, outcome: 'done', work_dir: wt });
    const head = git(wt, 'rev-parse', 'HEAD');
    expect(git(wt, 'symbolic-ref', '--short', 'HEAD')).toBe(a.branch);
    expect(git(wt, 'rev-parse', 'HEAD^')).toBe(base);
    expect(remoteHead(m.bare, a.branch)).toBe(head);
    const result = lastMessage(m.db, a.thread_id);
    expect(result.kind).toBe('result');
    expect(result.payload.git).toEqual({ pushed: true, remote_url: m.bare, branch: a.branch, head_commit: head, worktree: wt, uncommitted: 0 });
    // The worker's clone stays clean: its worktrees are ignored.
    expect(git(m.worker, 'status', '--porcelain')).toBe('');

    const diff = orchOk(m.db, ['diff', '--run', RUN, '--task', 'T1'], { cwd: m.leader });
    expect(diff).toMatchObject({ base_commit: base, branch: a.branch, head_commit: head, uncommitted: null });
    expect(diff.commits).toEqual([{ sha: head, subject: 'worker adds new.txt' }]);
    expect(diff.files).toEqual([{ path: 'new.txt', additions: 1, deletions: 0 }]);
    expect(git(m.leader, 'rev-parse', `refs/heads/${a.branch}`)).toBe(head);

    // doctor finds nothing wrong with an attempt that has no worktree on this machine.
    const doctor = orch(['--db', m.db, '--json', 'doctor', '--run', RUN, '--repo-path', m.leader], { cwd: m.leader });
    expect(doctor.code, doctor.stdout).toBe(0);

    const merged = orchOk(m.db, ['merge', '--run', RUN, '--task', 'T1'], { cwd: m.leader });
    expect(merged).toMatchObject({ into: 'main', merged: true });
    expect(git(m.leader, 'show', 'main:new.txt')).toBe('from the worker');
    expect(git(m.leader, 'merge-base', '--is-ancestor', head, 'main')).toBe('');

    const cleaned = orchOk(m.db, ['cleanup', '--run', RUN, '--all-completed'], { cwd: m.leader });
    expect(cleaned.errors).toBe(0);
    expect(cleaned.attempts[0]).toMatchObject({ branch: a.branch, branch_deleted: true, removed: false, unmerged_commits: 0 });
    expect(remoteHead(m.bare, a.branch)).toBeUndefined();
    expect(gitRun(m.leader, ['rev-parse', '--verify', '--quiet', `refs/heads/${a.branch}`]).code).not.toBe(0);
    expect(rows<{ branch_deleted_at: number | null }>(m.db, 'select branch_deleted_at from orch_attempts')[0]?.branch_deleted_at).not.toBeNull();
  });

  it('cleanup keeps a remote branch that moved on beyond what was merged, and deletes it with --force', async () => {
    const m = machines();
    const a = dispatchRemote(m);
    expect((await runWork(m, committingAgent('one.txt'))).code).toBe(0);
    orchOk(m.db, ['merge', '--run', RUN, '--task', 'T1'], { cwd: m.leader });
    // Someone pushes one more commit to the attempt branch after the merge.
    const wt = workerWorktree(m);
    fs.writeFileSync(path.join(wt, 'late.txt'), 'late\n');
    const late = commitAll(wt, 'late work');
    git(wt, 'push', '-q', m.bare, `${a.branch}:refs/heads/${a.branch}`);

    const dry = orchOk(m.db, ['cleanup', '--run', RUN, '--all-completed', '--dry-run'], { cwd: m.leader });
    expect(dry.attempts[0]).toMatchObject({ branch_deleted: false, would_delete_branch: false, unmerged_commits: 1 });
    const kept = orchOk(m.db, ['cleanup', '--run', RUN, '--all-completed'], { cwd: m.leader });
    expect(kept.attempts[0]).toMatchObject({ branch_deleted: false, unmerged_commits: 1 });
    expect(kept.attempts[0].note).toMatch(/kept branch .* 1 commit\(s\) on no other branch/);
    expect(remoteHead(m.bare, a.branch)).toBe(late);

    const forced = orchOk(m.db, ['cleanup', '--run', RUN, '--all-completed', '--force'], { cwd: m.leader });
    expect(forced.attempts[0]).toMatchObject({ branch_deleted: true });
    expect(remoteHead(m.bare, a.branch)).toBeUndefined();
  });

  it('a push git refuses (someone else pushed the branch) fails the thread and keeps the work in the worker worktree', async () => {
    const m = machines();
    const a = dispatchRemote(m);
    // The agent plays a stale holder too: it pushes another commit to the branch before committing its own.
    const rival = `other=$(git commit-tree "HEAD^{tree}" -p HEAD -m "someone else")\ngit push -q ${m.bare} "$other:refs/heads/${a.branch}"`;
    const r = await runWork(m, committingAgent('mine.txt', rival));
    expect(r.code).toBe(4);
    const wt = workerWorktree(m);
    expect(output(r).handled[0]).toMatchObject({ outcome: 'failed', thread_state: 'failed' });
    const failure = lastMessage(m.db, a.thread_id);
    expect(failure.kind).toBe('failure');
    expect(failure.body).toMatch(/could not be pushed/);
    expect(failure.body).toContain(wt);
    expect(failure.payload.git).toMatchObject({ pushed: false, branch: a.branch, worktree: wt });
    // Nothing lost: the worker's commit is in its worktree, the rival's is on the remote, untouched.
    expect(git(wt, 'log', '-1', '--format=%s')).toBe('worker adds mine.txt');
    expect(git(m.bare, 'log', '-1', '--format=%s', a.branch)).toBe('someone else');
  });

  it('the worker fails the attempt, saying why, when the remote is unreachable, lacks the branch, or its repo is not a clone', async () => {
    // Unreachable: the remote moved away after the dispatch.
    const m1 = machines();
    const a1 = dispatchRemote(m1);
    fs.renameSync(m1.bare, `${m1.bare}.moved`);
    const r1 = await runWork(m1, committingAgent('x.txt'));
    expect(r1.code).toBe(4);
    expect(threadState(m1.db, a1.thread_id)).toBe('failed');
    expect(lastMessage(m1.db, a1.thread_id).body).toMatch(/cannot reach the git remote/);
    expect(fs.existsSync(workerWorktree(m1))).toBe(false);

    // The branch (and so the base commit, which only the leader has) is missing on the remote.
    const m2 = machines();
    const a2 = dispatchRemote(m2);
    git(m2.bare, 'update-ref', '-d', `refs/heads/${a2.branch}`);
    const r2 = await runWork(m2, committingAgent('x.txt'));
    expect(r2.code).toBe(4);
    expect(lastMessage(m2.db, a2.thread_id).body).toMatch(new RegExp(`the attempt branch ${a2.branch} is not on`));
    expect(gitRun(m2.worker, ['cat-file', '-e', `${a2.base_commit}^{commit}`]).code).not.toBe(0);

    // Not a clone: a repository with history of its own.
    const m3 = machines();
    const a3 = dispatchRemote(m3);
    const stranger = initGitRepo(path.join(tempDir('orch-remote-stranger-'), 'repo'), { 'z.txt': 'z\n' });
    const r3 = await runWork(m3, committingAgent('x.txt'), ['--repo', stranger]);
    expect(r3.code).toBe(4);
    expect(lastMessage(m3.db, a3.thread_id).body).toMatch(/is not a clone of/);
    expect(fs.existsSync(path.join(stranger, '.orch'))).toBe(false);

    // No --repo at all: the runner says what to do.
    const m4 = machines();
    const a4 = dispatchRemote(m4);
    const r4 = await runWork(m4, committingAgent('x.txt'), []);
    expect(r4.code).toBe(4);
    expect(lastMessage(m4.db, a4.thread_id).body).toMatch(/run `inbox work --repo PATH`/);
  });

  it('--repo that is not a git working tree is refused before anything is claimed', async () => {
    const m = machines();
    const a = dispatchRemote(m);
    const before = snapshot(m.db);
    const r = await runWork(m, committingAgent('x.txt'), ['--repo', tempDir('orch-remote-plain-')]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr).error.message).toMatch(/--repo .*is not inside a git working tree/);
    expect(snapshot(m.db)).toEqual(before);
    expect(threadState(m.db, a.thread_id)).toBe('open');
  });

  it('dispatch refuses, writing nothing, an unknown remote, an unreachable URL, or an attempt branch the remote has elsewhere', () => {
    const m = machines();
    const before = snapshot(m.db);
    const fail = (flags: string[], exit: number, message: RegExp, mode = 'code'): void => {
      const r = orch(['--db', m.db, '--json', 'dispatch', '--run', RUN, '--task', 'T1', '--execution-mode', mode, '--body', 'x', ...flags], { cwd: m.leader });
      expect(r.code, r.stderr).toBe(exit);
      expect(JSON.parse(r.stderr).error.message).toMatch(message);
      expect(snapshot(m.db)).toEqual(before);
    };
    fail(['--remote', 'nope'], 2, /no remote called nope/);
    fail(['--repo-url', path.join(m.dir, 'no-such.git')], 4, /cannot reach the remote/);
    fail(['--remote', 'origin', '--repo-url', m.bare], 2, /either --remote or --repo-url/);
    fail(['--remote', 'origin'], 2, /--remote applies to --execution-mode code only/, 'analysis');
    // A branch of that name already on the remote with other commits is never overwritten.
    const other = git(m.leader, 'rev-parse', 'main^');
    git(m.leader, 'push', '-q', m.bare, `${other}:refs/heads/orch/${RUN}/T1/1`);
    fail(['--remote', 'origin', '--base-ref', 'main'], 4, /already exists on .* not at the base commit/);
    expect(remoteHead(m.bare, `orch/${RUN}/T1/1`)).toBe(other);
  });

  it('a claim that lost its lease pushes nothing; the next claim on that machine reuses the worktree and pushes both commits', async () => {
    const m = machines();
    const a = dispatchRemote(m);
    const marker = path.join(m.dir, 'first-claim-done');
    // First claim: commits, then gives the thread back (its lease ends), and exits 0.
    const first = [
      '/bin/sh',
      '-c',
      `set -e\necho one > one.txt\ngit add one.txt\ngit commit -q -m "first claim"\ntouch ${marker}\n"$INBOX_BIN" --db "$INBOX_DB" release --thread "$INBOX_THREAD_ID" --lease "$INBOX_LEASE" > /dev/null`,
    ];
    const r1 = await runWork(m, first);
    expect(output(r1).handled[0]).toMatchObject({ outcome: 'lease_lost' });
    const wt = workerWorktree(m);
    const firstCommit = git(wt, 'rev-parse', 'HEAD');
    // Not the lease holder at the end: nothing was pushed.
    expect(remoteHead(m.bare, a.branch)).toBe(a.base_commit);
    expect(fs.existsSync(marker)).toBe(true);

    const r2 = await runWork(m, committingAgent('two.txt'));
    expect(r2.code, r2.stderr).toBe(0);
    expect(output(r2).handled[0]).toMatchObject({ outcome: 'done', claim: 2, work_dir: wt });
    const head = git(wt, 'rev-parse', 'HEAD');
    expect(git(wt, 'rev-parse', 'HEAD^')).toBe(firstCommit);
    expect(remoteHead(m.bare, a.branch)).toBe(head);
    const diff = orchOk(m.db, ['diff', '--run', RUN, '--task', 'T1', '--stat'], { cwd: m.leader });
    expect(diff.commits.map((c: { subject: string }) => c.subject)).toEqual(['first claim', 'worker adds two.txt']);
  });

  it('retry dispatches the next attempt through the same remote', async () => {
    const m = machines();
    const a = dispatchRemote(m, 'T1', ['--repo-url', m.bare]);
    expect(a.remote_url).toBe(m.bare);
    expect((await runWork(m, ['/bin/sh', '-c', 'exit 3'])).code).toBe(4);
    // The text output says where the branch went.
    const text = orch(['--db', m.db, 'retry', '--run', RUN, '--task', 'T1'], { cwd: m.leader });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`branch orch/${RUN}/T1/2 on ${m.bare} (no worktree here)`);
    const b = orchOk(m.db, ['task', 'show', '--run', RUN, '--task', 'T1']).attempts.at(-1) as Attempt;
    expect(b).toMatchObject({ branch: `orch/${RUN}/T1/2`, remote_url: m.bare, worktree_path: null });
    expect(remoteHead(m.bare, b.branch)).toBe(a.base_commit);
  });
});
