import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { INBOX_BIN, ORCH_BIN, expectJsonError, fileTempDir, initDb, ok, orchOk, rows, snapshot, tempDir, type CliRun } from './helpers.ts';
import { freshDb, rawSqlMany } from './engine.ts';

/**
 * Large inputs (issue 8): a 10 MB body, a run with 10,000 tasks, a thread with 10,000 messages.
 * Each is handled or refused with the documented limit (bodies and payloads: 1 MiB), never a crash.
 * Big fixtures are written straight into the tables in one transaction (as scripts/bench.mjs
 * does: 10,000 library calls take minutes on a busy machine); the CLIs are then asked about them.
 */

const MiB = 1024 * 1024;

/** Runs a bundled CLI with room for large output (helpers' runners keep Node's 1 MiB default). */
function cli(bin: string, args: string[], options: { input?: string | Buffer } = {}): CliRun {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    maxBuffer: 512 * MiB,
    env: { ...process.env, NO_COLOR: '1' },
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
  // A CLI that refuses a huge stdin stops reading it: EPIPE for the writer here, an answer all the same.
  if (r.error && r.status === null) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
const inboxBig = (db: string, args: string[], options: { input?: string | Buffer } = {}): CliRun => cli(INBOX_BIN, ['--db', db, '--json', ...args], options);
const orchBig = (db: string, args: string[], options: { input?: string | Buffer } = {}): CliRun => cli(ORCH_BIN, ['--db', db, '--json', ...args], options);
function okBig<T = any>(r: CliRun): T {
  expect(r.code, r.stderr.slice(0, 2000)).toBe(0);
  return JSON.parse(r.stdout) as T;
}

describe('a 10 MB body is refused with the limit named, through every route (exit 2, nothing written) (slow)', () => {
  it('--body-file, --body-file /dev/stdin, and a file that never ends (/dev/zero), for send, result and dispatch', () => {
    const { dir, db } = initDb();
    const big = path.join(dir, 'big.txt');
    fs.writeFileSync(big, 'a'.repeat(10 * MiB));
    const t = ok(db, ['send', '--to', 'w1', '--subject', 's', '--body', 'b']).thread.id as string;
    const lease = ok(db, ['claim', '--agent', 'w1']).lease.token as string;
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    orchOk(db, ['task', 'add', '--run', 'r', '--task', 'T', '--title', 't', '--default-to', 'w2']);
    const before = snapshot(db);
    const routes: [label: string, bin: 'inbox' | 'orch', args: string[], input?: Buffer][] = [];
    for (const [source, input] of [
      [big, undefined],
      ['/dev/stdin', fs.readFileSync(big)],
      ['/dev/zero', undefined],
    ] as const) {
      routes.push(
        [`send ${source}`, 'inbox', ['send', '--to', 'w1', '--subject', 's', '--body-file', source], input],
        [`result ${source}`, 'inbox', ['result', '--thread', t, '--lease', lease, '--body-file', source], input],
        [`dispatch ${source}`, 'orch', ['dispatch', '--run', 'r', '--task', 'T', '--execution-mode', 'analysis', '--body-file', source], input],
      );
    }
    for (const [label, bin, args, input] of routes) {
      const r = (bin === 'inbox' ? inboxBig : orchBig)(db, args, input ? { input } : {});
      const error = expectJsonError(r, 2, 'VALIDATION', /at most 1048576 bytes/);
      expect(error.message, label).toContain('--body-file');
      expect(snapshot(db), label).toEqual(before);
    }
  });

  it('argv values stop at the OS limit (E2BIG, nothing runs); exactly 1 MiB through a file and stdin is stored whole, one byte more is refused', () => {
    const { dir, db } = initDb();
    // One argv string is capped by the OS (128 KiB on Linux), so the flag route is tested below that cap ...
    const payload = JSON.stringify({ s: 'p'.repeat(120 * 1024) });
    const sent = ok(db, ['send', '--to', 'w1', '--subject', 'argv', '--body', 'q'.repeat(120 * 1024), '--payload-json', payload]);
    expect(rows(db, 'select length(body) as n, length(payload) as p from inbox_messages where id = ?', sent.message.id)).toEqual([
      { n: 120 * 1024, p: payload.length },
    ]);
    // ... and beyond it the OS refuses to start the process at all: nothing of ours runs, nothing is written.
    const before = snapshot(db);
    const tooLong = spawnSync(process.execPath, [INBOX_BIN, '--db', db, 'send', '--to', 'w1', '--subject', 's', '--body', 'x'.repeat(10 * MiB)]);
    expect((tooLong.error as NodeJS.ErrnoException | undefined)?.code).toBe('E2BIG');
    expect(snapshot(db)).toEqual(before);

    const exact = 'é'.repeat(MiB / 2); // 1 MiB of UTF-8 in half as many characters
    fs.writeFileSync(path.join(dir, 'exact.txt'), exact);
    const viaFile = inboxBig(db, ['send', '--to', 'w1', '--subject', 'file', '--body-file', path.join(dir, 'exact.txt')]);
    const viaStdin = inboxBig(db, ['send', '--to', 'w1', '--subject', 'stdin', '--body-file', '/dev/stdin'], { input: exact });
    for (const r of [viaFile, viaStdin]) expect(okBig(r).message.body).toBe(exact);
    const over = inboxBig(db, ['send', '--to', 'w1', '--subject', 'over', '--body-file', '/dev/stdin'], { input: `${exact}x` });
    expectJsonError(over, 2, 'VALIDATION', /at most 1048576 bytes/);
    expect(
      rows(
        db,
        "select t.subject, sum(octet_length(m.body)) as bytes from inbox_messages m join inbox_threads t on t.id = m.thread_id where t.subject in ('file', 'stdin', 'over') group by t.subject order by t.subject",
      ),
    ).toEqual([
      { subject: 'file', bytes: MiB },
      { subject: 'stdin', bytes: MiB },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('large inputs (slow)', () => {
  const TASKS = 10_000;
  const CHAIN = 5_000; // T00000 <- T00001 <- ... <- T04999; the other 5,000 tasks are independent
  const id = (i: number): string => `T${String(i).padStart(5, '0')}`;
  let dir: string;
  let db: string;

  beforeAll(() => {
    dir = fileTempDir('large-run-');
    db = freshDb(dir);
    ok(db, ['init']);
    orchOk(db, ['run', 'init', '--run', 'big', '--goal', '10,000 tasks']);
    const now = Date.now();
    rawSqlMany(
      db,
      "insert into orch_tasks (run_id, id, title, summary, default_to, acceptance, priority, state, created_at, updated_at) values ('big', ?, ?, null, 'w', null, ?, 'pending', ?, ?)",
      Array.from({ length: TASKS }, (_, i) => [id(i), `task ${i}`, i % 7, now, now]),
    );
    rawSqlMany(
      db,
      "insert into orch_dependencies (run_id, task_id, depends_on, created_at) values ('big', ?, ?, ?)",
      Array.from({ length: CHAIN - 1 }, (_, k) => [id(k + 1), id(k), now]),
    );
  });

  it('10,000 tasks: ready lists the 5,001 dispatchable ones, highest priority first', () => {
    const ready = okBig(orchBig(db, ['ready', '--run', 'big']));
    expect(ready.tasks).toHaveLength(TASKS - CHAIN + 1);
    expect(ready.tasks.map((t: { id: string }) => t.id)).toContain(id(0));
    expect(ready.tasks.map((t: { id: string }) => t.id)).not.toContain(id(1));
    const priorities = ready.tasks.map((t: { priority: number }) => t.priority);
    expect(priorities).toEqual([...priorities].sort((a, b) => b - a));
  });

  it('10,000 tasks: status --json and task show answer, with every task and the right neighbours', () => {
    const status = okBig(orchBig(db, ['status', '--run', 'big']));
    expect(status.counts.total).toBe(TASKS);
    expect(status.tasks).toHaveLength(TASKS);
    expect(status.tasks.filter((t: { ready: boolean }) => t.ready)).toHaveLength(TASKS - CHAIN + 1);
    const shown = okBig(orchBig(db, ['task', 'show', '--run', 'big', '--task', id(2500)])).task;
    expect(shown.depends_on).toEqual([id(2499)]);
    expect(shown.dependents).toEqual([id(2501)]);
    expect(shown.waiting_on).toEqual([id(2499)]);
  });

  it('10,000 tasks: dep add finds a cycle across the 5,000-task chain (exit 4, nothing written) and accepts a long-range edge', () => {
    const before = snapshot(db);
    const r = orchBig(db, ['dep', 'add', '--run', 'big', '--task', id(0), '--depends-on', id(CHAIN - 1)]);
    const error = expectJsonError(r, 4, 'CONFLICT', /cycle/);
    expect(error.message).toContain(id(CHAIN - 1));
    expect(snapshot(db)).toEqual(before);
    const added = okBig(orchBig(db, ['dep', 'add', '--run', 'big', '--task', id(CHAIN - 1), '--depends-on', id(0)]));
    expect(added).toMatchObject({ created: true });
    expect(added.dependencies.sort()).toEqual([id(0), id(CHAIN - 2)]);
  });

  it('10,000 tasks: dispatch hands out a ready task and refuses one waiting at the end of the chain', () => {
    const d = okBig(orchBig(db, ['dispatch', '--run', 'big', '--task', id(0), '--execution-mode', 'analysis', '--body', 'go']));
    expect(d.attempt).toMatchObject({ task: id(0), number: 1, state: 'dispatched' });
    const before = snapshot(db);
    expectJsonError(
      orchBig(db, ['dispatch', '--run', 'big', '--task', id(CHAIN - 1), '--execution-mode', 'analysis', '--body', 'go']),
      4,
      'CONFLICT',
      /not ready/,
    );
    expect(snapshot(db)).toEqual(before);
    expect(rows(db, "select state, count(*) as n from orch_tasks where run_id = 'big' group by state order by state")).toEqual([
      { state: 'dispatched', n: 1 },
      { state: 'pending', n: TASKS - 1 },
    ]);
  });

  it('a thread with 10,000 messages: show, show --after-message, wait, list, and orch status / reconcile answer', () => {
    const MESSAGES = 10_000;
    const local = tempDir('large-thread-');
    const tdb = freshDb(local);
    ok(tdb, ['init']);
    orchOk(tdb, ['run', 'init', '--run', 'chatty', '--goal', 'talk a lot']);
    orchOk(tdb, ['task', 'add', '--run', 'chatty', '--task', 'T', '--title', 'talk', '--default-to', 'w']);
    const threadId = orchOk(tdb, ['dispatch', '--run', 'chatty', '--task', 'T', '--execution-mode', 'analysis', '--body', 'talk']).attempt.thread_id as string;
    ok(tdb, ['claim', '--agent', 'w']);
    rawSqlMany(
      tdb,
      "insert into inbox_messages (thread_id, author, kind, body, payload, created_at) values (?, 'w', 'progress', ?, ?, ?)",
      Array.from({ length: MESSAGES - 1 }, (_, k) => [threadId, `step ${k + 1} of ${MESSAGES}`, JSON.stringify({ i: k + 1 }), Date.now()]),
    );
    const shown = okBig(inboxBig(tdb, ['show', '--thread', threadId]));
    expect(shown.messages).toHaveLength(MESSAGES);
    expect(shown.messages.at(-1).body).toBe(`step ${MESSAGES - 1} of ${MESSAGES}`);
    const ids = shown.messages.map((m: { id: number }) => m.id);
    expect(ids).toEqual([...ids].sort((a: number, b: number) => a - b));
    const tail = okBig(inboxBig(tdb, ['show', '--thread', threadId, '--after-message', String(ids.at(-11))]));
    expect(tail.messages.map((m: { id: number }) => m.id)).toEqual(ids.slice(-10));
    const waited = okBig(inboxBig(tdb, ['wait', '--thread', threadId, '--agent', 'leader', '--after-message', String(ids.at(-2)), '--timeout-seconds', '0']));
    expect(waited.messages.map((m: { id: number }) => m.id)).toEqual([ids.at(-1)]);
    expect(okBig(inboxBig(tdb, ['list'])).threads).toHaveLength(1);

    const reconciled = okBig(orchBig(tdb, ['reconcile', '--run', 'chatty']));
    expect(reconciled.events_written).toBeGreaterThanOrEqual(MESSAGES - 1);
    expect(okBig(orchBig(tdb, ['reconcile', '--run', 'chatty'])).events_written).toBe(0);
    const status = okBig(orchBig(tdb, ['status', '--run', 'chatty']));
    expect(status.tasks[0]).toMatchObject({ id: 'T', state: 'running' });
    expect(status.tasks[0].latest_message.body).toBe(`step ${MESSAGES - 1} of ${MESSAGES}`);
  });

  it('10,000 open threads for one agent: list is capped by --limit (at most 10,000) and claim takes the oldest', () => {
    const local = tempDir('large-queue-');
    const qdb = freshDb(local);
    ok(qdb, ['init']);
    const jobs = Array.from({ length: 10_000 }, (_, i) => i);
    rawSqlMany(
      qdb,
      "insert into inbox_threads (id, subject, assigned_to, created_by, state, claim_count, created_at, updated_at) values (?, ?, 'w', 'leader', 'open', 0, ?, ?)",
      jobs.map((i) => [`th_job${i}`, `job ${i}`, Date.now(), Date.now()]),
    );
    rawSqlMany(
      qdb,
      "insert into inbox_messages (thread_id, author, kind, body, payload, created_at) values (?, 'leader', 'task', ?, null, ?)",
      jobs.map((i) => [`th_job${i}`, `do job ${i}`, Date.now()]),
    );
    expect(okBig(inboxBig(qdb, ['list'])).threads).toHaveLength(100);
    expect(okBig(inboxBig(qdb, ['list', '--limit', '10000'])).threads).toHaveLength(10_000);
    expectJsonError(inboxBig(qdb, ['list', '--limit', '10001']), 2, 'VALIDATION', /--limit/);
    const c = okBig(inboxBig(qdb, ['claim', '--agent', 'w']));
    expect(c.thread.subject).toBe('job 0');
  });
});
