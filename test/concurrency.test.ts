import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, inbox, inboxAsync, initDb, json, ok, orchAsync, orchOk, rows, tempDir } from './helpers.ts';
import { freshDb, onPostgres, rawSql, rawSqlMany, sqliteOnly } from './engine.ts';

interface ClaimerReport {
  pid: number;
  won: string[];
  errors: { code: string; message: string }[];
}

/** Starts `n` claimer processes, releases them together once all are ready, and collects their reports. */
async function runClaimers(n: number, db: string, agent: string, dir: string): Promise<ClaimerReport[]> {
  const goFile = path.join(dir, 'go');
  let ready = 0;
  let release!: () => void;
  const allReady = new Promise<void>((r) => (release = r));
  const done = Array.from({ length: n }, () => {
    const child = spawn(process.execPath, [path.join(FIXTURES, 'claimer.cjs'), db, agent, goFile]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      const before = out;
      out += d.toString();
      if (!before.includes('ready\n') && out.includes('ready\n') && ++ready === n) release();
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise<ClaimerReport>((resolve, reject) =>
      child.on('close', (code) => {
        // A process that died before "ready" must not leave the others waiting for the go file.
        if (!out.includes('ready\n') && ++ready === n) release();
        const last = out.trim().split('\n').at(-1) ?? '';
        try {
          resolve(JSON.parse(last) as ClaimerReport);
        } catch {
          reject(new Error(`claimer exited ${code}: ${out} ${err}`));
        }
      }),
    );
  });
  await allReady;
  fs.writeFileSync(goFile, '');
  return Promise.all(done);
}

describe('concurrent claims (real OS processes) (slow)', () => {
  it('8 processes claiming from 200 open threads: every thread claimed exactly once, no errors, no SQLITE_BUSY', async () => {
    const { dir, db } = initDb();
    const ids = Array.from({ length: 200 }, (_, i) => `th_job${String(i).padStart(3, '0')}`);
    rawSqlMany(
      db,
      `insert into inbox_threads (id, subject, assigned_to, created_by, state, claim_count, created_at, updated_at)
       values (?, 'job', 'w', 'leader', 'open', 0, ?, ?)`,
      ids.map((id, i) => [id, i, i]),
    );

    const reports = await runClaimers(8, db, 'w', dir);

    expect(reports.flatMap((r) => r.errors)).toEqual([]);
    const won = reports.flatMap((r) => r.won);
    expect(won).toHaveLength(200);
    expect(new Set(won).size).toBe(200);
    expect([...won].sort()).toEqual(ids);
    // The work really was shared out, not done by one early process.
    expect(reports.filter((r) => r.won.length > 0).length).toBeGreaterThan(1);
    const states = rows<{ state: string; claim_count: number; n: number }>(
      db,
      'select state, claim_count, count(*) as n from inbox_threads group by state, claim_count',
    );
    expect(states).toEqual([{ state: 'done', claim_count: 1, n: 200 }]);
    // Exactly one progress and one result per thread, written by the process that won it.
    const perThread = rows<{ n: number }>(db, "select count(*) as n from inbox_messages where kind in ('progress','result') group by thread_id");
    expect(perThread.every((r) => r.n === 2)).toBe(true);
    expect(perThread).toHaveLength(200);
  });

  it('8 CLI processes claiming at once never both win a thread', async () => {
    const { db } = initDb();
    for (let i = 0; i < 24; i++) ok(db, ['send', '--to', 'w', '--subject', `job ${i}`, '--body', 'go']);
    const claimLoop = async () => {
      const won: string[] = [];
      for (;;) {
        const r = await inboxAsync(['--db', db, '--json', 'claim', '--agent', 'w']);
        expect(r.code, r.stderr).toBe(0);
        const out = json(r);
        if (!out.claimed) return won;
        won.push(out.thread.id as string);
      }
    };
    const results = await Promise.all(Array.from({ length: 8 }, claimLoop));
    const won = results.flat();
    expect(won).toHaveLength(24);
    expect(new Set(won).size).toBe(24);
    expect(rows(db, "select count(*) as n from inbox_threads where claim_count = 1 and state = 'claimed'")).toEqual([{ n: 24 }]);
  });
});

describe('migrations across processes (slow)', () => {
  it('init twice is a no-op the second time', () => {
    const dir = tempDir();
    const db = freshDb(dir);
    const first = ok(db, ['init']);
    expect(first.applied).toEqual([
      { package: 'inbox', version: 1, name: 'threads_and_messages' },
      { package: 'inbox', version: 2, name: 'held_threads_by_lease_expiry' },
      { package: 'inbox', version: 3, name: 'drop_threads_by_state' },
      { package: 'inbox', version: 4, name: 'message_roles_and_delivery_marks' },
    ]);
    const second = ok(db, ['init']);
    expect(second).toMatchObject({ schema_version: { inbox: 4 }, applied: [] });
    expect(rows(db, 'select package, version from schema_migrations order by version')).toEqual([
      { package: 'inbox', version: 1 },
      { package: 'inbox', version: 2 },
      { package: 'inbox', version: 3 },
      { package: 'inbox', version: 4 },
    ]);
  });

  it('several processes initialising the same new file at once all succeed', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = tempDir();
      const db = freshDb(dir);
      const runs = await Promise.all(Array.from({ length: 4 }, () => inboxAsync(['--db', db, '--json', 'init'])));
      for (const r of runs) expect(r.code, r.stderr).toBe(0);
      expect(runs.map((r) => json(r).applied.length).sort()).toEqual([0, 0, 0, 4]);
      expect(rows(db, 'select package, version from schema_migrations order by version')).toEqual([
        { package: 'inbox', version: 1 },
        { package: 'inbox', version: 2 },
        { package: 'inbox', version: 3 },
        { package: 'inbox', version: 4 },
      ]);
      if (!onPostgres) expect(rows<{ journal_mode: string }>(db, 'pragma journal_mode')[0]?.journal_mode).toBe('wal');
    }
  });

  it('a database marked newer than the code is refused with exit 6 by every command, init included', () => {
    const { db } = initDb();
    rawSql(db, "insert into schema_migrations (package, version, name, applied_at) values ('inbox', 99, 'future', 0)");
    for (const args of [['list'], ['init'], ['claim', '--agent', 'w']]) {
      const r = inbox(['--db', db, '--json', ...args]);
      expect(r.code).toBe(6);
      expect(JSON.parse(r.stderr).error.code).toBe('DB_TOO_NEW');
    }
  });

  sqliteOnly.it('file modes of the database file', 'the database file is created owner-only', () => {
    const { db } = initDb();
    expect(fs.statSync(db).mode & 0o777).toBe(0o600);
  });
});

describe('16 parallel CLI writers (slow)', () => {
  it('16 processes dispatching from one 2,000-task run, 4 calls each: no DB_BUSY, every task dispatched once', async () => {
    const { db } = initDb();
    orchOk(db, ['run', 'init', '--run', 'big', '--goal', 'contention']);
    const now = Date.now();
    rawSqlMany(
      db,
      "insert into orch_tasks (run_id, id, title, summary, default_to, acceptance, priority, state, created_at, updated_at) values ('big', ?, ?, null, 'w', null, 0, 'pending', ?, ?)",
      Array.from({ length: 2000 }, (_, i) => [`T${i}`, `task ${i}`, now, now]),
    );
    const WRITERS = 16;
    const CALLS = 4;
    // Each writer is a chain of CLI processes, so 16 processes are writing at any moment. Their
    // transactions are short; only a lock held past the 5 s timeout may give DB_BUSY.
    const outcomes = await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        const mine: { task: string; code: number; stderr: string }[] = [];
        for (let k = 0; k < CALLS; k++) {
          const task = `T${w * CALLS + k}`;
          const r = await orchAsync(['--db', db, '--json', 'dispatch', '--run', 'big', '--task', task, '--execution-mode', 'analysis', '--body', 'go']);
          mine.push({ task, code: r.code, stderr: r.stderr });
        }
        return mine;
      }),
    );
    const all = outcomes.flat();
    expect(all.filter((o) => o.stderr.includes('DB_BUSY'))).toEqual([]);
    expect(all.filter((o) => o.code !== 0)).toEqual([]);
    const attempts = rows<{ task_id: string; n: number }>(db, "select task_id, count(*) as n from orch_attempts where run_id = 'big' group by task_id");
    expect(attempts).toHaveLength(WRITERS * CALLS);
    expect(attempts.every((a) => a.n === 1)).toBe(true);
  }, 600_000);
});
