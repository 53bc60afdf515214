import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { commitAll, git, gitRun, initDb, json, newGitRepo, ok, orch, orchOk, rows, snapshot, tempDir } from './helpers.ts';

/**
 * Code mode end to end through the built CLIs: dispatch makes a branch and a worktree per attempt,
 * a worker commits there with plain git and posts its result, and the leader diffs, merges and
 * cleans up. Every test works on a real temporary git repository and asserts on git's own view of
 * it (branches, worktrees, file contents, status) as well as on the JSON and the database.
 */

const RUN = 'r';

// ---------------------------------------------------------------------------------------------
// git helpers (arguments as arrays; never a shell)

/** A fresh repository on branch main with one commit holding a.txt (three lines). */
const makeRepo = (): string => newGitRepo('orch-code-repo-', { 'a.txt': 'one\ntwo\nthree\n' });

const sha = (repo: string, ref: string): string => git(repo, 'rev-parse', '--verify', `${ref}^{commit}`);
const branches = (repo: string): string[] =>
  git(repo, 'branch', '--list', '--format=%(refname:short)')
    .split('\n')
    .filter((b) => b !== '')
    .sort();
const status = (dir: string): string => git(dir, 'status', '--porcelain', '--untracked-files=all');
const read = (file: string): string => fs.readFileSync(file, 'utf8');
const parents = (repo: string, ref: string): string[] => git(repo, 'rev-list', '--parents', '-n', '1', ref).split(' ').slice(1);

/** `git worktree list --porcelain` as {path, branch, prunable}. */
function worktrees(repo: string): { path: string; branch: string | null; prunable: boolean }[] {
  return git(repo, 'worktree', 'list', '--porcelain')
    .split('\n\n')
    .filter((b) => b.trim() !== '')
    .map((block) => {
      const lines = block.split('\n');
      const wt = lines.find((l) => l.startsWith('worktree ')) ?? '';
      const br = lines.find((l) => l.startsWith('branch '));
      return {
        path: wt.slice('worktree '.length),
        branch: br ? br.slice('branch refs/heads/'.length) : null,
        prunable: lines.some((l) => l.startsWith('prunable')),
      };
    });
}
const worktreePaths = (repo: string): string[] =>
  worktrees(repo)
    .map((w) => w.path)
    .sort();

/** Every path under `dir` (relative, sorted), `.git` included unless skipped. */
function tree(dir: string, skipGit = false): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      if (skipGit && rel === '' && name === '.git') continue;
      const r = rel === '' ? name : path.join(rel, name);
      out.push(r);
      if (fs.statSync(path.join(dir, r)).isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

// ---------------------------------------------------------------------------------------------
// orch / inbox helpers

interface Attempt {
  id: string;
  number: number;
  state: string;
  execution_mode: string;
  thread_id: string;
  repo_path: string | null;
  workspace_root: string | null;
  base_ref: string | null;
  base_commit: string | null;
  worktree_path: string | null;
  branch: string | null;
}

/** A database with run RUN and the given tasks (each with default agent `w-<task>`), plus a repo. */
function setup(...tasks: string[]): { db: string; repo: string; root: string } {
  const { db } = initDb();
  const repo = makeRepo();
  orchOk(db, ['run', 'init', '--run', RUN, '--goal', 'code mode']);
  for (const t of tasks) orchOk(db, ['task', 'add', '--run', RUN, '--task', t, '--title', `title of ${t}`, '--default-to', `w-${t}`]);
  return { db, repo, root: path.join(repo, '.orch', 'worktrees') };
}

function dispatchCode(db: string, repo: string, task: string, extra: string[] = []): Attempt {
  return orchOk(db, ['dispatch', '--run', RUN, '--task', task, '--execution-mode', 'code', '--body', `do ${task}`, ...extra], { cwd: repo }).attempt;
}

/** The worker side: claims the attempt's thread; returns the claim (thread, messages, lease). */
function claim(db: string, task: string, a: Attempt): { lease: string; payload: any } {
  const c = ok(db, ['claim', '--agent', `w-${task}`, '--thread', a.thread_id]);
  expect(c.claimed).toBe(true);
  return { lease: c.lease.token, payload: c.messages[0].payload };
}

function result(db: string, a: Attempt, lease: string, body = 'done'): void {
  ok(db, ['result', '--thread', a.thread_id, '--lease', lease, '--body', body]);
}

/** Claim, let `work` change the worktree, then post a result. */
function work(db: string, task: string, a: Attempt, fn: (wt: string) => void = () => undefined): void {
  const { lease } = claim(db, task, a);
  fn(a.worktree_path as string);
  result(db, a, lease);
}

/**
 * Marks branches as this database's (as dispatch does before it makes them), so a worktree or
 * branch made by hand here stands for a leftover of this database's interrupted dispatch.
 */
function markOurs(db: string, repo: string, ...branchNames: string[]): void {
  const [meta] = rows<{ value: string }>(db, "select value from orch_meta where key = 'database_id'");
  for (const b of branchNames) git(repo, 'config', `branch.${b}.orchDatabase`, meta?.value ?? '');
}

/** orch --json that is expected to fail: exit code, nothing on stdout, the JSON error. */
function orchErr(db: string, args: string[], exit: number, cwd?: string): { code: string; message: string; details?: any } {
  const r = orch(['--db', db, '--json', ...args], cwd ? { cwd } : {});
  const where = `exit=${r.code} stdout=${r.stdout} stderr=${r.stderr}`;
  expect(r.code, where).toBe(exit);
  expect(r.stdout, where).toBe('');
  return JSON.parse(r.stderr).error;
}

// ---------------------------------------------------------------------------------------------

describe('dispatch in code mode (slow)', () => {
  it('two tasks get separate worktrees on separate branches, both at main, and .orch stays out of git status', () => {
    const { db, repo, root } = setup('T1', 'T2');
    const main = sha(repo, 'main');
    const a1 = dispatchCode(db, repo, 'T1');
    const a2 = dispatchCode(db, repo, 'T2');

    for (const [a, task] of [
      [a1, 'T1'],
      [a2, 'T2'],
    ] as const) {
      expect(a).toMatchObject({
        number: 1,
        execution_mode: 'code',
        state: 'dispatched',
        repo_path: repo,
        workspace_root: root,
        base_ref: 'main',
        base_commit: main,
        worktree_path: path.join(root, RUN, task, '1'),
        branch: `orch/${RUN}/${task}/1`,
      });
      const wt = a.worktree_path as string;
      expect(fs.statSync(wt).isDirectory()).toBe(true);
      expect(git(wt, 'symbolic-ref', '--short', 'HEAD')).toBe(a.branch);
      expect(git(wt, 'rev-parse', 'HEAD')).toBe(main);
      expect(read(path.join(wt, 'a.txt'))).toBe('one\ntwo\nthree\n');
      expect(status(wt)).toBe('');
    }
    expect(a1.worktree_path).not.toBe(a2.worktree_path);
    expect(a1.branch).not.toBe(a2.branch);
    expect(branches(repo)).toEqual(['main', 'orch/r/T1/1', 'orch/r/T2/1']);
    expect(
      worktrees(repo)
        .map((w) => [w.path, w.branch])
        .sort(),
    ).toEqual(
      [
        [repo, 'main'],
        [a1.worktree_path, a1.branch],
        [a2.worktree_path, a2.branch],
      ].sort(),
    );
    expect(sha(repo, 'orch/r/T1/1')).toBe(main);
    expect(sha(repo, 'orch/r/T2/1')).toBe(main);

    // A file written in one worktree is not in the other, nor in the main checkout.
    fs.writeFileSync(path.join(a1.worktree_path as string, 'only-in-t1.txt'), 'x\n');
    expect(fs.existsSync(path.join(a2.worktree_path as string, 'only-in-t1.txt'))).toBe(false);
    expect(fs.existsSync(path.join(repo, 'only-in-t1.txt'))).toBe(false);
    expect(status(a1.worktree_path as string)).toBe('?? only-in-t1.txt');
    expect(status(a2.worktree_path as string)).toBe('');

    // The worktrees live inside the repository, yet the main checkout is clean: git ignores them.
    expect(status(repo)).toBe('');
    expect(read(path.join(repo, '.git', 'info', 'exclude')).split('\n')).toContain('/.orch/worktrees/');
    expect(gitRun(repo, ['check-ignore', '-q', '.orch/worktrees/r/T1/1/only-in-t1.txt']).code).toBe(0);

    // The database records the same worktree and branch.
    expect(rows(db, 'select task_id, number, branch, worktree_path, base_commit from orch_attempts order by task_id')).toEqual([
      { task_id: 'T1', number: 1, branch: a1.branch, worktree_path: a1.worktree_path, base_commit: main },
      { task_id: 'T2', number: 1, branch: a2.branch, worktree_path: a2.worktree_path, base_commit: main },
    ]);
  });

  it('the worker sees the worktree in its task message; a live attempt cannot be merged', () => {
    const { db, repo } = setup('T1');
    const a = dispatchCode(db, repo, 'T1');
    const { lease, payload } = claim(db, 'T1', a);
    expect(payload.attempt).toMatchObject({ id: a.id, execution_mode: 'code', worktree_path: a.worktree_path, branch: a.branch, base_commit: a.base_commit });

    fs.appendFileSync(path.join(a.worktree_path as string, 'a.txt'), 'four\n');
    commitAll(a.worktree_path as string, 'in progress');
    const main = sha(repo, 'main');
    const err = orchErr(db, ['merge', '--run', RUN, '--task', 'T1'], 4);
    expect(err.code).toBe('CONFLICT');
    expect(err.message).toMatch(/running/);
    expect(sha(repo, 'main')).toBe(main);
    expect(read(path.join(repo, 'a.txt'))).toBe('one\ntwo\nthree\n');
    expect(status(repo)).toBe('');
    result(db, a, lease);
  });
});

describe('diff and merge (slow)', () => {
  it('diff shows the committed work (and lists uncommitted files); merge brings it into main; merging again is up to date', () => {
    const { db, repo } = setup('T1');
    const base = sha(repo, 'main');
    const a = dispatchCode(db, repo, 'T1');
    const wt = a.worktree_path as string;
    let commit = '';
    work(db, 'T1', a, () => {
      fs.appendFileSync(path.join(wt, 'a.txt'), 'worker line\n');
      fs.writeFileSync(path.join(wt, 'b.txt'), 'new file\n');
      commit = commitAll(wt, 'worker change');
      fs.writeFileSync(path.join(wt, 'scratch.txt'), 'not committed\n');
    });

    const d = orchOk(db, ['diff', '--run', RUN, '--task', 'T1']);
    expect(d).toMatchObject({ base_commit: base, branch: 'orch/r/T1/1', head_commit: commit, uncommitted: ['scratch.txt'] });
    expect(d.attempt).toMatchObject({ id: a.id, state: 'done' });
    expect(d.commits).toEqual([{ sha: commit, subject: 'worker change' }]);
    expect(d.files).toEqual([
      { path: 'a.txt', additions: 1, deletions: 0 },
      { path: 'b.txt', additions: 1, deletions: 0 },
    ]);
    expect(d.patch).toContain('+worker line');
    expect(d.patch).toContain('+new file');
    expect(d.patch).not.toContain('not committed');

    const stat = orchOk(db, ['diff', '--run', RUN, '--task', 'T1', '--attempt', a.id, '--stat']);
    expect('patch' in stat).toBe(false);
    expect(stat.files).toEqual(d.files);
    expect(stat.commits).toEqual(d.commits);
    expect(stat.uncommitted).toEqual(['scratch.txt']);

    const m = orchOk(db, ['merge', '--run', RUN, '--task', 'T1']);
    const head = sha(repo, 'main');
    expect(m).toMatchObject({ merged: true, up_to_date: false, into: 'main', strategy: 'merge', commit: head });
    expect(m.attempt.id).toBe(a.id);
    expect(m.commits).toEqual([{ sha: commit, subject: 'worker change' }]);
    expect(head).not.toBe(base);
    expect(parents(repo, 'main')).toEqual([base, commit]); // a real merge commit
    expect(read(path.join(repo, 'a.txt'))).toBe('one\ntwo\nthree\nworker line\n');
    expect(read(path.join(repo, 'b.txt'))).toBe('new file\n');
    expect(fs.existsSync(path.join(repo, 'scratch.txt'))).toBe(false);
    expect(git(repo, 'symbolic-ref', '--short', 'HEAD')).toBe('main');
    expect(status(repo)).toBe('');
    expect(rows(db, 'select merged_into, merge_commit from orch_attempts where id = ?', a.id)).toEqual([{ merged_into: 'main', merge_commit: head }]);
    expect(rows(db, "select count(*) as n from orch_events where type = 'attempt_merged'")).toEqual([{ n: 1 }]);

    const again = orchOk(db, ['merge', '--run', RUN, '--task', 'T1']);
    expect(again).toMatchObject({ merged: false, up_to_date: true, into: 'main', commits: [] });
    expect(sha(repo, 'main')).toBe(head);
    expect(status(repo)).toBe('');
    expect(rows(db, "select count(*) as n from orch_events where type = 'attempt_merged'")).toEqual([{ n: 1 }]);
  });

  it('a conflicting attempt is refused with the file named, leaving main exactly as it was', () => {
    const { db, repo } = setup('T1', 'T2');
    const a1 = dispatchCode(db, repo, 'T1');
    const a2 = dispatchCode(db, repo, 'T2');
    work(db, 'T1', a1, (wt) => {
      fs.writeFileSync(path.join(wt, 'a.txt'), 'ONE from T1\ntwo\nthree\n');
      commitAll(wt, 'T1 edits line 1');
    });
    work(db, 'T2', a2, (wt) => {
      fs.writeFileSync(path.join(wt, 'a.txt'), 'ONE from T2\ntwo\nthree\n');
      commitAll(wt, 'T2 edits line 1');
    });
    orchOk(db, ['merge', '--run', RUN, '--task', 'T1']);
    const main = sha(repo, 'main');
    const before = snapshot(db);

    const err = orchErr(db, ['merge', '--run', RUN, '--task', 'T2'], 4);
    expect(err.code).toBe('CONFLICT');
    expect(err.details.conflicts).toEqual(['a.txt']);
    expect(err.message).toContain('a.txt');
    expect(sha(repo, 'main')).toBe(main);
    expect(status(repo)).toBe('');
    expect(read(path.join(repo, 'a.txt'))).toBe('ONE from T1\ntwo\nthree\n');
    expect(fs.existsSync(path.join(repo, '.git', 'MERGE_HEAD'))).toBe(false);
    expect(git(repo, 'symbolic-ref', '--short', 'HEAD')).toBe('main');
    expect(sha(repo, 'orch/r/T2/1')).toBe(git(a2.worktree_path as string, 'rev-parse', 'HEAD'));
    expect(snapshot(db)).toEqual(before);

    // The same with --strategy squash: still refused, still untouched.
    const err2 = orchErr(db, ['merge', '--run', RUN, '--task', 'T2', '--strategy', 'squash'], 4);
    expect(err2.details.conflicts).toEqual(['a.txt']);
    expect(sha(repo, 'main')).toBe(main);
    expect(status(repo)).toBe('');
    expect(read(path.join(repo, 'a.txt'))).toBe('ONE from T1\ntwo\nthree\n');
    expect(fs.existsSync(path.join(repo, '.git', 'SQUASH_MSG'))).toBe(false);
    expect(snapshot(db)).toEqual(before);
  });

  it('--strategy squash makes exactly one new single-parent commit on main', () => {
    const { db, repo } = setup('T3');
    const a = dispatchCode(db, repo, 'T3');
    work(db, 'T3', a, (wt) => {
      fs.writeFileSync(path.join(wt, 'c.txt'), 'first\n');
      commitAll(wt, 'c one');
      fs.appendFileSync(path.join(wt, 'c.txt'), 'second\n');
      commitAll(wt, 'c two');
    });
    const before = sha(repo, 'main');
    const m = orchOk(db, ['merge', '--run', RUN, '--task', 'T3', '--strategy', 'squash']);
    const after = sha(repo, 'main');
    expect(m).toMatchObject({ merged: true, up_to_date: false, strategy: 'squash', into: 'main', commit: after });
    expect(m.commits.map((c: { subject: string }) => c.subject)).toEqual(['c one', 'c two']);
    expect(git(repo, 'rev-list', '--count', `${before}..main`)).toBe('1');
    expect(parents(repo, 'main')).toEqual([before]);
    expect(read(path.join(repo, 'c.txt'))).toBe('first\nsecond\n');
    expect(status(repo)).toBe('');

    // Squashing the same attempt again must neither add a commit nor disturb main.
    const r = orch(['--db', db, '--json', 'merge', '--run', RUN, '--task', 'T3', '--strategy', 'squash']);
    expect(r.code).not.toBe(1);
    expect(sha(repo, 'main')).toBe(after);
    expect(status(repo)).toBe('');
  });

  it('cleanup after a squash merge deletes the branch without --force (its work is on main), but not once the branch moved', () => {
    const { db, repo } = setup('T3', 'T4');
    const a = dispatchCode(db, repo, 'T3');
    work(db, 'T3', a, (wt) => {
      fs.writeFileSync(path.join(wt, 'c.txt'), 'first\n');
      commitAll(wt, 'c one');
    });
    orchOk(db, ['merge', '--run', RUN, '--task', 'T3', '--strategy', 'squash']);
    const b = dispatchCode(db, repo, 'T4');
    work(db, 'T4', b, (wt) => {
      fs.writeFileSync(path.join(wt, 'd.txt'), 'first\n');
      commitAll(wt, 'd one');
    });
    orchOk(db, ['merge', '--run', RUN, '--task', 'T4', '--strategy', 'squash']);
    // T4's branch gains a commit after its merge: that commit exists nowhere else.
    fs.writeFileSync(path.join(b.worktree_path as string, 'e.txt'), 'late\n');
    commitAll(b.worktree_path as string, 'late');
    const r = orchOk(db, ['cleanup', '--run', RUN, '--all-completed']);
    const byTask = Object.fromEntries(r.attempts.map((e: { task: string }) => [e.task, e]));
    expect(byTask.T3).toMatchObject({ removed: true, branch_deleted: true, unmerged_commits: 0 });
    expect(byTask.T4).toMatchObject({ removed: true, branch_deleted: false });
    expect(byTask.T4.unmerged_commits).toBeGreaterThan(0);
    expect(branches(repo)).toEqual(['main', 'orch/r/T4/1']);
  });

  it('squash-merging an already squash-merged attempt again reports up_to_date (exit 0)', () => {
    const { db, repo } = setup('T3');
    const a = dispatchCode(db, repo, 'T3');
    work(db, 'T3', a, (wt) => {
      fs.writeFileSync(path.join(wt, 'c.txt'), 'first\n');
      commitAll(wt, 'c one');
    });
    orchOk(db, ['merge', '--run', RUN, '--task', 'T3', '--strategy', 'squash']);
    const after = sha(repo, 'main');
    const r = orch(['--db', db, '--json', 'merge', '--run', RUN, '--task', 'T3', '--strategy', 'squash']);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ merged: false, up_to_date: true });
    expect(sha(repo, 'main')).toBe(after);
  });

  it('--into a branch that is not checked out moves only that branch, via a temporary worktree that is gone afterwards', () => {
    const { db, repo, root } = setup('T1');
    git(repo, 'branch', 'release');
    const a = dispatchCode(db, repo, 'T1');
    let commit = '';
    work(db, 'T1', a, (wt) => {
      fs.appendFileSync(path.join(wt, 'a.txt'), 'for release\n');
      commit = commitAll(wt, 'release fix');
    });
    const main = sha(repo, 'main');
    const release = sha(repo, 'release');
    const listed = worktreePaths(repo);

    const m = orchOk(db, ['merge', '--run', RUN, '--task', 'T1', '--into', 'release']);
    const moved = sha(repo, 'release');
    expect(m).toMatchObject({ merged: true, up_to_date: false, into: 'release', commit: moved });
    expect(moved).not.toBe(release);
    expect(parents(repo, 'release')).toEqual([release, commit]);
    expect(git(repo, 'show', 'release:a.txt')).toBe('one\ntwo\nthree\nfor release');

    // main and its checkout are untouched; the temporary worktree is gone.
    expect(sha(repo, 'main')).toBe(main);
    expect(git(repo, 'symbolic-ref', '--short', 'HEAD')).toBe('main');
    expect(read(path.join(repo, 'a.txt'))).toBe('one\ntwo\nthree\n');
    expect(status(repo)).toBe('');
    expect(worktreePaths(repo)).toEqual(listed);
    expect(tree(path.join(root, '.merge'))).toEqual([]);
    expect(branches(repo)).toEqual(['main', 'orch/r/T1/1', 'release']);
    expect(rows(db, 'select merged_into, merge_commit from orch_attempts where id = ?', a.id)).toEqual([{ merged_into: 'release', merge_commit: moved }]);
  });

  it('merging into the checked-out branch is refused while it has uncommitted changes, and they are kept', () => {
    const { db, repo } = setup('T1');
    const a = dispatchCode(db, repo, 'T1');
    work(db, 'T1', a, (wt) => {
      fs.writeFileSync(path.join(wt, 'b.txt'), 'b\n');
      commitAll(wt, 'add b');
    });
    const main = sha(repo, 'main');
    fs.writeFileSync(path.join(repo, 'a.txt'), 'local edit\n');
    orchOk(db, ['status', '--run', RUN]); // folds the worker's result in first
    const before = snapshot(db);

    const err = orchErr(db, ['merge', '--run', RUN, '--task', 'T1', '--into', 'main'], 4);
    expect(err.code).toBe('CONFLICT');
    expect(err.message).toMatch(/uncommitted changes/);
    expect(err.details.files).toEqual(['a.txt']);
    expect(sha(repo, 'main')).toBe(main);
    expect(read(path.join(repo, 'a.txt'))).toBe('local edit\n');
    expect(fs.existsSync(path.join(repo, 'b.txt'))).toBe(false);
    expect(status(repo)).toBe(' M a.txt');
    expect(snapshot(db)).toEqual(before);
  });

  it('the refusal names the uncommitted file exactly (details.files)', () => {
    const { db, repo } = setup('T1');
    const a = dispatchCode(db, repo, 'T1');
    work(db, 'T1', a, (wt) => {
      fs.writeFileSync(path.join(wt, 'b.txt'), 'b\n');
      commitAll(wt, 'add b');
    });
    fs.writeFileSync(path.join(repo, 'a.txt'), 'local edit\n');
    const err = orchErr(db, ['merge', '--run', RUN, '--task', 'T1'], 4);
    expect(err.details.files).toEqual(['a.txt']);
  });
});

describe('retry and reassign (slow)', () => {
  it('retry after fail makes attempt 2 with a fresh worktree and branch from main re-resolved; attempt 1 stays until cleanup', () => {
    const { db, repo, root } = setup('T1');
    const a1 = dispatchCode(db, repo, 'T1');
    const c = claim(db, 'T1', a1);
    fs.writeFileSync(path.join(a1.worktree_path as string, 'half.txt'), 'half done\n');
    const halfCommit = commitAll(a1.worktree_path as string, 'half way');
    ok(db, ['fail', '--thread', a1.thread_id, '--lease', c.lease, '--body', 'gave up']);
    expect(orchOk(db, ['status', '--run', RUN]).tasks[0]).toMatchObject({ id: 'T1', state: 'failed' });

    // main moves on before the retry: the new attempt starts from the new main.
    fs.writeFileSync(path.join(repo, 'later.txt'), 'later\n');
    const newMain = commitAll(repo, 'main moves');
    expect(newMain).not.toBe(a1.base_commit);

    const a2 = orchOk(db, ['retry', '--run', RUN, '--task', 'T1']).attempt as Attempt;
    expect(a2).toMatchObject({
      number: 2,
      execution_mode: 'code',
      state: 'dispatched',
      base_ref: 'main',
      base_commit: newMain,
      branch: 'orch/r/T1/2',
      worktree_path: path.join(root, RUN, 'T1', '2'),
      workspace_root: root,
      repo_path: repo,
    });
    expect(a2.thread_id).not.toBe(a1.thread_id);
    const wt2 = a2.worktree_path as string;
    expect(git(wt2, 'rev-parse', 'HEAD')).toBe(newMain);
    expect(git(wt2, 'symbolic-ref', '--short', 'HEAD')).toBe('orch/r/T1/2');
    expect(fs.existsSync(path.join(wt2, 'later.txt'))).toBe(true);
    expect(fs.existsSync(path.join(wt2, 'half.txt'))).toBe(false);

    // Attempt 1's worktree and branch are still there.
    expect(fs.existsSync(path.join(a1.worktree_path as string, 'half.txt'))).toBe(true);
    expect(sha(repo, 'orch/r/T1/1')).toBe(halfCommit);
    expect(branches(repo)).toEqual(['main', 'orch/r/T1/1', 'orch/r/T1/2']);
    expect(worktreePaths(repo)).toEqual([repo, a1.worktree_path, wt2].sort());

    // reassign the live attempt 2: attempt 3 gets its own worktree; attempt 2's stays.
    const moved = orchOk(db, ['reassign', '--run', RUN, '--task', 'T1', '--to', 'w-other', '--base-ref', a1.base_commit as string]);
    expect(moved.cancelled_attempt).toMatchObject({ id: a2.id, state: 'cancelled' });
    expect(moved.attempt).toMatchObject({ number: 3, branch: 'orch/r/T1/3', worktree_path: path.join(root, RUN, 'T1', '3'), base_commit: a1.base_commit });
    expect(git(moved.attempt.worktree_path, 'rev-parse', 'HEAD')).toBe(a1.base_commit);
    expect(fs.existsSync(wt2)).toBe(true);
    expect(branches(repo)).toEqual(['main', 'orch/r/T1/1', 'orch/r/T1/2', 'orch/r/T1/3']);

    // cleanup: attempt 1's clean worktree goes, its unmerged branch stays; attempt 2 (cancelled,
    // no commits) goes completely; the live attempt 3 is not touched.
    const cl = orchOk(db, ['cleanup', '--run', RUN, '--all-completed']);
    const byNumber = Object.fromEntries(cl.attempts.map((e: { number: number }) => [e.number, e]));
    expect(Object.keys(byNumber).sort()).toEqual(['1', '2']);
    expect(byNumber[1]).toMatchObject({ state: 'failed', removed: true, branch_deleted: false, unmerged_commits: 1 });
    expect(byNumber[2]).toMatchObject({ state: 'cancelled', removed: true, branch_deleted: true, unmerged_commits: 0 });
    expect(fs.existsSync(a1.worktree_path as string)).toBe(false);
    expect(fs.existsSync(wt2)).toBe(false);
    expect(branches(repo)).toEqual(['main', 'orch/r/T1/1', 'orch/r/T1/3']);
    expect(worktreePaths(repo)).toEqual([repo, moved.attempt.worktree_path].sort());
  });
});

describe('cleanup (slow)', () => {
  it('removes what is safe, keeps dirty worktrees and unmerged branches unless --force; --dry-run changes nothing', () => {
    const { db, repo } = setup('A', 'B', 'C', 'D', 'E');
    // A: committed, merged. B: committed, not merged. C: uncommitted file only. D: analysis. E: live.
    const a = dispatchCode(db, repo, 'A');
    work(db, 'A', a, (wt) => {
      fs.writeFileSync(path.join(wt, 'a-file.txt'), 'a\n');
      commitAll(wt, 'A work');
    });
    orchOk(db, ['merge', '--run', RUN, '--task', 'A']);
    const b = dispatchCode(db, repo, 'B');
    let bCommit = '';
    work(db, 'B', b, (wt) => {
      fs.writeFileSync(path.join(wt, 'b-file.txt'), 'b\n');
      bCommit = commitAll(wt, 'B work');
    });
    const c = dispatchCode(db, repo, 'C');
    work(db, 'C', c, (wt) => fs.writeFileSync(path.join(wt, 'scratch.txt'), 'unsaved\n'));
    const d = orchOk(db, ['dispatch', '--run', RUN, '--task', 'D', '--execution-mode', 'analysis', '--body', 'look']).attempt as Attempt;
    work(db, 'D', d);
    const e = dispatchCode(db, repo, 'E');
    const main = sha(repo, 'main');

    orchOk(db, ['status', '--run', RUN]); // folds worker activity in first
    // A live attempt cannot be cleaned up.
    const before0 = snapshot(db);
    const live = orchErr(db, ['cleanup', '--run', RUN, '--attempt', e.id], 4);
    expect(live.code).toBe('CONFLICT');
    expect(fs.existsSync(e.worktree_path as string)).toBe(true);
    expect(snapshot(db)).toEqual(before0);

    // --dry-run: reports, changes nothing.
    const state = () => ({ db: snapshot(db), branches: branches(repo), worktrees: worktrees(repo), files: tree(repo), main: sha(repo, 'main') });
    const before = state();
    const dry = orchOk(db, ['cleanup', '--run', RUN, '--all-completed', '--dry-run']);
    expect(state()).toEqual(before);
    expect(dry.dry_run).toBe(true);
    expect(dry.orphans).toEqual([]);

    // A dry run decides the same (would_*) but reports nothing as done, in the conditional.
    const decided = (dry: boolean, removed: boolean, deleted: boolean) =>
      dry
        ? { removed: false, branch_deleted: false, would_remove: removed, would_delete_branch: deleted }
        : { removed, branch_deleted: deleted, would_remove: removed, would_delete_branch: deleted };
    const check = (out: any, dry: boolean): Record<string, any> => {
      const by: Record<string, any> = Object.fromEntries(out.attempts.map((x: { task: string }) => [x.task, x]));
      expect(Object.keys(by).sort()).toEqual(['A', 'B', 'C', 'D']); // not the live E
      expect(by.A).toMatchObject({
        attempt: a.id,
        ...decided(dry, true, true),
        uncommitted: [],
        unmerged_commits: 0,
        worktree_path: a.worktree_path,
        branch: a.branch,
      });
      expect(by.A.note).toMatch(dry ? /^would remove worktree; would delete branch/ : /^removed worktree; deleted branch/);
      expect(by.B).toMatchObject({ attempt: b.id, ...decided(dry, true, false), uncommitted: [], unmerged_commits: 1 });
      expect(by.B.note).toMatch(/kept branch/);
      expect(by.C).toMatchObject({ attempt: c.id, ...decided(dry, false, false), uncommitted: ['scratch.txt'] });
      expect(by.C.note).toMatch(/uncommitted/);
      expect(by.D).toMatchObject({ attempt: d.id, execution_mode: 'analysis', ...decided(dry, false, false), worktree_path: null, branch: null });
      return by;
    };
    check(dry, true);

    // For real.
    const real = orchOk(db, ['cleanup', '--run', RUN, '--all-completed']);
    expect(real.dry_run).toBe(false);
    check(real, false);
    expect(fs.existsSync(a.worktree_path as string)).toBe(false);
    expect(fs.existsSync(b.worktree_path as string)).toBe(false);
    expect(read(path.join(c.worktree_path as string, 'scratch.txt'))).toBe('unsaved\n');
    expect(fs.existsSync(e.worktree_path as string)).toBe(true);
    expect(branches(repo)).toEqual(['main', 'orch/r/B/1', 'orch/r/C/1', 'orch/r/E/1']);
    expect(sha(repo, 'orch/r/B/1')).toBe(bCommit);
    expect(worktreePaths(repo)).toEqual([repo, c.worktree_path, e.worktree_path].sort());
    expect(sha(repo, 'main')).toBe(main);
    expect(status(repo)).toBe('');
    const recorded = rows<{ task_id: string; wt: number; br: number }>(
      db,
      'select task_id, case when worktree_removed_at is not null then 1 else 0 end as wt, case when branch_deleted_at is not null then 1 else 0 end as br from orch_attempts order by task_id',
    );
    expect(recorded).toEqual([
      { task_id: 'A', wt: 1, br: 1 },
      { task_id: 'B', wt: 1, br: 0 },
      { task_id: 'C', wt: 0, br: 0 },
      { task_id: 'D', wt: 0, br: 0 },
      { task_id: 'E', wt: 0, br: 0 },
    ]);

    // Safe to repeat: nothing more goes without --force.
    const mid = state();
    const again = orchOk(db, ['cleanup', '--run', RUN, '--all-completed']);
    expect(again.attempts.every((x: { branch_deleted: boolean }) => !x.branch_deleted)).toBe(true);
    expect(state().branches).toEqual(mid.branches);
    expect(state().worktrees).toEqual(mid.worktrees);

    // --force --dry-run still changes nothing.
    const forceDry = orchOk(db, ['cleanup', '--run', RUN, '--all-completed', '--force', '--dry-run']);
    expect(forceDry.attempts.find((x: { task: string }) => x.task === 'C')).toMatchObject({ removed: false, would_remove: true });
    expect(state().branches).toEqual(mid.branches);
    expect(state().worktrees).toEqual(mid.worktrees);
    expect(fs.existsSync(path.join(c.worktree_path as string, 'scratch.txt'))).toBe(true);

    // --force removes the dirty worktree and the unmerged branch.
    const forced = orchOk(db, ['cleanup', '--run', RUN, '--all-completed', '--force']);
    const fb = Object.fromEntries(forced.attempts.map((x: { task: string }) => [x.task, x]));
    expect(fb.B).toMatchObject({ branch_deleted: true, unmerged_commits: 1 });
    expect(fb.C).toMatchObject({ removed: true, branch_deleted: true, uncommitted: ['scratch.txt'] });
    expect(fs.existsSync(c.worktree_path as string)).toBe(false);
    expect(branches(repo)).toEqual(['main', 'orch/r/E/1']);
    expect(worktreePaths(repo)).toEqual([repo, e.worktree_path].sort());
    expect(fs.existsSync(e.worktree_path as string)).toBe(true);
    expect(sha(repo, 'main')).toBe(main);
    expect(status(repo)).toBe('');
  });

  it('--attempt cleans only that attempt', () => {
    const { db, repo } = setup('A', 'B');
    const a = dispatchCode(db, repo, 'A');
    work(db, 'A', a);
    const b = dispatchCode(db, repo, 'B');
    work(db, 'B', b);
    const out = orchOk(db, ['cleanup', '--run', RUN, '--attempt', a.id]);
    expect(out.attempts).toHaveLength(1);
    expect(out.attempts[0]).toMatchObject({ attempt: a.id, removed: true, branch_deleted: true });
    expect(out.orphans).toEqual([]);
    expect(fs.existsSync(a.worktree_path as string)).toBe(false);
    expect(fs.existsSync(b.worktree_path as string)).toBe(true);
    expect(branches(repo)).toEqual(['main', 'orch/r/B/1']);
  });

  it('finds orphaned worktrees of the run (an interrupted dispatch) and removes the clean ones; dirty ones need --force', () => {
    const { db, repo, root } = setup('T1');
    const a = dispatchCode(db, repo, 'T1');
    work(db, 'T1', a);
    // Interrupted dispatches: worktrees and branches that no attempt owns.
    const orphan = path.join(root, RUN, 'T9', '1');
    git(repo, 'worktree', 'add', '-q', '-b', 'orch/r/T9/1', orphan, 'main');
    const dirty = path.join(root, RUN, 'T8', '1');
    git(repo, 'worktree', 'add', '-q', '-b', 'orch/r/T8/1', dirty, 'main');
    fs.writeFileSync(path.join(dirty, 'wip.txt'), 'wip\n');
    // Another run's worktree is not this run's orphan.
    const otherRun = path.join(root, 'other', 'T9', '1');
    git(repo, 'worktree', 'add', '-q', '-b', 'orch/other/T9/1', otherRun, 'main');
    // A worktree made less than a minute ago may belong to a dispatch still recording its attempt:
    // cleanup leaves it alone. Age these, and make one fresh one.
    const old = new Date(Date.now() - 5 * 60_000);
    for (const d of [orphan, dirty, otherRun]) fs.utimesSync(d, old, old);
    const fresh = path.join(root, RUN, 'T7', '1');
    git(repo, 'worktree', 'add', '-q', '-b', 'orch/r/T7/1', fresh, 'main');
    markOurs(db, repo, 'orch/r/T9/1', 'orch/r/T8/1', 'orch/r/T7/1');

    orchOk(db, ['status', '--run', RUN]); // folds the worker's result in first, so cleanup itself has nothing to record
    const dbBefore = snapshot(db);
    const dry = orchOk(db, ['cleanup', '--run', RUN, '--all-completed', '--dry-run']);
    expect(dry.orphans.sort((x: { path: string }, y: { path: string }) => x.path.localeCompare(y.path))).toMatchObject([
      { path: fresh, branch: 'orch/r/T7/1', removed: false, note: expect.stringMatching(/less than a minute/) },
      { path: dirty, branch: 'orch/r/T8/1', removed: false },
      { path: orphan, branch: 'orch/r/T9/1', removed: false, would_remove: true, note: expect.stringMatching(/^would remove/) },
    ]);
    expect(snapshot(db)).toEqual(dbBefore);
    expect(fs.existsSync(orphan)).toBe(true);
    expect(branches(repo)).toContain('orch/r/T9/1');

    const out = orchOk(db, ['cleanup', '--run', RUN, '--all-completed']);
    const byPath = Object.fromEntries(out.orphans.map((o: { path: string }) => [o.path, o]));
    expect(Object.keys(byPath).sort()).toEqual([dirty, fresh, orphan].sort());
    expect(byPath[fresh]).toMatchObject({ removed: false });
    expect(byPath[orphan]).toMatchObject({ branch: 'orch/r/T9/1', removed: true });
    expect(byPath[dirty]).toMatchObject({ branch: 'orch/r/T8/1', removed: false });
    expect(byPath[dirty].note).toMatch(/uncommitted/);
    expect(fs.existsSync(orphan)).toBe(false);
    expect(read(path.join(dirty, 'wip.txt'))).toBe('wip\n');
    expect(worktreePaths(repo)).toEqual([repo, dirty, fresh, otherRun].sort());
    expect(branches(repo)).toEqual(['main', 'orch/other/T9/1', 'orch/r/T7/1', 'orch/r/T8/1']);

    const forced = orchOk(db, ['cleanup', '--run', RUN, '--all-completed', '--force']);
    const forcedOrphans = [...forced.orphans].sort((x: { path: string }, y: { path: string }) => x.path.localeCompare(y.path));
    expect(forcedOrphans).toMatchObject([
      { path: fresh, removed: false },
      { path: dirty, removed: true },
    ]);
    expect(fs.existsSync(dirty)).toBe(false);
    expect(worktreePaths(repo)).toEqual([repo, fresh, otherRun].sort());
    expect(branches(repo)).toEqual(['main', 'orch/other/T9/1', 'orch/r/T7/1']);
    expect(status(repo)).toBe('');
  });

  it('a worktree deleted by hand: status shows worktree_exists false, diff has uncommitted null, cleanup prunes git', () => {
    const { db, repo } = setup('T1');
    const a = dispatchCode(db, repo, 'T1');
    work(db, 'T1', a);
    expect(orchOk(db, ['status', '--run', RUN]).tasks[0].latest_attempt).toMatchObject({ id: a.id, worktree_exists: true });

    fs.rmSync(a.worktree_path as string, { recursive: true, force: true });
    expect(orchOk(db, ['status', '--run', RUN]).tasks[0].latest_attempt).toMatchObject({ id: a.id, worktree_exists: false });
    expect(orchOk(db, ['diff', '--run', RUN, '--task', 'T1']).uncommitted).toBeNull();
    expect(worktrees(repo).find((w) => w.path === a.worktree_path)).toMatchObject({ prunable: true });

    const out = orchOk(db, ['cleanup', '--run', RUN, '--all-completed']);
    expect(out.attempts).toHaveLength(1);
    expect(out.attempts[0]).toMatchObject({ attempt: a.id, removed: true, branch_deleted: true });
    expect(out.attempts[0].note).toMatch(/already gone/);
    expect(out.orphans).toEqual([]);
    expect(worktreePaths(repo)).toEqual([repo]);
    expect(branches(repo)).toEqual(['main']);
    expect(git(repo, 'worktree', 'list', '--porcelain')).not.toMatch(/prunable/);
  });
});

describe('refusals leave nothing behind (slow)', () => {
  function fixture() {
    const f = setup('T1');
    const plain = fs.realpathSync(tempDir('orch-code-plain-'));
    fs.writeFileSync(path.join(plain, 'README'), 'not a repo\n');
    const empty = fs.realpathSync(tempDir('orch-code-empty-'));
    git(empty, 'init', '-q', '-b', 'main');
    return { ...f, plain, empty };
  }

  it('bad refs and repositories: exit 2 each time, and no attempt, thread, branch, worktree or directory appears', () => {
    const f = fixture();
    const cases: [string, string[]][] = [
      ['--base-ref nope', ['--base-ref', 'nope']],
      ['--base-ref=-x', ['--base-ref=-x']],
      ['--base-ref=--upload-pack=x', ['--base-ref=--upload-pack=x']],
      ['--base-ref main..main', ['--base-ref', 'main..main']],
      ['--repo-path (not a repository)', ['--repo-path', f.plain]],
      ['--repo-path (a repository without commits)', ['--repo-path', f.empty]],
      ['--repo-path (a missing directory)', ['--repo-path', path.join(f.plain, 'missing')]],
    ];
    const state = () => ({
      db: snapshot(f.db),
      branches: branches(f.repo),
      worktrees: worktrees(f.repo),
      repoFiles: tree(f.repo),
      plain: tree(f.plain),
      empty: tree(f.empty),
      emptyRefs: git(f.empty, 'for-each-ref'),
    });
    orchOk(f.db, ['status', '--run', RUN]);
    const before = state();
    expect(before.repoFiles).not.toContain('.orch');
    for (const [name, extra] of cases) {
      const r = orch(['--db', f.db, '--json', 'dispatch', '--run', RUN, '--task', 'T1', '--execution-mode', 'code', '--body', 'b', ...extra], { cwd: f.repo });
      const where = `${name}: exit=${r.code} stdout=${r.stdout} stderr=${r.stderr}`;
      expect(r.code, where).toBe(2);
      expect(r.stdout, where).toBe('');
      expect(JSON.parse(r.stderr).error.code, where).toBe('VALIDATION');
      expect(state(), where).toEqual(before);
    }
    expect(rows(f.db, 'select count(*) as n from orch_attempts')).toEqual([{ n: 0 }]);
    expect(rows(f.db, 'select count(*) as n from inbox_threads')).toEqual([{ n: 0 }]);
    // The task is still pending and can be dispatched properly afterwards.
    expect(dispatchCode(f.db, f.repo, 'T1')).toMatchObject({ number: 1, branch: 'orch/r/T1/1' });
  });

  it('a task id git refuses as a branch component (T1.lock): not exit 1, no attempt, thread, branch or worktree', () => {
    const f = setup();
    orchOk(f.db, ['task', 'add', '--run', RUN, '--task', 'T1.lock', '--title', 'lock', '--default-to', 'w']);
    const before = { db: snapshot(f.db), branches: branches(f.repo), worktrees: worktrees(f.repo) };
    const r = orch(['--db', f.db, '--json', 'dispatch', '--run', RUN, '--task', 'T1.lock', '--execution-mode', 'code', '--body', 'b'], { cwd: f.repo });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/not a valid git branch name/) });
    expect({ db: snapshot(f.db), branches: branches(f.repo), worktrees: worktrees(f.repo) }).toEqual(before);
    expect(status(f.repo)).toBe('');
  });

  it('a task id git refuses as a branch component leaves no directory behind', () => {
    const f = setup();
    orchOk(f.db, ['task', 'add', '--run', RUN, '--task', 'T1.lock', '--title', 'lock', '--default-to', 'w']);
    const r = orch(['--db', f.db, '--json', 'dispatch', '--run', RUN, '--task', 'T1.lock', '--execution-mode', 'code', '--body', 'b'], { cwd: f.repo });
    expect(r.code).not.toBe(0);
    expect(fs.existsSync(path.join(f.root, RUN, 'T1.lock'))).toBe(false);
  });
});

describe('never losing work (review findings) (slow)', () => {
  it('a squash merge whose commit is no longer on the target does not let cleanup delete the branch', () => {
    const { db, repo } = setup('T1');
    const main = sha(repo, 'main');
    const a = dispatchCode(db, repo, 'T1');
    work(db, 'T1', a, (wt) => {
      fs.writeFileSync(path.join(wt, 'b.txt'), 'b\n');
      commitAll(wt, 'add b');
    });
    orchOk(db, ['merge', '--run', RUN, '--task', 'T1', '--strategy', 'squash']);
    git(repo, 'reset', '-q', '--hard', main); // someone drops the squash commit from main
    const out = orchOk(db, ['cleanup', '--run', RUN, '--all-completed']);
    expect(out.attempts[0]).toMatchObject({ removed: true, branch_deleted: false, unmerged_commits: 1 });
    expect(branches(repo)).toContain('orch/r/T1/1');
  });

  it('dispatch takes over a clean worktree left by an interrupted dispatch, and refuses one holding work', () => {
    const { db, repo, root } = setup('T1', 'T2');
    // Interrupted dispatches: git work done, attempt never recorded.
    git(repo, 'worktree', 'add', '-q', '-b', 'orch/r/T1/1', path.join(root, RUN, 'T1', '1'), 'main');
    const dirty = path.join(root, RUN, 'T2', '1');
    git(repo, 'worktree', 'add', '-q', '-b', 'orch/r/T2/1', dirty, 'main');
    fs.writeFileSync(path.join(dirty, 'wip.txt'), 'wip\n');
    markOurs(db, repo, 'orch/r/T1/1', 'orch/r/T2/1');

    const a = dispatchCode(db, repo, 'T1');
    expect(a).toMatchObject({ number: 1, branch: 'orch/r/T1/1', worktree_path: path.join(root, RUN, 'T1', '1') });
    const before = snapshot(db);
    const err = orchErr(db, ['dispatch', '--run', RUN, '--task', 'T2', '--execution-mode', 'code', '--body', 'b'], 4, repo);
    expect(err.message).toMatch(/interrupted dispatch and holds work/);
    expect(snapshot(db)).toEqual(before);
    expect(read(path.join(dirty, 'wip.txt'))).toBe('wip\n');
  });

  it('a git refusal part-way through cleanup is reported on that attempt; the others are cleaned and recorded', () => {
    const { db, repo } = setup('T1', 'T2');
    const a1 = dispatchCode(db, repo, 'T1');
    const a2 = dispatchCode(db, repo, 'T2');
    work(db, 'T1', a1);
    work(db, 'T2', a2);
    git(repo, 'worktree', 'lock', a2.worktree_path as string); // git refuses to remove a locked worktree
    const out = orchOk(db, ['cleanup', '--run', RUN, '--all-completed']);
    expect(out.errors).toBe(1);
    const byTask = Object.fromEntries(out.attempts.map((e: { task: string }) => [e.task, e]));
    expect(byTask.T1).toMatchObject({ removed: true, branch_deleted: true, error: null });
    expect(byTask.T2).toMatchObject({ removed: false });
    expect(byTask.T2.error).toEqual(expect.any(String));
    const recorded = rows<{ task_id: string; worktree_removed_at: number | null }>(
      db,
      'select task_id, worktree_removed_at from orch_attempts order by task_id',
    );
    expect(recorded[0]?.worktree_removed_at).not.toBeNull();
    expect(recorded[1]?.worktree_removed_at).toBeNull();
    expect(fs.existsSync(a2.worktree_path as string)).toBe(true);
  });

  it('a workspace root holding tracked files is refused (2), and so is --base-ref on an analysis retry', () => {
    const { db, repo } = setup('T1', 'T2');
    const before = { db: snapshot(db), exclude: fs.existsSync(path.join(repo, '.git/info/exclude')) ? read(path.join(repo, '.git/info/exclude')) : '' };
    const err = orchErr(db, ['dispatch', '--run', RUN, '--task', 'T1', '--execution-mode', 'code', '--workspace-root', '.', '--body', 'b'], 2, repo);
    expect(err.message).toMatch(/repository itself/);
    fs.mkdirSync(path.join(repo, 'wt'));
    fs.writeFileSync(path.join(repo, 'wt', 'keep.txt'), 'k\n');
    commitAll(repo, 'tracked wt');
    const err2 = orchErr(db, ['dispatch', '--run', RUN, '--task', 'T1', '--execution-mode', 'code', '--workspace-root', 'wt', '--body', 'b'], 2, repo);
    expect(err2.message).toMatch(/tracks/);
    expect(snapshot(db)).toEqual(before.db);
    expect(fs.existsSync(path.join(repo, '.git/info/exclude')) ? read(path.join(repo, '.git/info/exclude')) : '').toBe(before.exclude);

    const t2 = orchOk(db, ['dispatch', '--run', RUN, '--task', 'T2', '--execution-mode', 'analysis', '--body', 'look']).attempt;
    const c = ok(db, ['claim', '--agent', 'w-T2', '--thread', t2.thread_id]);
    ok(db, ['fail', '--thread', t2.thread_id, '--lease', c.lease.token, '--body', 'no']);
    orchErr(db, ['retry', '--run', RUN, '--task', 'T2', '--base-ref', 'main'], 2);
  });
});
