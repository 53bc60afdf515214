// `inbox doctor` and `orch doctor` through the built CLIs: each check finds the damage it is for
// (made by hand with SQL or git, as a crash or a careless person would leave it), --repair fixes
// only what is safe, and a doctor without --repair never writes.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { orchMigrations } from '../packages/orch/src/migrations.ts';
import type { DoctorReport } from '../packages/store/src/health.ts';
import { expectJsonError, inbox, initDb, makeGitRepo, ok, orch, orchOk, rows, snapshot, tempDir, type CliRun } from './helpers.ts';
import { onPostgres, rawSql, sqliteOnly } from './engine.ts';

type Report = DoctorReport;

function report(r: CliRun, exit: number): Report {
  expect(r.code, r.stderr).toBe(exit);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as Report;
}
const inboxDoctor = (db: string, ...extra: string[]) => inbox(['--db', db, '--json', 'doctor', ...extra]);
const orchDoctor = (db: string, ...extra: string[]) => orch(['--db', db, '--json', 'doctor', ...extra]);
const kinds = (r: Report) => r.problems.map((p) => p.kind).sort();

/** Damage by hand (`foreignKeys: false` to leave a dangling reference). */
function exec(db: string, sql: string, options: { foreignKeys?: boolean } = {}): void {
  rawSql(db, sql, [], options);
}

/** A run with two tasks (b depends on a); a is dispatched to w1 and claimed. */
function planned(): { db: string; dir: string; thread: string; lease: string; attempt: string } {
  const { db, dir } = initDb();
  orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
  orchOk(db, ['task', 'add', '--run', 'r', '--task', 'a', '--title', 'A', '--default-to', 'w1']);
  orchOk(db, ['task', 'add', '--run', 'r', '--task', 'b', '--title', 'B', '--default-to', 'w1']);
  orchOk(db, ['dep', 'add', '--run', 'r', '--task', 'b', '--depends-on', 'a']);
  const d = orchOk(db, ['dispatch', '--run', 'r', '--task', 'a', '--execution-mode', 'analysis', '--body', 'go']);
  const c = ok(db, ['claim', '--agent', 'w1', '--lease-seconds', '600']);
  return { db, dir, thread: d.attempt.thread_id, lease: c.lease.token, attempt: d.attempt.id };
}

describe('doctor on a healthy database (slow)', () => {
  it('finds nothing, exits 0 and writes nothing (both CLIs, text and JSON)', () => {
    const { db, thread, lease } = planned();
    ok(db, ['progress', '--thread', thread, '--lease', lease, '--body', 'half way']);
    const before = snapshot(db);
    const i = report(inboxDoctor(db), 0);
    // The journal mode is SQLite's (PostgreSQL has no such setting).
    expect(i).toMatchObject({ integrity: 'ok', ...(onPostgres ? {} : { journal_mode: 'wal' }), repair: false, problems: [], repaired: 0, ok: true });
    expect(i.checked).toEqual({ threads: 1, messages: 2 });
    const o = report(orchDoctor(db), 0);
    expect(o.problems).toEqual([]);
    expect(o.checked).toMatchObject({ threads: 1, messages: 2, runs: 1, tasks: 2, attempts: 1 });
    expect(o.checked.events).toBeGreaterThan(3);
    const text = orch(['--db', db, 'doctor']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(onPostgres ? /integrity ok/ : /integrity ok, journal wal/);
    expect(text.stdout).toMatch(/no problems found/);
    expect(snapshot(db)).toEqual(before);
  });

  it('orch doctor on a database without runs checks the inbox part; --run names a run that must exist', () => {
    const { db } = initDb();
    const r = report(orchDoctor(db), 0);
    expect(r.checked).toMatchObject({ runs: 0, threads: 0 });
    expectJsonError(orchDoctor(db, '--run', 'nope'), 3, 'NOT_FOUND');
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    expectJsonError(orchDoctor(db, '--run', 'nope'), 3, 'NOT_FOUND');
    expect(report(orchDoctor(db, '--run', 'r'), 0).checked.runs).toBe(1);
  });

  it('reports schemas an older release left (an error), checks the runs once --repair has upgraded them', () => {
    const { db } = planned();
    // What the previous release's files look like: orch schema 1 (no readiness indexes).
    exec(
      db,
      "drop index orch_tasks_run_id_state; drop index orch_attempts_run_task_state; drop table orch_meta; alter table orch_attempts drop column remote_url; delete from schema_migrations where package = 'orch' and version in (2, 3, 4)",
    );
    const r = report(orchDoctor(db), 4);
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'schema_outdated', severity: 'error', repaired: false })]);
    expect(r.problems[0]?.message).toMatch(/doctor --repair/);
    // The hint names the command that upgrades orch's tables, given as such (no rewritten inbox message).
    expect(r.problems[0]?.message).toContain(`upgrade it with \`orch --db ${db} doctor --repair\``);
    expect(r.checked.runs).toBe(0);
    expect(report(orchDoctor(db, '--run', 'r'), 4).problems.map((p) => p.kind)).toEqual(['schema_outdated']); // not "no run r"
    const fixed = report(orchDoctor(db, '--repair'), 0);
    expect(fixed.problems).toEqual([expect.objectContaining({ kind: 'schema_outdated', repaired: true })]);
    expect(fixed.checked.runs).toBe(1);
    expect(rows(db, "select max(version) as v from schema_migrations where package = 'orch'")).toEqual([{ v: orchMigrations.migrations.at(-1)?.version }]);
  });

  sqliteOnly.it(
    'files in place of the database file',
    'refuses a missing file, a directory and a file that is not SQLite with exit 6, creating nothing',
    () => {
      const dir = tempDir();
      expectJsonError(inboxDoctor(path.join(dir, 'none.db')), 6, 'DB_MISSING');
      expectJsonError(orchDoctor(dir), 6);
      const text = path.join(dir, 'notes.txt');
      fs.writeFileSync(text, 'hello, this is not a database at all, just some words to fill a page.\n'.repeat(100));
      expectJsonError(orchDoctor(text), 6, 'DB_NOT_A_DATABASE');
      expect(fs.readdirSync(dir).sort()).toEqual(['notes.txt']);
    },
  );
});

describe('inbox doctor (slow)', () => {
  it('finds a lease that lost its token (error, exit 4), and --repair gives the thread back to its agent', () => {
    const { db, thread } = planned();
    exec(db, `update inbox_threads set lease_token = null where id = '${thread}'`);
    const before = snapshot(db);
    const r = report(inboxDoctor(db), 4);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'broken_lease', severity: 'error', thread, repaired: false })]);
    expect(snapshot(db)).toEqual(before); // looking never writes

    const fixed = report(inboxDoctor(db, '--repair'), 0);
    expect(fixed).toMatchObject({ repair: true, repaired: 1, ok: true });
    expect(fixed.problems[0]).toMatchObject({ kind: 'broken_lease', repaired: true });
    expect(rows(db, 'select state, claimed_by, lease_token, lease_expires_at from inbox_threads where id = ?', thread)).toEqual([
      { state: 'open', claimed_by: null, lease_token: null, lease_expires_at: null },
    ]);
    expect(report(inboxDoctor(db), 0).problems).toEqual([]);
    // The agent can claim it again.
    expect(ok(db, ['claim', '--agent', 'w1']).thread.id).toBe(thread);
  });

  it('finds a lease token left on a finished thread and a blocked thread with no question, and repairs both', () => {
    const { db, thread, lease } = planned();
    ok(db, ['result', '--thread', thread, '--lease', lease, '--body', 'done']);
    exec(db, `update inbox_threads set lease_token = 'ls_old', lease_expires_at = 1 where id = '${thread}'`);
    ok(db, ['send', '--to', 'w2', '--from', 'me', '--subject', 's', '--body', 'b']);
    const other = ok(db, ['claim', '--agent', 'w2']).thread.id;
    exec(db, `update inbox_threads set state = 'blocked' where id = '${other}'`);
    const r = report(inboxDoctor(db), 4);
    expect(kinds(r)).toEqual(['blocked_without_question', 'stray_lease']);
    const fixed = report(inboxDoctor(db, '--repair'), 0);
    expect(fixed.repaired).toBe(2);
    expect(rows(db, 'select id, state, lease_token from inbox_threads order by seq')).toEqual([
      { id: thread, state: 'done', lease_token: null },
      { id: other, state: 'claimed', lease_token: expect.any(String) },
    ]);
  });

  it('lists an expired lease as a warning (exit 0): the thread is claimable again', () => {
    const { db } = initDb();
    ok(db, ['send', '--to', 'w', '--from', 'me', '--subject', 's', '--body', 'b']);
    const thread = ok(db, ['claim', '--agent', 'w', '--lease-seconds', '1']).thread.id;
    exec(db, `update inbox_threads set lease_expires_at = 1000 where id = '${thread}'`);
    const r = report(inboxDoctor(db), 0);
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'lease_expired', severity: 'warning', thread, repair: null })]);
    expect(r.ok).toBe(true);
  });

  sqliteOnly.it(
    'PostgreSQL enforces foreign keys at every commit: no row can be orphaned',
    'finds an orphaned message row through the foreign-key check',
    () => {
      const { db } = initDb();
      exec(db, "insert into inbox_messages (thread_id, author, kind, body, created_at) values ('th_gone', 'x', 'note', 'b', 1)", { foreignKeys: false });
      const r = report(inboxDoctor(db, '--repair'), 4);
      expect(r.problems).toEqual([expect.objectContaining({ kind: 'foreign_key', severity: 'error', repair: null, repaired: false })]);
    },
  );

  sqliteOnly.it(
    "bytes of the database file overwritten (PostgreSQL's pages are the server's)",
    'reports a damaged file through the integrity check (exit 4) and reads nothing else',
    () => {
      const { db } = initDb();
      ok(db, ['send', '--to', 'w', '--from', 'me', '--subject', 's', '--body', 'b']);
      const thread = rows<{ id: string }>(db, 'select id from inbox_threads')[0]?.id;
      exec(
        db,
        `with recursive n(i) as (select 1 union all select i + 1 from n where i < 400)
       insert into inbox_messages (thread_id, author, kind, body, created_at) select '${thread}', 'w', 'note', printf('%.500c', 'x'), i from n;
       pragma wal_checkpoint(truncate);`,
      );
      const size = fs.statSync(db).size;
      expect(size).toBeGreaterThan(20 * 4096);
      // Overwrite the middle of the file (b-tree pages of the message table) with a repeating pattern.
      const fd = fs.openSync(db, 'r+');
      fs.writeSync(fd, Buffer.alloc(8 * 4096, 0x5a), 0, 8 * 4096, 10 * 4096);
      fs.closeSync(fd);
      const rep = report(inboxDoctor(db), 4);
      expect(rep.integrity).not.toBe('ok');
      expect(rep.problems.map((p) => p.kind)).toEqual(['integrity']);
      expect(rep.ok).toBe(false);
      expect(report(orchDoctor(db, '--repair'), 4).problems.map((p) => [p.kind, p.repaired])).toEqual([['integrity', false]]);
    },
  );
});

describe('orch doctor (slow)', () => {
  it('sees a lease that ran out on a live attempt; --repair reconciles (attempt and task expired, worker fenced out)', () => {
    const { db, thread, lease, attempt } = planned();
    exec(db, `update inbox_threads set lease_expires_at = 1000 where id = '${thread}'`);
    const r = report(orchDoctor(db), 0);
    expect(kinds(r)).toEqual(['attempt_lease_expired', 'lease_expired']);
    expect(r.problems.find((p) => p.kind === 'attempt_lease_expired')).toMatchObject({ attempt, task: 'a', run: 'r', repair: 'reconcile the run' });
    const fixed = report(orchDoctor(db, '--repair'), 0);
    expect(fixed.problems.find((p) => p.kind === 'attempt_lease_expired')?.repaired).toBe(true);
    expect(rows(db, 'select state from orch_attempts where id = ?', attempt)).toEqual([{ state: 'expired' }]);
    expect(rows(db, "select state from orch_tasks where id = 'a'")).toEqual([{ state: 'expired' }]);
    expect(rows(db, 'select state from inbox_threads where id = ?', thread)).toEqual([{ state: 'cancelled' }]);
    expectJsonError(inbox(['--db', db, '--json', 'progress', '--thread', thread, '--lease', lease, '--body', 'late']), 5, 'LEASE_LOST');
    expect(report(orchDoctor(db), 0).problems).toEqual([]);
  });

  it('finds a gap in the event log, a task whose state disagrees with its attempt and its events, and a done run with work left', () => {
    const { db } = planned();
    exec(db, "delete from orch_events where run_id = 'r' and seq = 2");
    exec(db, "update orch_tasks set state = 'done' where run_id = 'r' and id = 'a'");
    exec(db, "update orch_runs set state = 'done' where id = 'r'");
    const before = snapshot(db);
    const r = report(orchDoctor(db, '--repair'), 4);
    expect(kinds(r)).toEqual(['event_gap', 'run_state_mismatch', 'task_event_mismatch', 'task_state_mismatch']);
    expect(r.problems.every((p) => p.severity === 'error' && p.repair === null && !p.repaired)).toBe(true);
    expect(r.problems.find((p) => p.kind === 'task_state_mismatch')).toMatchObject({ task: 'a', run: 'r' });
    // Nothing here is safe to repair automatically: the file is left exactly as it was.
    expect(snapshot(db)).toEqual(before);
  });

  it('finds two live attempts of one task and an attempt whose thread is gone', () => {
    const { db, attempt } = planned();
    exec(
      db,
      `insert into orch_attempts (id, run_id, task_id, number, assigned_to, execution_mode, thread_id, state, body, created_at, updated_at)
       values ('at_extra', 'r', 'a', 2, 'w2', 'analysis', 'th_missing', 'dispatched', 'x', 1, 1)`,
      { foreignKeys: false },
    );
    const r = report(orchDoctor(db), 4);
    expect(kinds(r)).toEqual(['attempt_thread_missing', 'several_live_attempts']);
    expect(r.problems.find((p) => p.kind === 'attempt_thread_missing')).toMatchObject({ attempt: 'at_extra', thread: 'th_missing' });
    expect(r.problems.find((p) => p.kind === 'several_live_attempts')?.message).toMatch(/2 live attempts/);
    expect(attempt).not.toBe('at_extra');
  });

  it('settles a run whose tasks are all finished but which is still active', () => {
    const { db, thread, lease } = planned();
    ok(db, ['result', '--thread', thread, '--lease', lease, '--body', 'done']);
    orchOk(db, ['cancel', '--run', 'r', '--task', 'b']);
    orchOk(db, ['reconcile', '--run', 'r']);
    expect(rows(db, "select state from orch_runs where id = 'r'")).toEqual([{ state: 'done' }]);
    exec(db, "update orch_runs set state = 'active' where id = 'r'");
    expect(kinds(report(orchDoctor(db), 0))).toEqual(['run_not_settled']);
    const fixed = report(orchDoctor(db, '--repair'), 0);
    expect(fixed.problems[0]).toMatchObject({ kind: 'run_not_settled', repaired: true });
    expect(rows(db, "select state from orch_runs where id = 'r'")).toEqual([{ state: 'done' }]);
    expect(rows(db, "select type from orch_events where run_id = 'r' order by seq desc limit 1")).toEqual([{ type: 'run_done' }]);
    expect(report(orchDoctor(db), 0).problems).toEqual([]);
  });
});

describe('orch doctor in code mode (slow)', () => {
  function git(cwd: string, ...args: string[]): string {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  }
  function setup(): { db: string; repo: string; root: string } {
    const { db, dir } = initDb();
    // Resolved, as orch records and reports paths (a temp dir may sit behind a symbolic link).
    const repo = makeGitRepo(dir);
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    for (const t of ['a', 'b', 'c']) orchOk(db, ['task', 'add', '--run', 'r', '--task', t, '--title', t, '--default-to', 'w1']);
    return { db, repo, root: path.join(repo, '.orch/worktrees') };
  }
  const old = (p: string) => {
    const t = new Date(Date.now() - 5 * 60_000);
    fs.utimesSync(p, t, t);
  };
  const branches = (repo: string) => git(repo, 'branch', '--format=%(refname:short)').split('\n').sort();
  /** Marks branches as this database's, as dispatch does before making them: hand-made leftovers of its own dispatches. */
  const markOurs = (db: string, repo: string, ...names: string[]) => {
    const [meta] = rows<{ value: string }>(db, "select value from orch_meta where key = 'database_id'");
    for (const b of names) git(repo, 'config', `branch.${b}.orchDatabase`, meta?.value ?? '');
  };
  const worktreeList = (repo: string) =>
    git(repo, 'worktree', 'list', '--porcelain')
      .split('\n')
      .filter((l) => l.startsWith('worktree '))
      .map((l) => l.slice(9))
      .sort();

  it('finds leftovers of interrupted dispatches; --repair removes only those that hold no work', () => {
    const { db, repo, root } = setup();
    orchOk(db, ['dispatch', '--run', 'r', '--task', 'a', '--execution-mode', 'code', '--repo-path', repo, '--body', 'x']);
    // What a dispatch killed between its git step and its database step leaves behind:
    git(repo, 'worktree', 'add', '-q', '-b', 'orch/r/b/1', path.join(root, 'r/b/1'), 'main'); // clean and old: removable
    old(path.join(root, 'r/b/1'));
    git(repo, 'worktree', 'add', '-q', '-b', 'orch/r/c/1', path.join(root, 'r/c/1'), 'main'); // holds work: kept
    fs.writeFileSync(path.join(root, 'r/c/1/work.txt'), 'precious');
    old(path.join(root, 'r/c/1'));
    git(repo, 'worktree', 'add', '-q', '-b', 'orch/r/c/2', path.join(root, 'r/c/2'), 'main'); // too young: kept
    fs.mkdirSync(path.join(root, 'r/b/2')); // an empty directory
    fs.mkdirSync(path.join(root, 'r/b/3'));
    fs.writeFileSync(path.join(root, 'r/b/3/notes'), 'x'); // a directory holding files
    git(repo, 'branch', 'orch/r/b/9', 'main'); // a branch alone, nothing of its own
    git(repo, 'checkout', '-q', '-b', 'orch/r/c/9');
    fs.writeFileSync(path.join(repo, 'new.txt'), 'y');
    git(repo, 'add', '.');
    git(repo, 'commit', '-q', '-m', 'own work');
    git(repo, 'checkout', '-q', 'main'); // a branch with a commit of its own
    markOurs(db, repo, 'orch/r/b/1', 'orch/r/c/1', 'orch/r/c/2', 'orch/r/b/9', 'orch/r/c/9');

    const before = snapshot(db);
    const seen = report(orchDoctor(db), 0);
    expect(snapshot(db)).toEqual(before);
    const byPath = (r: Report, kind: string) =>
      r.problems
        .filter((p) => p.kind === kind)
        .map((p) => [p.path ?? p.branch, p.repair !== null])
        .sort();
    expect(byPath(seen, 'orphan_worktree')).toEqual([
      [path.join(root, 'r/b/1'), true],
      [path.join(root, 'r/c/1'), false],
      [path.join(root, 'r/c/2'), false],
    ]);
    expect(byPath(seen, 'orphan_directory')).toEqual([
      [path.join(root, 'r/b/2'), true],
      [path.join(root, 'r/b/3'), false],
    ]);
    expect(
      seen.problems
        .filter((p) => p.kind === 'orphan_branch')
        .map((p) => [p.branch, p.repair !== null])
        .sort(),
    ).toEqual([
      ['orch/r/b/9', true],
      ['orch/r/c/9', false],
    ]);
    expect(seen.problems.every((p) => p.severity === 'warning')).toBe(true);

    const fixed = report(orchDoctor(db, '--repair'), 0);
    expect(fixed.repaired).toBe(3);
    expect(worktreeList(repo)).toEqual([repo, path.join(root, 'r/a/1'), path.join(root, 'r/c/1'), path.join(root, 'r/c/2')].sort());
    expect(branches(repo)).toEqual(['main', 'orch/r/a/1', 'orch/r/c/1', 'orch/r/c/2', 'orch/r/c/9']);
    expect(fs.existsSync(path.join(root, 'r/b/2'))).toBe(false);
    expect(fs.readFileSync(path.join(root, 'r/b/3/notes'), 'utf8')).toBe('x');
    expect(fs.readFileSync(path.join(root, 'r/c/1/work.txt'), 'utf8')).toBe('precious');
    // The attempt's own worktree is untouched, and dispatching b again works.
    expect(git(path.join(root, 'r/a/1'), 'status', '--porcelain')).toBe('');
  });

  it('a worktree whose git worktree add was killed mid-checkout (locked "initializing") is taken over by the next dispatch', () => {
    const { db, repo, root } = setup();
    const wt = path.join(root, 'r/b/1');
    git(repo, 'worktree', 'add', '-q', '-b', 'orch/r/b/1', wt, 'main');
    git(repo, 'worktree', 'lock', '--reason', 'initializing', wt);
    markOurs(db, repo, 'orch/r/b/1');
    fs.rmSync(path.join(wt, 'README')); // the checkout never finished: files look deleted
    old(wt);
    const seen = report(orchDoctor(db, '--repo-path', repo), 0);
    expect(seen.problems.find((p) => p.kind === 'orphan_worktree')?.repair).not.toBeNull(); // no work in it
    const d = orchOk(db, ['dispatch', '--run', 'r', '--task', 'b', '--execution-mode', 'code', '--repo-path', repo, '--body', 'x']);
    expect(d.attempt.worktree_path).toBe(wt);
    expect(git(wt, 'status', '--porcelain')).toBe('');
    expect(fs.readFileSync(path.join(wt, 'README'), 'utf8')).toBe('hi\n');
    expect(report(orchDoctor(db), 0).problems).toEqual([]);
  });

  it('a live dispatch marker keeps dispatch, cleanup and doctor away; a dead one is taken over and doctor removes a stale one', () => {
    const { db, repo, root } = setup();
    const wt = path.join(root, 'r/b/1');
    git(repo, 'worktree', 'add', '-q', '-b', 'orch/r/b/1', wt, 'main');
    markOurs(db, repo, 'orch/r/b/1');
    old(wt);
    // This test process is alive: its pid in the marker means "a dispatch is making this worktree now".
    fs.writeFileSync(`${wt}.dispatch`, `${process.pid} ${os.hostname()} live\n`);
    const refused = orch(['--db', db, '--json', 'dispatch', '--run', 'r', '--task', 'b', '--execution-mode', 'code', '--repo-path', repo, '--body', 'x']);
    expectJsonError(refused, 4, 'CONFLICT', /another dispatch \(pid \d+/);
    const kept = report(orchDoctor(db, '--repo-path', repo, '--repair'), 0);
    expect(kept.problems.map((p) => [p.kind, p.repaired])).toEqual([['orphan_worktree', false]]);
    expect(kept.problems[0]?.message).toMatch(/is making it right now/);
    expect(fs.existsSync(wt)).toBe(true);
    expect(rows(db, 'select count(*) as n from orch_attempts')).toEqual([{ n: 0 }]);

    // The same marker naming a process that has exited: the next dispatch takes the place over.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    fs.writeFileSync(`${wt}.dispatch`, `${dead} ${os.hostname()} gone\n`);
    const d = orchOk(db, ['dispatch', '--run', 'r', '--task', 'b', '--execution-mode', 'code', '--repo-path', repo, '--body', 'x']);
    expect(d.attempt.worktree_path).toBe(wt);
    expect(fs.existsSync(`${wt}.dispatch`)).toBe(false);

    // A marker left alone by a dispatch killed before its worktree existed: reported, then removed.
    fs.mkdirSync(path.join(root, 'r/c'), { recursive: true });
    fs.writeFileSync(path.join(root, 'r/c/1.dispatch'), `${dead} ${os.hostname()} gone\n`);
    expect(kinds(report(orchDoctor(db), 0))).toEqual(['stale_marker']);
    expect(report(orchDoctor(db, '--repair'), 0).problems).toEqual([expect.objectContaining({ kind: 'stale_marker', repaired: true })]);
    expect(fs.existsSync(path.join(root, 'r/c/1.dispatch'))).toBe(false);
    expect(report(orchDoctor(db), 0).problems).toEqual([]);
  });

  it('finds a leftover under a repository no attempt names yet only when given --repo-path', () => {
    const { db, repo, root } = setup();
    git(repo, 'worktree', 'add', '-q', '-b', 'orch/r/a/1', path.join(root, 'r/a/1'), 'main');
    expect(report(orchDoctor(db), 0).problems).toEqual([]);
    const r = report(orchDoctor(db, '--repo-path', repo), 0);
    expect(kinds(r)).toEqual(['orphan_worktree']);
    expectJsonError(orchDoctor(db, '--repo-path', tempDir()), 2);
  });

  it('reports a live attempt whose worktree is gone as an error, a finished one as a warning', () => {
    const { db, repo, root } = setup();
    const a = orchOk(db, ['dispatch', '--run', 'r', '--task', 'a', '--execution-mode', 'code', '--repo-path', repo, '--body', 'x']);
    fs.rmSync(path.join(root, 'r/a/1'), { recursive: true });
    const r = report(orchDoctor(db, '--repair'), 4);
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'worktree_missing', severity: 'error', attempt: a.attempt.id, repaired: false })]);
    orchOk(db, ['cancel', '--run', 'r', '--task', 'a']);
    const after = report(orchDoctor(db), 0);
    expect(after.problems).toEqual([expect.objectContaining({ kind: 'worktree_missing', severity: 'warning' })]);
    expect(after.problems[0]?.message).toMatch(/orch cleanup --run r --attempt/);
  });
});
