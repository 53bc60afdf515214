import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { commitAll, git, gitRun, newGitRepo, rows, snapshot, tempDir } from './helpers.ts';
import { run, runAsync } from './outside.ts';
import { freshDb, rawSql, tableNames } from './engine.ts';

/**
 * Attacks on orch's git work from outside: the skill executables copied out of the repository,
 * real git repositories, real concurrent processes. Each test asserts on git's own view (refs,
 * reflogs, worktrees, objects) as well as on the JSON and the database.
 */

const RUN = 'r1';

/** A fresh repository on branch main with one commit holding a.txt. */
const makeRepo = (): string => newGitRepo('orch-adv-git-', { 'a.txt': 'one\n' });

const branches = (repo: string): string[] =>
  git(repo, 'branch', '--list', '--format=%(refname:short)')
    .split('\n')
    .filter((b) => b !== '')
    .sort();
const worktreePaths = (repo: string): string[] =>
  git(repo, 'worktree', 'list', '--porcelain')
    .split('\n')
    .filter((l) => l.startsWith('worktree '))
    .map((l) => l.slice('worktree '.length))
    .sort();
/** Whether some branch contains `commit`. */
const _onSomeBranch = (repo: string, commit: string): boolean => git(repo, 'branch', '--contains', commit, '--format=%(refname)') !== '';

function ok<T = any>(which: 'inbox' | 'orch', db: string, args: string[], cwd?: string): T {
  const r = run(which, ['--db', db, '--json', ...args], cwd ? { cwd } : {});
  if (r.code !== 0) throw new Error(`${which} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

function fail(db: string, args: string[], exit: number, cwd?: string): { code: string; message: string; details?: any } {
  const r = run('orch', ['--db', db, '--json', ...args], cwd ? { cwd } : {});
  const where = `exit=${r.code} stdout=${r.stdout} stderr=${r.stderr}`;
  expect(r.code, where).toBe(exit);
  expect(r.stdout, where).toBe('');
  return JSON.parse(r.stderr).error;
}

interface Attempt {
  id: string;
  number: number;
  thread_id: string;
  worktree_path: string;
  branch: string;
}

/** A database (in its own directory) with run `run` and tasks, each assigned to `w-<task>`. */
function newDb(tasks: string[], run = RUN): string {
  const db = freshDb(tempDir('orch-adv-db-'));
  ok('inbox', db, ['init']);
  ok('orch', db, ['run', 'init', '--run', run, '--goal', 'adversarial git']);
  for (const t of tasks) ok('orch', db, ['task', 'add', '--run', run, '--task', t, '--title', `title ${t}`, '--default-to', `w-${t}`]);
  return db;
}

function dispatch(db: string, repo: string, task: string, run = RUN): Attempt {
  return ok('orch', db, ['dispatch', '--run', run, '--task', task, '--execution-mode', 'code', '--body', `do ${task}`], repo).attempt;
}

function claim(db: string, task: string, a: Attempt): string {
  const c = ok('inbox', db, ['claim', '--agent', `w-${task}`, '--thread', a.thread_id]);
  return c.lease.token as string;
}

/** Claim, change the worktree, post a result. */
function work(db: string, task: string, a: Attempt, fn: (wt: string) => void): void {
  const lease = claim(db, task, a);
  fn(a.worktree_path);
  ok('inbox', db, ['result', '--thread', a.thread_id, '--lease', lease, '--body', 'done']);
}

const databaseId = (db: string): string => rows<{ value: string }>(db, "select value from orch_meta where key = 'database_id'")[0]?.value ?? '';

/** Ages a directory past cleanup's one-minute grace for orphans. */
function age(dir: string): void {
  const old = new Date(Date.now() - 5 * 60_000);
  fs.utimesSync(dir, old, old);
}

describe('concurrent merges into one target (slow)', { timeout: 600_000 }, () => {
  it('five trials of three tasks merged at once (twice more for one of them) into checked-out main: every merge lands once', async () => {
    for (let trial = 0; trial < 5; trial += 1) {
      const repo = makeRepo();
      const db = newDb(['T1', 'T2', 'T3']);
      const attempts: Record<string, Attempt> = {};
      for (const t of ['T1', 'T2', 'T3']) {
        const a = dispatch(db, repo, t);
        attempts[t] = a;
        work(db, t, a, (wt) => {
          fs.writeFileSync(path.join(wt, `${t}.txt`), `${t}\n`);
          commitAll(wt, `add ${t}`);
        });
      }
      ok('orch', db, ['status', '--run', RUN]);
      const merges = ['T1', 'T2', 'T3', 'T1', 'T1'].map((t) => runAsync('orch', ['--db', db, '--json', 'merge', '--run', RUN, '--task', t], { cwd: repo }));
      const results = await Promise.all(merges);
      const where = `trial ${trial}: ${JSON.stringify(results)}`;
      for (const r of results) expect(r.code, where).toBe(0);
      const outs = results.map((r) => JSON.parse(r.stdout) as { merged: boolean; commit: string; already_merged?: boolean; attempt: { task: string } });
      // Each task merged exactly once; the repeated merges of T1 say it is already merged.
      for (const t of ['T1', 'T2', 'T3']) expect(outs.filter((o) => o.attempt.task === t && o.merged).length, where).toBe(1);
      expect(
        outs.filter((o) => o.attempt.task === 'T1' && !o.merged).every((o) => o.already_merged === true),
        where,
      ).toBe(true);
      // main holds every task's file, every reported merge commit is on main, and the checkout is clean.
      const files = git(repo, 'ls-tree', '--name-only', 'main').split('\n').sort();
      expect(files, where).toEqual(['T1.txt', 'T2.txt', 'T3.txt', 'a.txt']);
      for (const o of outs.filter((x) => x.merged)) expect(gitRun(repo, ['merge-base', '--is-ancestor', o.commit, 'main']).code, where).toBe(0);
      expect(git(repo, 'status', '--porcelain', '--untracked-files=all'), where).toBe('');
      expect(git(repo, 'rev-list', '--merges', '--count', 'main'), where).toBe('3');
      const events = rows<{ attempt_id: string }>(db, "select attempt_id from orch_events where type = 'attempt_merged'");
      expect(events.map((e) => e.attempt_id).sort(), where).toEqual(
        Object.values(attempts)
          .map((a) => a.id)
          .sort(),
      );
    }
  });

  it('a merge that fails restores only what it changed: a merge after it keeps what other merges did', () => {
    const repo = makeRepo();
    const db = newDb(['T1', 'T2']);
    const a1 = dispatch(db, repo, 'T1');
    const a2 = dispatch(db, repo, 'T2');
    work(db, 'T1', a1, (wt) => {
      fs.writeFileSync(path.join(wt, 'a.txt'), 'T1\n');
      commitAll(wt, 'T1 edits a');
    });
    work(db, 'T2', a2, (wt) => {
      fs.writeFileSync(path.join(wt, 'a.txt'), 'T2\n');
      commitAll(wt, 'T2 edits a');
    });
    const m1 = ok('orch', db, ['merge', '--run', RUN, '--task', 'T1'], repo);
    expect(m1.merged).toBe(true);
    const err = fail(db, ['merge', '--run', RUN, '--task', 'T2'], 4, repo);
    expect(err.details.conflicts).toEqual(['a.txt']);
    expect(git(repo, 'rev-parse', 'main')).toBe(m1.commit);
    expect(fs.readFileSync(path.join(repo, 'a.txt'), 'utf8')).toBe('T1\n');
    expect(git(repo, 'status', '--porcelain', '--untracked-files=all')).toBe('');
    // Merging the merged attempt again is "already merged": no second event, the record unchanged.
    const again = ok('orch', db, ['merge', '--run', RUN, '--task', 'T1'], repo);
    expect(again).toMatchObject({ merged: false, already_merged: true, commit: m1.commit });
    expect(rows(db, "select count(*) as n from orch_events where type = 'attempt_merged'")).toEqual([{ n: 1 }]);
  });
});

describe('a merge killed while holding its lock (slow)', { timeout: 600_000 }, () => {
  it('leaves a lock naming a dead process, which the next merge takes over', () => {
    const repo = makeRepo();
    const db = newDb(['T1']);
    const a = dispatch(db, repo, 'T1');
    work(db, 'T1', a, (wt) => {
      fs.writeFileSync(path.join(wt, 'b.txt'), 'b\n');
      commitAll(wt, 'b');
    });
    const main = git(repo, 'rev-parse', 'main');
    const killed = run('orch', ['--db', db, '--json', 'merge', '--run', RUN, '--task', 'T1'], { cwd: repo, env: { ORCH_FAILPOINT: 'merge:locked' } });
    expect(killed.stdout).toBe('');
    expect(killed.code).not.toBe(0);
    const locks = () =>
      fs.existsSync(path.join(repo, '.git', 'orch')) ? fs.readdirSync(path.join(repo, '.git', 'orch')).filter((f) => f.endsWith('.lock')) : [];
    expect(locks()).toHaveLength(1);
    expect(git(repo, 'rev-parse', 'main')).toBe(main);
    const m = ok('orch', db, ['merge', '--run', RUN, '--task', 'T1'], repo);
    expect(m).toMatchObject({ merged: true });
    expect(locks()).toEqual([]);
    expect(git(repo, 'status', '--porcelain', '--untracked-files=all')).toBe('');
  });
});

describe('a dispatch killed inside git leaves git lock files (slow)', { timeout: 600_000 }, () => {
  /** Dispatches T1 with the process killed right after its worktree was made; returns that worktree. */
  function killedDispatch(db: string, repo: string): string[] {
    const killed = run('orch', ['--db', db, '--json', 'dispatch', '--run', RUN, '--task', 'T1', '--execution-mode', 'code', '--body', 'do T1'], {
      cwd: repo,
      env: { ORCH_FAILPOINT: 'dispatch:after-worktree' },
    });
    expect(killed.code).not.toBe(0);
    return worktreePaths(repo).filter((p) => p !== repo);
  }
  const refLock = (repo: string) => path.join(repo, '.git', 'refs', 'heads', 'orch', RUN, 'T1', '1.lock');

  it('the next dispatch clears the dead locks on its own branch and worktree and takes the place over', () => {
    const repo = makeRepo();
    const db = newDb(['T1']);
    const [wt] = killedDispatch(db, repo) as [string];
    // What git leaves when killed while updating the branch or the worktree's index.
    fs.writeFileSync(refLock(repo), '');
    const admin = path.resolve(wt, /^gitdir: (.+)$/m.exec(fs.readFileSync(path.join(wt, '.git'), 'utf8'))![1]!.trim());
    fs.writeFileSync(path.join(admin, 'index.lock'), '');
    const a = dispatch(db, repo, 'T1');
    expect(a).toMatchObject({ number: 1, branch: `orch/${RUN}/T1/1` });
    expect(fs.existsSync(refLock(repo))).toBe(false);
    expect(git(a.worktree_path, 'status', '--porcelain')).toBe('');
    expect(branches(repo)).toEqual(['main', `orch/${RUN}/T1/1`]);
  });

  it('a config.lock a killed git left behind does not stop every later dispatch: it is taken for dead once it has not changed for seconds', () => {
    const repo = makeRepo();
    const db = newDb(['T1']);
    const lock = path.join(repo, '.git', 'config.lock');
    fs.writeFileSync(lock, '[core]\n');
    const a = dispatch(db, repo, 'T1');
    expect(a).toMatchObject({ number: 1 });
    expect(fs.existsSync(lock)).toBe(false);
    expect(git(repo, 'config', `branch.orch/${RUN}/T1/1.orchdatabase`)).not.toBe('');
  });

  it("another database's dispatch at the same place leaves that branch's lock alone (it is not its to judge)", () => {
    const repo = makeRepo();
    const mine = newDb(['T1']);
    killedDispatch(mine, repo);
    fs.writeFileSync(refLock(repo), '');
    const other = newDb(['T1']);
    const err = fail(other, ['dispatch', '--run', RUN, '--task', 'T1', '--execution-mode', 'code', '--body', 'do T1'], 4, repo);
    expect(err.message).toMatch(/belongs to another orch database/);
    expect(fs.existsSync(refLock(repo))).toBe(true);
  });

  it('a lock left by a git killed while creating the branch (the branch never came to be) is cleared once it is seconds old', () => {
    const repo = makeRepo();
    const db = newDb(['T1']);
    fs.mkdirSync(path.dirname(refLock(repo)), { recursive: true });
    fs.writeFileSync(refLock(repo), '');
    // Fresh: it may be a live git's, so the dispatch is refused and the lock left alone. (Dated a
    // minute ahead, so a loaded machine's slow start-up cannot make it 2 s old before the check.)
    const fresh = new Date(Date.now() + 60_000);
    fs.utimesSync(refLock(repo), fresh, fresh);
    const refused = fail(db, ['dispatch', '--run', RUN, '--task', 'T1', '--execution-mode', 'code', '--body', 'do T1'], 4, repo);
    expect(refused.code).toBe('GIT_FAILED');
    expect(fs.existsSync(refLock(repo))).toBe(true);
    expect(branches(repo)).toEqual(['main']);
    const old = new Date(Date.now() - 10_000);
    fs.utimesSync(refLock(repo), old, old);
    const a = dispatch(db, repo, 'T1');
    expect(a).toMatchObject({ number: 1, branch: `orch/${RUN}/T1/1` });
    expect(fs.existsSync(refLock(repo))).toBe(false);
    expect(git(a.worktree_path, 'status', '--porcelain')).toBe('');
  });

  it('doctor --repair deletes an orphan branch whose ref a killed git left locked', () => {
    const repo = makeRepo();
    const db = newDb(['T0', 'T1']);
    dispatch(db, repo, 'T0'); // so doctor knows the repository
    const wt = killedDispatch(db, repo).find((p) => p.includes(`${path.sep}T1${path.sep}`))!;
    fs.rmSync(wt, { recursive: true, force: true });
    git(repo, 'worktree', 'prune');
    fs.writeFileSync(refLock(repo), '');
    const r = ok('orch', db, ['doctor', '--repair'], repo);
    const repaired = r.problems.filter((p: any) => p.repaired).map((p: any) => p.kind);
    expect(repaired.sort(), JSON.stringify(r.problems).slice(0, 2000)).toEqual(['orphan_branch', 'stale_marker']);
    expect(branches(repo)).toEqual(['main', `orch/${RUN}/T0/1`]);
    expect(fs.existsSync(refLock(repo))).toBe(false);
  });
});

describe('cleanup never deletes commits only a worktree reaches (slow)', { timeout: 600_000 }, () => {
  it('a commit on a detached HEAD keeps its worktree, and the note says why', () => {
    const repo = makeRepo();
    const db = newDb(['T1']);
    const a = dispatch(db, repo, 'T1');
    let detached = '';
    work(db, 'T1', a, (wt) => {
      git(wt, 'checkout', '-q', '--detach');
      fs.writeFileSync(path.join(wt, 'detached.txt'), 'work\n');
      detached = commitAll(wt, 'work on a detached HEAD');
    });
    const out = ok('orch', db, ['cleanup', '--run', RUN, '--all-completed']);
    expect(out.attempts[0]).toMatchObject({ removed: false, worktree_only_commits: 1 });
    expect(out.attempts[0].note).toMatch(/detached|on no branch/);
    expect(fs.existsSync(a.worktree_path)).toBe(true);
    expect(git(repo, 'cat-file', '-t', detached)).toBe('commit');
    expect(git(a.worktree_path, 'rev-parse', 'HEAD')).toBe(detached);
  });

  it('a commit only the worktree HEAD reflog holds (the branch was reset) keeps its worktree', () => {
    const repo = makeRepo();
    const db = newDb(['T1']);
    const a = dispatch(db, repo, 'T1');
    let lost = '';
    work(db, 'T1', a, (wt) => {
      fs.writeFileSync(path.join(wt, 'x.txt'), 'x\n');
      lost = commitAll(wt, 'soon only in the reflog');
      git(wt, 'reset', '-q', '--hard', 'HEAD~1');
    });
    const out = ok('orch', db, ['cleanup', '--run', RUN, '--all-completed']);
    expect(out.attempts[0]).toMatchObject({ removed: false, worktree_only_commits: 1 });
    expect(fs.existsSync(a.worktree_path)).toBe(true);
    expect(git(a.worktree_path, 'reflog', '--format=%H', 'HEAD').split('\n')).toContain(lost);
  });

  it('doctor --repair and a new dispatch keep a leftover worktree whose detached HEAD holds a commit', () => {
    const repo = makeRepo();
    const db = newDb(['T1']);
    // A leftover of this database's interrupted dispatch: marked as ours, no attempt records it.
    const wt = path.join(repo, '.orch', 'worktrees', RUN, 'T1', '1');
    ok('orch', db, ['status', '--run', RUN]);
    git(repo, 'config', `branch.orch/${RUN}/T1/1.orchDatabase`, databaseId(db));
    git(repo, 'worktree', 'add', '-q', '-b', `orch/${RUN}/T1/1`, wt, 'main');
    git(wt, 'checkout', '-q', '--detach');
    fs.writeFileSync(path.join(wt, 'd.txt'), 'd\n');
    const detached = commitAll(wt, 'detached work in a leftover');
    age(wt);
    ok('orch', db, ['doctor', '--repair', '--repo-path', repo]);
    expect(fs.existsSync(wt)).toBe(true);
    expect(git(wt, 'rev-parse', 'HEAD')).toBe(detached);
    const before = snapshot(db);
    const err = fail(db, ['dispatch', '--run', RUN, '--task', 'T1', '--execution-mode', 'code', '--body', 'b'], 4, repo);
    expect(err.message, err.message).toMatch(/holds work/);
    expect(snapshot(db)).toEqual(before);
    expect(git(wt, 'rev-parse', 'HEAD')).toBe(detached);
  });
});

describe('git edges (slow)', { timeout: 600_000 }, () => {
  it('a failing post-checkout hook: dispatch exits 4 and leaves no branch, worktree, directory or config behind', () => {
    const repo = makeRepo();
    const hooks = tempDir('orch-adv-hooks-');
    fs.writeFileSync(path.join(hooks, 'post-checkout'), '#!/bin/sh\necho "hook says no" >&2\nexit 1\n', { mode: 0o755 });
    git(repo, 'config', 'core.hooksPath', hooks);
    const db = newDb(['T1']);
    const before = snapshot(db);
    const err = fail(db, ['dispatch', '--run', RUN, '--task', 'T1', '--execution-mode', 'code', '--body', 'b'], 4, repo);
    expect(err.code).toBe('GIT_FAILED');
    expect(snapshot(db)).toEqual(before);
    expect(branches(repo)).toEqual(['main']);
    expect(worktreePaths(repo)).toEqual([repo]);
    expect(fs.existsSync(path.join(repo, '.orch', 'worktrees', RUN))).toBe(false);
    expect(gitRun(repo, ['config', '--get-regexp', '^branch\\.orch/']).stdout).toBe('');
    // Without the hook the same dispatch works.
    git(repo, 'config', '--unset', 'core.hooksPath');
    expect(dispatch(db, repo, 'T1')).toMatchObject({ number: 1, branch: `orch/${RUN}/T1/1` });
  });

  it('diff returns file names exactly as they are: spaces, quotes, a newline, a tab, non-ASCII', () => {
    const repo = makeRepo();
    const db = newDb(['T1']);
    const a = dispatch(db, repo, 'T1');
    const names = ['a b.txt', 'q"uote.txt', 'new\nline.txt', 'tab\there.txt', 'ünïcødé-日本.txt', 'back\\slash.txt'];
    const loose = ['loose "one".txt', 'loose\nline.txt', 'lösé.txt'];
    work(db, 'T1', a, (wt) => {
      for (const n of names) fs.writeFileSync(path.join(wt, n), 'x\n');
      commitAll(wt, 'hostile names');
      for (const n of loose) fs.writeFileSync(path.join(wt, n), 'x\n');
    });
    const d = ok('orch', db, ['diff', '--run', RUN, '--task', 'T1', '--stat']);
    expect(d.files.map((f: { path: string }) => f.path).sort()).toEqual([...names].sort());
    for (const f of d.files) expect(f).toMatchObject({ additions: 1, deletions: 0 });
    expect([...d.uncommitted].sort()).toEqual([...loose].sort());
  });
});

describe('two databases, one repository, one run id (slow)', { timeout: 600_000 }, () => {
  it("neither cleanup, doctor --repair nor dispatch of another database touches a database's live worktree and branch", () => {
    const repo = makeRepo();
    const dbA = newDb(['T1', 'T2']);
    const dbB = newDb(['T1', 'T2']);
    const dbC = newDb(['T9']);
    const a = dispatch(dbA, repo, 'T1');
    const lease = claim(dbA, 'T1', a);
    fs.writeFileSync(path.join(a.worktree_path, 'live.txt'), 'in progress\n');
    commitAll(a.worktree_path, 'live work');
    fs.rmSync(path.join(a.worktree_path, 'live.txt'));
    commitAll(a.worktree_path, 'clean again'); // a clean worktree, its commits on no other branch
    const head = git(a.worktree_path, 'rev-parse', 'HEAD');
    age(a.worktree_path);
    expect(databaseId(dbA)).not.toBe(databaseId(dbB));
    expect(databaseId(dbA)).toMatch(/\S/);
    // Database B works in the same repository (so its cleanup looks there).
    const b2 = dispatch(dbB, repo, 'T2');
    work(dbB, 'T2', b2, () => undefined);

    const cleaned = ok('orch', dbB, ['cleanup', '--run', RUN, '--all-completed']);
    expect(cleaned.attempts).toMatchObject([{ attempt: b2.id, removed: true, branch_deleted: true }]);
    expect(cleaned.orphans.filter((o: { removed: boolean }) => o.removed)).toEqual([]);
    ok('orch', dbC, ['doctor', '--repair', '--repo-path', repo]);
    const beforeB = snapshot(dbB);
    const err = fail(dbB, ['dispatch', '--run', RUN, '--task', 'T1', '--execution-mode', 'code', '--body', 'b'], 4, repo);
    expect(err.message).toMatch(/another orch database/);
    expect(snapshot(dbB)).toEqual(beforeB);

    expect(fs.existsSync(a.worktree_path)).toBe(true);
    expect(git(a.worktree_path, 'rev-parse', 'HEAD')).toBe(head);
    expect(branches(repo)).toContain(`orch/${RUN}/T1/1`);
    // Database A's worker goes on undisturbed.
    ok('inbox', dbA, ['result', '--thread', a.thread_id, '--lease', lease, '--body', 'done']);
    expect(ok('orch', dbA, ['status', '--run', RUN]).tasks[0]).toMatchObject({ id: 'T1', state: 'done' });
  });

  it('a worktree without an owner mark (made before orch recorded owners) is kept by cleanup and doctor, and they say why', () => {
    const repo = makeRepo();
    const db = newDb(['T1']);
    work(db, 'T1', dispatch(db, repo, 'T1'), () => undefined);
    const wt = path.join(repo, '.orch', 'worktrees', RUN, 'T5', '1');
    git(repo, 'worktree', 'add', '-q', '-b', `orch/${RUN}/T5/1`, wt, 'main');
    age(wt);
    const out = ok('orch', db, ['cleanup', '--run', RUN, '--all-completed']);
    expect(out.orphans).toMatchObject([{ path: wt, removed: false, note: expect.stringMatching(/owner/) }]);
    const doc = ok('orch', db, ['doctor', '--repair', '--repo-path', repo]);
    expect(doc.problems.find((p: { kind: string }) => p.kind === 'orphan_worktree')).toMatchObject({ path: wt, repaired: false });
    expect(fs.existsSync(wt)).toBe(true);
    expect(branches(repo)).toContain(`orch/${RUN}/T5/1`);
    // --force says so and removes it.
    const forced = ok('orch', db, ['cleanup', '--run', RUN, '--all-completed', '--force']);
    expect(forced.orphans).toMatchObject([{ path: wt, removed: true }]);
    expect(fs.existsSync(wt)).toBe(false);
  });

  it('a database from before database ids gets one when it is upgraded, and keeps it', () => {
    const db = newDb(['T1']);
    expect(databaseId(db)).toMatch(/^db_[A-Za-z0-9]{16}$/);
    // What the previous release's files look like: orch schema 2, no orch_meta (and no later column).
    rawSql(db, "drop table orch_meta; alter table orch_attempts drop column remote_url; delete from schema_migrations where package = 'orch' and version >= 3");
    expect(tableNames(db)).not.toContain('orch_meta');
    ok('orch', db, ['status', '--run', RUN]);
    const id = databaseId(db);
    expect(id).toMatch(/^db_[A-Za-z0-9]{16}$/);
    ok('orch', db, ['status', '--run', RUN]);
    expect(databaseId(db)).toBe(id);
  });
});

describe('cleanup leaves nothing of its own conventions behind (slow)', { timeout: 600_000 }, () => {
  it('--dry-run speaks in the conditional; cleanup removes the report file and empty folders; worktree_exists is false after', () => {
    const repo = makeRepo();
    const db = newDb(['T1']);
    const a = dispatch(db, repo, 'T1');
    work(db, 'T1', a, (wt) => {
      fs.writeFileSync(path.join(wt, 'b.txt'), 'b\n');
      commitAll(wt, 'b');
    });
    const report = `${a.worktree_path}.report.md`;
    fs.writeFileSync(report, '# report\n');
    ok('orch', db, ['merge', '--run', RUN, '--task', 'T1'], repo);
    const dbBefore = snapshot(db);
    const dry = ok('orch', db, ['cleanup', '--run', RUN, '--all-completed', '--dry-run']);
    expect(dry.dry_run).toBe(true);
    expect(dry.attempts[0]).toMatchObject({ removed: false, branch_deleted: false, would_remove: true, would_delete_branch: true });
    expect(dry.attempts[0].note).toMatch(/would remove worktree/);
    expect(dry.attempts[0].note).not.toMatch(/(^|; )removed worktree/);
    expect(snapshot(db)).toEqual(dbBefore);
    expect(fs.existsSync(report)).toBe(true);

    const out = ok('orch', db, ['cleanup', '--run', RUN, '--all-completed']);
    expect(out.attempts[0]).toMatchObject({ removed: true, branch_deleted: true });
    expect(fs.existsSync(report)).toBe(false);
    expect(fs.existsSync(path.join(repo, '.orch', 'worktrees', RUN))).toBe(false);
    const st = ok('orch', db, ['status', '--run', RUN]);
    expect(st.tasks[0].latest_attempt.worktree_exists).toBe(false);
  });

  it('doctor reports a leftover report file and an empty task folder', () => {
    const repo = makeRepo();
    const db = newDb(['T1']);
    const a = dispatch(db, repo, 'T1');
    work(db, 'T1', a, () => undefined);
    ok('orch', db, ['cleanup', '--run', RUN, '--all-completed']);
    const taskDir = path.join(repo, '.orch', 'worktrees', RUN, 'T1');
    fs.mkdirSync(taskDir, { recursive: true });
    fs.writeFileSync(path.join(taskDir, '1.report.md'), 'left\n');
    fs.mkdirSync(path.join(repo, '.orch', 'worktrees', RUN, 'T2'));
    age(path.join(repo, '.orch', 'worktrees', RUN, 'T2'));
    const doc = ok('orch', db, ['doctor', '--repo-path', repo]);
    const kinds = doc.problems.map((p: { kind: string; path?: string }) => `${p.kind} ${p.path ?? ''}`);
    expect(kinds).toContain(`leftover_file ${path.join(taskDir, '1.report.md')}`);
    expect(kinds).toContain(`leftover_directory ${path.join(repo, '.orch', 'worktrees', RUN, 'T2')}`);
    ok('orch', db, ['doctor', '--repair', '--repo-path', repo]);
    expect(fs.existsSync(path.join(repo, '.orch', 'worktrees', RUN))).toBe(false);
  });
});
