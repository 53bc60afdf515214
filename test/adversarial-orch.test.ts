import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectJsonError, fileTempDir, git, makeGitRepo, rows, snapshot, tempDir, type CliRun } from './helpers.ts';
import { run } from './outside.ts';
import { columnNames, copyDb, freshDb, rawSql, rawSqlMany, tableNames } from './engine.ts';

/**
 * The leader's control plane attacked from outside, through the skill executables copied out of
 * the repository: graphs far longer than a call stack, refused commands that must write nothing
 * (reconcile included), runs damaged by hand, a merge conflict to redo, and a wait cursor from the
 * future.
 */

type Which = 'inbox' | 'orch';

function cli(which: Which, db: string, args: string[], cwd?: string): CliRun {
  return run(which, ['--db', db, '--json', ...args], cwd ? { cwd } : {});
}

function okJson<T = any>(which: Which, db: string, args: string[], cwd?: string): T {
  const r = cli(which, db, args, cwd);
  expect(r.code, `${which} ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** Writes to the database behind the tools' backs (damage, or a lease whose time ran out). */
function sql(db: string, ...statements: string[]): void {
  rawSql(db, statements.join(';\n'), [], { foreignKeys: false });
}

function newDb(): { dir: string; db: string } {
  const dir = tempDir('orch-adv-');
  const db = freshDb(dir);
  okJson('inbox', db, ['init']);
  return { dir, db };
}

/** Dispatches an analysis task and claims it as `agent`: the attempt id, thread and lease. */
function dispatchAndClaim(db: string, runId: string, task: string, agent: string): { attempt: string; thread: string; lease: string } {
  const d = okJson('orch', db, ['dispatch', '--run', runId, '--task', task, '--execution-mode', 'analysis', '--to', agent, '--body', `do ${task}`]);
  const c = okJson('inbox', db, ['claim', '--agent', agent, '--thread', d.attempt.thread_id]);
  return { attempt: d.attempt.id, thread: c.thread.id, lease: c.lease.token };
}

// ---------------------------------------------------------------------------------------------
describe('a 20,000-task chain (no graph walk may recurse) (slow)', () => {
  const N = 20_000;
  const id = (i: number) => `T${i}`;

  it('dep add (the last link, then a cycle), ready, status, task show and cancel all work', () => {
    const { db } = newDb();
    okJson('orch', db, ['run', 'init', '--run', 'chain', '--goal', 'a very long chain']);
    // T(i+1) depends on T(i); the last link is left to the CLI.
    rawSqlMany(
      db,
      "insert into orch_tasks (run_id, id, title, summary, default_to, acceptance, priority, state, created_at, updated_at) values ('chain', ?, ?, null, 'w', null, 0, 'pending', 1, 1)",
      Array.from({ length: N }, (_, i) => [id(i + 1), `task ${i + 1}`]),
    );
    rawSqlMany(
      db,
      "insert into orch_dependencies (run_id, task_id, depends_on, created_at) values ('chain', ?, ?, 1)",
      Array.from({ length: N - 2 }, (_, i) => [id(i + 2), id(i + 1)]),
    );

    const link = okJson('orch', db, ['dep', 'add', '--run', 'chain', '--task', id(N), '--depends-on', id(N - 1)]);
    expect(link).toMatchObject({ created: true, dependencies: [id(N - 1)] });

    const before = snapshot(db);
    const cycle = expectJsonError(
      cli('orch', db, ['dep', 'add', '--run', 'chain', '--task', id(1), '--depends-on', id(N)]),
      4,
      'CONFLICT',
      /would close a cycle/,
    );
    const loop = (cycle.details as { cycle: string[] }).cycle;
    expect(loop).toHaveLength(N + 1);
    expect([loop[0], loop[1], loop.at(-2), loop.at(-1)]).toEqual([id(1), id(N), id(2), id(1)]);
    expect(snapshot(db)).toEqual(before);

    expect(okJson('orch', db, ['ready', '--run', 'chain']).tasks.map((t: { id: string }) => t.id)).toEqual([id(1)]);

    const status = okJson('orch', db, ['status', '--run', 'chain']);
    expect(status.counts).toEqual({ total: N, pending: N });
    expect(status.tasks).toHaveLength(N);
    expect(status.tasks.filter((t: { ready: boolean }) => t.ready).map((t: { id: string }) => t.id)).toEqual([id(1)]);
    const text = run('orch', ['--db', db, 'status', '--run', 'chain']);
    expect(text.code, text.stderr).toBe(0);

    const mid = okJson('orch', db, ['task', 'show', '--run', 'chain', '--task', id(N / 2)]);
    expect(mid.task).toMatchObject({ depends_on: [id(N / 2 - 1)], waiting_on: [id(N / 2 - 1)], dependents: [id(N / 2 + 1)], ready: false });

    const cancelled = okJson('orch', db, ['cancel', '--run', 'chain', '--task', id(1), '--reason', 'the head goes']);
    expect(cancelled.cancelled).toEqual([id(1)]);
    expect(cancelled.stranded).toHaveLength(N - 1);
    expect(cancelled.stranded[0]).toBe(id(2));
    expect(cancelled.stranded.at(-1)).toBe(id(N));
  });
});

// ---------------------------------------------------------------------------------------------
describe('a refused command writes nothing, not even reconcile writes (slow)', () => {
  /**
   * Run r holds work reconcile would fold in: E's lease ran out (attempt_expired, its thread
   * cancelled, a note), and R's worker posted progress. Every refusal below must leave it all unfolded.
   */
  let template: { dir: string; db: string; repo: string; vars: Record<string, string> };
  beforeAll(() => {
    const dir = fileTempDir('orch-adv-refusals-'); // shared by the describe's tests
    const db = freshDb(dir);
    okJson('inbox', db, ['init']);
    template = build(dir, db);
  });

  /** A private copy of the template database (the repository is shared: no case changes it). */
  function fixture(): { db: string; repo: string; vars: Record<string, string> } {
    const db = copyDb(template.db, tempDir('orch-adv-'));
    return { db, repo: template.repo, vars: template.vars };
  }

  function build(dir: string, db: string): { dir: string; db: string; repo: string; vars: Record<string, string> } {
    const repo = makeGitRepo(dir);
    okJson('orch', db, ['run', 'init', '--run', 'r', '--goal', 'refusals']);
    for (const t of ['E', 'R', 'B', 'N', 'P', 'K']) okJson('orch', db, ['task', 'add', '--run', 'r', '--task', t, '--title', `task ${t}`, '--default-to', 'w']);
    const n = dispatchAndClaim(db, 'r', 'N', 'wn');
    okJson('inbox', db, ['result', '--thread', n.thread, '--lease', n.lease, '--body', 'N is done']);
    const b = dispatchAndClaim(db, 'r', 'B', 'wb');
    okJson('orch', db, ['status', '--run', 'r']); // N done and B running, folded in
    const e = dispatchAndClaim(db, 'r', 'E', 'we');
    const r = dispatchAndClaim(db, 'r', 'R', 'wr');
    okJson('orch', db, ['status', '--run', 'r']);
    okJson('inbox', db, ['progress', '--thread', r.thread, '--lease', r.lease, '--body', 'halfway']);
    sql(db, `update inbox_threads set lease_expires_at = 1000 where id = '${e.thread}'`);
    // K's worktree place holds somebody's files: a code dispatch of K is refused after deciding.
    fs.mkdirSync(path.join(repo, '.orch/worktrees/r/K/1'), { recursive: true });
    fs.writeFileSync(path.join(repo, '.orch/worktrees/r/K/1/notes.txt'), 'mine\n');
    return { dir, db, repo, vars: { B_AT: b.attempt, N_AT: n.attempt } };
  }

  const cases: [label: string, args: (v: Record<string, string>, repo: string) => string[], exit: number, code: string, message?: RegExp][] = [
    ['diff of an unknown task', () => ['diff', '--run', 'r', '--task', 'NOPE'], 3, 'NOT_FOUND', /no task NOPE/],
    ['diff of an analysis attempt', () => ['diff', '--run', 'r', '--task', 'N'], 4, 'CONFLICT', /analysis attempt/],
    ['merge of an analysis attempt', () => ['merge', '--run', 'r', '--task', 'N'], 4, 'CONFLICT', /analysis attempt/],
    ['merge of an unknown attempt', () => ['merge', '--run', 'r', '--task', 'N', '--attempt', 'at_nope'], 3, 'NOT_FOUND', /at_nope/],
    ['cleanup --attempt nope', () => ['cleanup', '--run', 'r', '--attempt', 'nope'], 3, 'NOT_FOUND', /nope/],
    ['cleanup of a live attempt', (v) => ['cleanup', '--run', 'r', '--attempt', v.B_AT ?? ''], 4, 'CONFLICT', /is running/],
    ['task show of an unknown task', () => ['task', 'show', '--run', 'r', '--task', 'NOPE'], 3, 'NOT_FOUND', /no task NOPE/],
    ['answer a running task', () => ['answer', '--run', 'r', '--task', 'B', '--body', 'b'], 4, 'CONFLICT', /not blocked/],
    ['cancel a done task', () => ['cancel', '--run', 'r', '--task', 'N'], 4, 'CONFLICT', /is done/],
    ['retry a running task', () => ['retry', '--run', 'r', '--task', 'B'], 4, 'CONFLICT', /running/],
    ['retry a done analysis task', () => ['retry', '--run', 'r', '--task', 'N'], 4, 'CONFLICT', /only failed or expired/],
    ['reassign a task never dispatched', () => ['reassign', '--run', 'r', '--task', 'P', '--to', 'w2'], 4, 'CONFLICT', /never dispatched/],
    ['dispatch a running task', () => ['dispatch', '--run', 'r', '--task', 'B', '--execution-mode', 'analysis', '--body', 'b'], 4, 'CONFLICT', /not ready/],
    [
      'dispatch in code mode onto a leftover that holds files',
      (_v, repo) => ['dispatch', '--run', 'r', '--task', 'K', '--execution-mode', 'code', '--repo-path', repo, '--body', 'b'],
      4,
      'CONFLICT',
      /holds work/,
    ],
    [
      'wait --after-event past the newest event',
      () => ['wait', '--run', 'r', '--after-event', '100000', '--timeout-seconds', '30'],
      2,
      'VALIDATION',
      /newest event/,
    ],
  ];

  it.each(cases)('%s', (_label, args, exit, code, message) => {
    const f = fixture();
    const before = snapshot(f.db);
    expectJsonError(cli('orch', f.db, args(f.vars, f.repo), f.repo), exit, code, message);
    expect(snapshot(f.db)).toEqual(before);
    // There was something to fold in: the refusal kept none of it.
    const folded = okJson('orch', f.db, ['reconcile', '--run', 'r']);
    expect(folded.events_written).toBeGreaterThanOrEqual(2);
    expect(rows(f.db, "select type from orch_events where type = 'attempt_expired'")).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------
describe('wait: the cursor and last_event (slow)', () => {
  it('refuses --after-event past the newest event (exit 2 naming it), and accepts the newest', () => {
    const { db } = newDb();
    okJson('orch', db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    okJson('orch', db, ['task', 'add', '--run', 'r', '--task', 'T', '--title', 't', '--default-to', 'w']);
    const newest = okJson('orch', db, ['run', 'show', '--run', 'r']).last_event as number;
    expect(newest).toBe(2);
    const before = snapshot(db);
    const e = expectJsonError(cli('orch', db, ['wait', '--run', 'r', '--after-event', '1000', '--timeout-seconds', '60']), 2, 'VALIDATION');
    expect(e.message).toContain('1000');
    expect(e.message).toContain('newest event of run r, which is 2');
    expect(snapshot(db)).toEqual(before);
    const w = okJson('orch', db, ['wait', '--run', 'r', '--after-event', String(newest), '--timeout-seconds', '0']);
    expect(w).toMatchObject({ timed_out: true, events: [], last_event: newest });
  });

  it('last_event is the newest event examined, so events of other types are not looked at again', () => {
    const { db } = newDb();
    okJson('orch', db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    okJson('orch', db, ['task', 'add', '--run', 'r', '--task', 'T', '--title', 't', '--default-to', 'w']);
    dispatchAndClaim(db, 'r', 'T', 'w');
    const newest = okJson('orch', db, ['status', '--run', 'r']).last_event as number;
    expect(newest).toBe(4); // run_created, task_added, task_dispatched, task_claimed
    const w = okJson('orch', db, ['wait', '--run', 'r', '--for', 'task_done', '--after-event', '0', '--timeout-seconds', '0']);
    expect(w).toMatchObject({ timed_out: true, events: [], last_event: newest });
    const all = okJson('orch', db, ['wait', '--run', 'r', '--after-event', '2', '--timeout-seconds', '0']);
    expect(all.events.map((x: { seq: number }) => x.seq)).toEqual([3, 4]);
    expect(all.last_event).toBe(4);
  });
});

// ---------------------------------------------------------------------------------------------
describe('doctor and the control commands on damaged runs (slow)', () => {
  it('repair never marks a run done while it still reports errors for it (tasks finished by hand, attempts live)', () => {
    const { db } = newDb();
    okJson('orch', db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    for (const t of ['X', 'Y']) okJson('orch', db, ['task', 'add', '--run', 'r', '--task', t, '--title', t, '--default-to', 'w']);
    dispatchAndClaim(db, 'r', 'X', 'wx');
    okJson('orch', db, ['dispatch', '--run', 'r', '--task', 'Y', '--execution-mode', 'analysis', '--body', 'y']);
    sql(db, "update orch_tasks set state = 'done' where id = 'X'", "update orch_tasks set state = 'cancelled' where id = 'Y'");
    const r = cli('orch', db, ['doctor', '--run', 'r', '--repair']);
    expect(r.code, r.stdout).toBe(4);
    const report = JSON.parse(r.stdout) as { ok: boolean; problems: { kind: string; severity: string; repaired: boolean }[] };
    expect(report.ok).toBe(false);
    expect(report.problems.some((p) => p.severity === 'error' && !p.repaired)).toBe(true);
    expect(report.problems.find((p) => p.kind === 'run_not_settled')).toMatchObject({ repaired: false });
    expect(rows(db, "select state from orch_runs where id = 'r'")).toEqual([{ state: 'active' }]);
    expect(rows(db, "select type from orch_events where type = 'run_done'")).toEqual([]);
  });

  /** Task T with two live attempts: #1 (claimed by w1, lease L1) left live by hand after #2 was dispatched. */
  function twoLive(): { db: string; w1: { thread: string; lease: string }; a1: string } {
    const { db } = newDb();
    okJson('orch', db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    okJson('orch', db, ['task', 'add', '--run', 'r', '--task', 'T', '--title', 't', '--default-to', 'w1']);
    okJson('orch', db, ['task', 'add', '--run', 'r', '--task', 'U', '--title', 'u', '--default-to', 'wu']);
    const first = dispatchAndClaim(db, 'r', 'T', 'w1');
    sql(db, `update orch_attempts set state = 'failed' where id = '${first.attempt}'`, "update orch_tasks set state = 'failed' where id = 'T'");
    const second = okJson('orch', db, ['retry', '--run', 'r', '--task', 'T', '--to', 'w2']);
    expect(second.attempt.number).toBe(2);
    sql(db, `update orch_attempts set state = 'running' where id = '${first.attempt}'`);
    expect(rows(db, "select number from orch_attempts where task_id = 'T' and state in ('dispatched', 'running', 'blocked') order by number")).toEqual([
      { number: 1 },
      { number: 2 },
    ]);
    return { db, w1: first, a1: first.attempt };
  }

  const liveOf = (db: string) => rows(db, "select number from orch_attempts where task_id = 'T' and state in ('dispatched', 'running', 'blocked')");

  it('cancel --task cancels every live attempt of the task, fencing each worker out', () => {
    const { db, w1, a1 } = twoLive();
    const c = okJson('orch', db, ['cancel', '--run', 'r', '--task', 'T']);
    expect(c.cancelled_attempts).toContain(a1);
    expect(c.cancelled_attempts).toHaveLength(2);
    expect(liveOf(db)).toEqual([]);
    expectJsonError(cli('inbox', db, ['progress', '--thread', w1.thread, '--lease', w1.lease, '--body', 'still here']), 5, 'LEASE_LOST');
    const doc = cli('orch', db, ['doctor', '--run', 'r']);
    expect(doc.code, doc.stdout).toBe(0);
  });

  it('cancel of the whole run cancels every live attempt, also those of tasks set finished by hand', () => {
    const { db, w1 } = twoLive();
    sql(db, "update orch_tasks set state = 'done' where id = 'T'");
    okJson('orch', db, ['cancel', '--run', 'r']);
    expect(liveOf(db)).toEqual([]);
    expectJsonError(cli('inbox', db, ['progress', '--thread', w1.thread, '--lease', w1.lease, '--body', 'still here']), 5, 'LEASE_LOST');
  });

  it('reassign fences out every live attempt, not only the newest', () => {
    const { db, w1 } = twoLive();
    const r = okJson('orch', db, ['reassign', '--run', 'r', '--task', 'T', '--to', 'w3']);
    expect(r.attempt.number).toBe(3);
    expect(liveOf(db)).toEqual([{ number: 3 }]);
    expectJsonError(cli('inbox', db, ['progress', '--thread', w1.thread, '--lease', w1.lease, '--body', 'still here']), 5, 'LEASE_LOST');
    const doc = cli('orch', db, ['doctor', '--run', 'r']);
    expect(doc.code, doc.stdout).toBe(0);
  });

  it('doctor reports a live attempt its task moved past, and --repair fences it out', () => {
    const { db, w1 } = twoLive();
    const check = cli('orch', db, ['doctor', '--run', 'r']);
    expect(check.code).toBe(4);
    expect(JSON.parse(check.stdout).problems).toContainEqual(expect.objectContaining({ kind: 'several_live_attempts', severity: 'error', task: 'T' }));
    const fixed = cli('orch', db, ['doctor', '--run', 'r', '--repair']);
    expect(JSON.parse(fixed.stdout).problems).toContainEqual(expect.objectContaining({ kind: 'several_live_attempts', repaired: true }));
    expect(liveOf(db)).toEqual([{ number: 2 }]);
    expectJsonError(cli('inbox', db, ['progress', '--thread', w1.thread, '--lease', w1.lease, '--body', 'still here']), 5, 'LEASE_LOST');
    expect(cli('orch', db, ['doctor', '--run', 'r']).code).toBe(0);
  });

  /** Run r: T's attempt (claimed) lost its thread; U is running normally. */
  function missingThread(): { db: string; t: { attempt: string; thread: string } } {
    const { db } = newDb();
    okJson('orch', db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    for (const x of ['T', 'U']) okJson('orch', db, ['task', 'add', '--run', 'r', '--task', x, '--title', x, '--default-to', 'w']);
    const t = dispatchAndClaim(db, 'r', 'T', 'wt');
    const u = dispatchAndClaim(db, 'r', 'U', 'wu');
    okJson('orch', db, ['status', '--run', 'r']);
    okJson('inbox', db, ['progress', '--thread', u.thread, '--lease', u.lease, '--body', 'U goes on']);
    const owned = tableNames(db).filter((n) => n.startsWith('inbox_') && n !== 'inbox_threads');
    sql(
      db,
      ...owned.filter((n) => columnNames(db, n).includes('thread_id')).map((n) => `delete from ${n} where thread_id = '${t.thread}'`),
      `delete from inbox_threads where id = '${t.thread}'`,
    );
    return { db, t };
  }

  it('a deleted thread leaves the run manageable: status, task show, ready, blocked and cancel work', () => {
    const { db, t } = missingThread();
    const s = okJson('orch', db, ['status', '--run', 'r']);
    const st = s.tasks.find((x: { id: string }) => x.id === 'T');
    expect(st.latest_attempt).toMatchObject({ id: t.attempt, thread: null });
    expect(s.tasks.find((x: { id: string }) => x.id === 'U').latest_message).toMatchObject({ body: 'U goes on' });
    const text = run('orch', ['--db', db, 'status', '--run', 'r']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('thread missing');
    expect(okJson('orch', db, ['task', 'show', '--run', 'r', '--task', 'T']).attempts[0]).toMatchObject({ thread: null, latest_message: null });
    okJson('orch', db, ['ready', '--run', 'r']);
    okJson('orch', db, ['blocked', '--run', 'r']);
    const c = okJson('orch', db, ['cancel', '--run', 'r', '--task', 'T']);
    expect(c.cancelled_attempts).toEqual([t.attempt]);
    expect(rows(db, `select state from orch_attempts where id = '${t.attempt}'`)).toEqual([{ state: 'cancelled' }]);
  });

  it('doctor --repair closes an attempt whose thread is gone, and the task can be retried', () => {
    const { db, t } = missingThread();
    const check = cli('orch', db, ['doctor', '--run', 'r']);
    expect(check.code).toBe(4);
    const problem = (JSON.parse(check.stdout).problems as { kind: string; repair: string | null }[]).find((p) => p.kind === 'attempt_thread_missing');
    expect(problem?.repair).toBeTruthy();
    const fixed = cli('orch', db, ['doctor', '--run', 'r', '--repair']);
    expect(fixed.code, fixed.stdout).toBe(0);
    expect(rows(db, `select state from orch_attempts where id = '${t.attempt}'`)).toEqual([{ state: 'failed' }]);
    expect(rows(db, "select state from orch_tasks where id = 'T'")).toEqual([{ state: 'failed' }]);
    const ev = rows<{ data: string }>(db, `select data from orch_events where attempt_id = '${t.attempt}' and type = 'task_failed'`);
    expect(ev).toHaveLength(1);
    expect(JSON.parse(ev[0]?.data ?? '{}')).toMatchObject({ task_state: 'failed', thread_missing: true });
    expect(okJson('orch', db, ['retry', '--run', 'r', '--task', 'T']).attempt.number).toBe(2);
    expect(cli('orch', db, ['doctor', '--run', 'r']).code).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
describe('redo after a merge conflict (real git, real processes) (slow)', () => {
  it('retry reopens a done code task whose merge conflicted; a merged one is refused; status counts unmerged work', () => {
    const dir = tempDir('orch-adv-git-');
    const db = freshDb(dir);
    okJson('inbox', db, ['init']);
    const repo = makeGitRepo(dir);
    fs.writeFileSync(path.join(repo, 'shared.txt'), 'one\ntwo\nthree\n');
    git(repo, 'add', '.');
    git(repo, 'commit', '-q', '-m', 'shared');
    okJson('orch', db, ['run', 'init', '--run', 'r', '--goal', 'two edits of one line']);
    for (const t of ['T1', 'T2']) okJson('orch', db, ['task', 'add', '--run', 'r', '--task', t, '--title', `edit ${t}`, '--default-to', `w${t}`]);

    /** A worker: claim, rewrite line two in the worktree, commit, post the result. */
    const work = (task: string, line: string) => {
      const c = okJson('inbox', db, ['claim', '--agent', `w${task}`]);
      const wt = c.messages[0].payload.attempt.worktree_path as string;
      fs.writeFileSync(path.join(wt, 'shared.txt'), `one\n${line}\nthree\n`);
      git(wt, '-c', 'user.name=W', '-c', 'user.email=w@example.com', 'commit', '-q', '-am', `${task}: ${line}`);
      okJson('inbox', db, ['result', '--thread', c.thread.id, '--lease', c.lease.token, '--body', `${task} wrote ${line}`]);
    };
    for (const t of ['T1', 'T2'])
      okJson(
        'orch',
        db,
        ['dispatch', '--run', 'r', '--task', t, '--execution-mode', 'code', '--repo-path', repo, '--base-ref', 'main', '--body', 'edit line two'],
        repo,
      );
    work('T1', 'TWO by T1');
    work('T2', 'two by T2');

    let s = okJson('orch', db, ['status', '--run', 'r']);
    expect(s.run.state).toBe('done');
    expect(s).toMatchObject({ unmerged: 2, unmerged_tasks: ['T1', 'T2'] });

    const m1 = okJson('orch', db, ['merge', '--run', 'r', '--task', 'T1'], repo);
    expect(m1.merged).toBe(true);
    const main1 = git(repo, 'rev-parse', 'main');
    const before = snapshot(db);
    const conflict = expectJsonError(cli('orch', db, ['merge', '--run', 'r', '--task', 'T2'], repo), 4, 'CONFLICT', /conflicts in shared\.txt/);
    expect(conflict.details).toMatchObject({ conflicts: ['shared.txt'] });
    expect(snapshot(db)).toEqual(before);
    expect(git(repo, 'rev-parse', 'main')).toBe(main1);

    s = okJson('orch', db, ['status', '--run', 'r']);
    expect(s.run.state).toBe('done');
    expect(s).toMatchObject({ unmerged: 1, unmerged_tasks: ['T2'] });
    const byId = (id: string) => s.tasks.find((t: { id: string }) => t.id === id);
    expect(byId('T1').latest_attempt).toMatchObject({ merged_into: 'main', merge_commit: main1 });
    expect(byId('T2').latest_attempt).toMatchObject({ merged_into: null, merge_commit: null, merged_at: null });
    expect(okJson('orch', db, ['run', 'show', '--run', 'r'])).toMatchObject({ unmerged: 1, unmerged_tasks: ['T2'] });
    const shown = run('orch', ['--db', db, 'run', 'show', '--run', 'r']);
    expect(shown.stdout).toMatch(/1 done code task\(s\) not merged yet: T2/);
    expect(okJson('orch', db, ['task', 'show', '--run', 'r', '--task', 'T1']).attempts[0]).toMatchObject({ merged_into: 'main', merge_commit: main1 });

    // The merged task is not reopened.
    const merged = expectJsonError(cli('orch', db, ['retry', '--run', 'r', '--task', 'T1'], repo), 4, 'CONFLICT', /merged into main/);
    expect(merged.details).toMatchObject({ merge_commit: main1 });

    // The conflicted one is: attempt 2 starts from main as it is now (with T1's work).
    const lastBefore = okJson('orch', db, ['run', 'show', '--run', 'r']).last_event as number;
    const redo = okJson('orch', db, ['retry', '--run', 'r', '--task', 'T2', '--body', 'main moved: redo your edit on top of it'], repo);
    expect(redo.attempt).toMatchObject({ number: 2, base_ref: 'main', base_commit: main1, merged_into: null });
    expect(redo.run.state).toBe('active');
    const after = okJson('orch', db, ['wait', '--run', 'r', '--after-event', String(lastBefore), '--timeout-seconds', '0']);
    expect(after.events.map((e: { type: string }) => e.type)).toEqual(['task_reopened', 'task_dispatched', 'run_reopened']);
    expect(fs.readFileSync(path.join(redo.attempt.worktree_path, 'shared.txt'), 'utf8')).toBe('one\nTWO by T1\nthree\n');

    work('T2', 'TWO by T1 and T2');
    const m2 = okJson('orch', db, ['merge', '--run', 'r', '--task', 'T2'], repo);
    expect(m2.merged).toBe(true);
    expect(git(repo, 'show', 'main:shared.txt')).toBe('one\nTWO by T1 and T2\nthree');
    s = okJson('orch', db, ['status', '--run', 'r']);
    expect(s).toMatchObject({ unmerged: 0, unmerged_tasks: [], run: { state: 'done' } });
    expect(cli('orch', db, ['doctor', '--run', 'r']).code).toBe(0);
  });
});
