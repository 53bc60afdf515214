import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { hash32 } from '../packages/store/src/pg/url.ts';
import { INBOX_BIN, expectJsonError, inbox, json, ok, orch, orchOk, rows, tempDir, type CliRun } from './helpers.ts';

// `inbox copy` / `orch copy`: a SQLite database moved into a PostgreSQL schema, through the real
// CLIs. Each test copies into its own schema `t_<random>` of the server's `test` database, dropped
// at the end. Without a server the file skips (saying so once); with CI=true it fails instead.

const SERVER = 'postgres://127.0.0.1:5432/test';
// The CLIs default the user to the OS user, like libpq; this file's own connections do the same.
const client = () =>
  new pg.Client({ host: '127.0.0.1', port: 5432, database: 'test', user: process.env.PGUSER ?? os.userInfo().username, connectionTimeoutMillis: 3000 });

async function unreachable(): Promise<string | undefined> {
  const c = client();
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('select 1');
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await c.end().catch(() => undefined);
  }
}

const why = await unreachable();
if (why !== undefined && process.env.CI !== 'true') {
  console.log(`test/copy.test.ts skipped: no PostgreSQL server at ${SERVER} (${why})`);
}

const schemas: string[] = [];
/** A fresh schema name for one target (dropped after the file). */
function newSchema(): string {
  const name = `t_${crypto.randomBytes(6).toString('hex')}`;
  schemas.push(name);
  return name;
}
const url = (schema: string, password?: string) =>
  password === undefined ? `${SERVER}?schema=${schema}` : `postgres://root:${password}@127.0.0.1:5432/test?schema=${schema}`;

async function query<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  const c = client();
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

afterAll(async () => {
  if (why !== undefined) return;
  for (const schema of schemas) await query(`drop schema if exists ${schema} cascade`);
});

/** Every row of every table in `schema`, in id order: what must not change. */
async function dump(schema: string): Promise<Record<string, unknown[]>> {
  const tables = await query<{ name: string }>(`select table_name as name from information_schema.tables where table_schema = $1 order by 1`, [schema]);
  const out: Record<string, unknown[]> = {};
  for (const { name } of tables) out[name] = await query(`select * from ${schema}.${name} order by 1, 2`);
  return out;
}

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const copy = (cli: 'inbox' | 'orch', from: string, to: string): CliRun => (cli === 'inbox' ? inbox : orch)(['--json', 'copy', '--from', from, '--to', to]);

/** The outputs a user reads, on `db`: every one must be byte-identical after the copy. */
function outputs(db: string, threads: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const take = (key: string, r: CliRun) => {
    if (r.code !== 0) throw new Error(`${key} on ${db} exited ${r.code}: ${r.stderr}`);
    out[key] = r.stdout;
  };
  take('status', orch(['--db', db, '--json', 'status', '--run', 'r1']));
  take('run show', orch(['--db', db, '--json', 'run', 'show', '--run', 'r1']));
  for (const task of ['T1', 'T2', 'T3']) take(`task show ${task}`, orch(['--db', db, '--json', 'task', 'show', '--run', 'r1', '--task', task]));
  take('events', orch(['--db', db, '--json', 'wait', '--run', 'r1', '--after-event', '0', '--timeout-seconds', '1']));
  take('list', inbox(['--db', db, '--json', 'list']));
  for (const thread of threads) take(`show ${thread}`, inbox(['--db', db, '--json', 'show', '--thread', thread]));
  take('run list', orch(['--db', db, 'run', 'list']));
  return out;
}

describe.skipIf(why !== undefined && process.env.CI !== 'true')('copy to PostgreSQL (slow)', () => {
  it('reaches the PostgreSQL server (CI must not skip this file)', () => {
    expect(why).toBeUndefined();
  });

  it('copies a run (tasks, deps, attempts, events, threads, messages): every output identical, ids continue after the copied ones', async () => {
    const dir = tempDir();
    const src = path.join(dir, 'coord.db');
    ok(src, ['init']);
    orchOk(src, ['run', 'init', '--run', 'r1', '--goal', 'move to a server']);
    orchOk(src, ['task', 'add', '--run', 'r1', '--task', 'T1', '--title', 'first', '--default-to', 'w1']);
    orchOk(src, ['task', 'add', '--run', 'r1', '--task', 'T2', '--title', 'second', '--default-to', 'w2', '--acceptance-json', '["passes", {"ü": 1.50}]']);
    orchOk(src, ['task', 'add', '--run', 'r1', '--task', 'T3', '--title', 'third', '--default-to', 'w3', '--priority', '2']);
    orchOk(src, ['dep', 'add', '--run', 'r1', '--task', 'T2', '--depends-on', 'T1']);
    orchOk(src, ['dispatch', '--run', 'r1', '--task', 'T1', '--execution-mode', 'analysis', '--body', 'look ✓ "quoted"\nline two']);
    const claim1 = ok(src, ['claim', '--agent', 'w1']);
    const lease1 = claim1.lease.token as string;
    const t1 = claim1.thread.id as string;
    ok(src, ['progress', '--thread', t1, '--lease', lease1, '--body', 'half way', '--payload-json', '{"b":2,"a":[1,2.5,"x"]}']);
    ok(src, ['ask', '--thread', t1, '--lease', lease1, '--body', 'which one?']);
    orchOk(src, ['answer', '--run', 'r1', '--task', 'T1', '--body', 'the first', '--payload-json', '{"choice":"first","n":12345678901}']);
    ok(src, ['result', '--thread', t1, '--lease', lease1, '--body', 'done', '--payload-json', '{"ok":true}']);
    const t2 = orchOk(src, ['dispatch', '--run', 'r1', '--task', 'T2', '--execution-mode', 'analysis', '--body', 'next']).attempt.thread_id as string;
    ok(src, ['claim', '--agent', 'w2']);
    const t3 = ok(src, ['send', '--to', 'helper', '--subject', 'plain thread', '--body', 'héllo\u2028world\ttab']).thread.id as string;
    orchOk(src, ['reconcile', '--run', 'r1']);

    const threads = [t1, t2, t3];
    const before = outputs(src, threads);
    const file = sha(src);
    const sourceCounts = Object.fromEntries(
      rows<{ name: string }>(src, "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name <> 'schema_migrations'").map(
        ({ name }) => [name, { rows: rows<{ n: number }>(src, `select count(*) as n from "${name}"`)[0]?.n }],
      ),
    );

    const schema = newSchema();
    const r = copy('orch', src, url(schema, 'sekrit-pw'));
    expect(r.code, r.stderr).toBe(0);
    expect(`${r.stdout}${r.stderr}`).not.toContain('sekrit-pw');
    const result = json(r);
    expect(result.from).toBe(src);
    expect(result.to).toBe(`postgres://root@127.0.0.1:5432/test?schema=${schema}`);
    expect(result.schema_version).toEqual({ inbox: 4, orch: 4 });
    expect(result.tables).toEqual(sourceCounts);
    expect(result.tables.inbox_messages.rows).toBeGreaterThan(5);
    expect(result.tables.orch_events.rows).toBeGreaterThan(5);
    // The source was only read.
    expect(sha(src)).toBe(file);

    const target = url(schema);
    expect(outputs(target, threads)).toEqual(before);
    // The database id travels with the data (worktrees and branches carry it).
    expect((await query(`select key, value from ${schema}.orch_meta`)).map((m) => ({ ...m }))).toEqual(rows(src, 'select key, value from orch_meta'));

    // New rows get fresh ids after the copied ones, and claims get new leases.
    const maxMessage = rows<{ id: number }>(src, 'select max(id) as id from inbox_messages')[0]?.id ?? 0;
    const sent = ok(target, ['send', '--to', 'w9', '--subject', 'after the move', '--body', 'new']);
    const claim9 = ok(target, ['claim', '--agent', 'w9']);
    expect(claim9.claimed).toBe(true);
    expect(claim9.thread.id).toBe(sent.thread.id);
    expect(claim9.lease.token).not.toBe(lease1);
    const posted = ok(target, ['progress', '--thread', sent.thread.id, '--lease', claim9.lease.token, '--body', 'working']);
    expect(posted.message.id).toBeGreaterThan(maxMessage);
    expect(sent.message.id).toBe(maxMessage + 1);
    const maxEvent = rows<{ id: number }>(src, 'select max(id) as id from orch_events')[0]?.id ?? 0;
    orchOk(target, ['dispatch', '--run', 'r1', '--task', 'T3', '--execution-mode', 'analysis', '--body', 'third']);
    const events = await query<{ id: string; seq: string }>(`select id, seq from ${schema}.orch_events order by id`);
    expect(Number(events.at(-1)?.id)).toBeGreaterThan(maxEvent);
    expect(events.map((e) => Number(e.seq))).toEqual(events.map((_, i) => i + 1));
    const doctor = orch(['--db', target, '--json', 'doctor']);
    expect(doctor.code, doctor.stdout).toBe(0);
  });

  it('copies a source in use: a writer holding its lock mid-transaction is neither waited for nor copied', () => {
    const dir = tempDir();
    const src = path.join(dir, 'coord.db');
    ok(src, ['init']);
    ok(src, ['send', '--to', 'w1', '--subject', 'committed', '--body', 'b']);
    const writer = new Database(src);
    try {
      writer.exec('begin immediate');
      writer
        .prepare(
          "insert into inbox_threads (id, subject, assigned_to, created_by, state, created_at, updated_at) values ('th_uncommitted', 's', 'w', 'l', 'open', 1, 1)",
        )
        .run();
      const r = copy('inbox', src, url(newSchema()));
      expect(r.code, r.stderr).toBe(0);
      expect(json(r).tables).toEqual({ inbox_threads: { rows: 1 }, inbox_messages: { rows: 1 } });
    } finally {
      writer.close();
    }
    expect(rows(src, 'select id from inbox_threads').map((t) => t.id)).not.toContain('th_uncommitted');
  });

  it('refuses a target that already holds data (exit 4) and changes nothing there', async () => {
    const dir = tempDir();
    const src = path.join(dir, 'coord.db');
    ok(src, ['init']);
    ok(src, ['send', '--to', 'w1', '--subject', 's', '--body', 'b']);
    const schema = newSchema();
    expect(copy('inbox', src, url(schema)).code).toBe(0);
    const other = path.join(dir, 'other.db');
    ok(other, ['init']);
    ok(other, ['send', '--to', 'w2', '--subject', 'other', '--body', 'other']);
    const before = await dump(schema);
    for (const from of [src, other]) {
      const err = expectJsonError(copy('inbox', from, url(schema)), 4, 'CONFLICT', /already holds data/);
      expect(err.message).toContain('inbox_threads');
    }
    expect(await dump(schema)).toEqual(before);
  });

  it('a copy killed midway leaves the target without data; a second copy then succeeds (100,000 messages of 1 KB)', async () => {
    const dir = tempDir();
    const src = path.join(dir, 'big.db');
    ok(src, ['init']);
    fillLarge(src, 1000, 100);
    const schema = newSchema();
    const child = spawn(process.execPath, [INBOX_BIN, '--json', 'copy', '--from', src, '--to', url(schema)], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Midway: the tables exist (init committed) and the copy's transaction holds the schema's write
    // lock and has written (it has a transaction id).
    for (;;) {
      const [row] = await query<{ n: string }>(
        `select count(*) as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
          where l.locktype = 'advisory' and l.classid = $1 and l.objid = $2 and l.granted and a.backend_xid is not null
            and exists (select 1 from information_schema.tables where table_schema = $3 and table_name = 'inbox_messages')`,
        [0x6f726368, hash32(`schema:${schema}`) >>> 0, schema],
      );
      if (Number(row?.n) > 0) break;
      if (child.exitCode !== null) throw new Error(`the copy finished (exit ${child.exitCode}) before it could be killed`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    child.kill('SIGKILL');
    expect(await exited).toBeNull();
    for (const table of ['inbox_threads', 'inbox_messages']) {
      expect(Number((await query<{ n: string }>(`select count(*) as n from ${schema}.${table}`))[0]?.n)).toBe(0);
    }

    const r = copy('inbox', src, url(schema));
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).tables).toEqual({ inbox_threads: { rows: 1000 }, inbox_messages: { rows: 100_000 } });
    const digest = (
      await query<{ d: string }>(`select md5(string_agg(id || ':' || body || ':' || created_at, '|' order by id)) as d from ${schema}.inbox_messages`)
    )[0]?.d;
    const local = rows<{ id: number; body: string; created_at: number }>(src, 'select id, body, created_at from inbox_messages order by id')
      .map((m) => `${m.id}:${m.body}:${m.created_at}`)
      .join('|');
    expect(digest).toBe(crypto.createHash('md5').update(local).digest('hex'));
  });

  it('bad input: documented codes, and nothing is created on the server', async () => {
    const dir = tempDir();
    const schema = newSchema();
    const to = url(schema);
    expectJsonError(copy('inbox', path.join(dir, 'missing.db'), to), 6, 'DB_MISSING');
    const empty = path.join(dir, 'empty.db');
    new Database(empty).close();
    expectJsonError(copy('inbox', empty, to), 6, 'DB_NOT_INITIALISED', /inbox --db .* init/);
    const src = path.join(dir, 'coord.db');
    ok(src, ['init']);
    expectJsonError(copy('inbox', src, path.join(dir, 'x.db')), 2, 'VALIDATION', /--to: must be a PostgreSQL URL/);
    expectJsonError(copy('inbox', to, to), 2, 'VALIDATION', /--from: must be a SQLite database file/);
    expectJsonError(inbox(['--json', 'copy', '--from', src]), 2);
    expectJsonError(inbox(['--db', src, '--json', 'copy', '--from', src, '--to', to]), 2, 'USAGE', /takes no --db/);
    // A source with orch's tables: the inbox CLI cannot create them, orch's copy can.
    orchOk(src, ['run', 'init', '--run', 'r1', '--goal', 'g']);
    expectJsonError(copy('inbox', src, to), 6, 'DB_FOREIGN', /orch copy/);
    // Outdated (as if made by an older release): upgrade first, with the command the message names.
    const db = new Database(src);
    db.prepare("delete from schema_migrations where package = 'inbox' and version = 4").run();
    db.close();
    expectJsonError(copy('orch', src, to), 6, 'DB_OUTDATED', /inbox --db .* init/);
    const newer = path.join(dir, 'newer.db');
    ok(newer, ['init']);
    const db2 = new Database(newer);
    db2.prepare("insert into schema_migrations values ('inbox', 99, 'future', 0)").run();
    db2.close();
    expectJsonError(copy('inbox', newer, to), 6, 'DB_TOO_NEW');
    expect(await query('select 1 from information_schema.schemata where schema_name = $1', [schema])).toEqual([]);
  });
});

/** Fills an initialised inbox file with `threads` threads of `perThread` messages of 1 KB each. */
function fillLarge(file: string, threads: number, perThread: number): void {
  const db = new Database(file);
  try {
    const thread = db.prepare(
      "insert into inbox_threads (id, subject, assigned_to, created_by, state, created_at, updated_at) values (?, ?, 'w1', 'leader', 'open', ?, ?)",
    );
    const message = db.prepare(
      "insert into inbox_messages (thread_id, author, kind, body, payload, created_at, role) values (?, 'leader', ?, ?, ?, ?, 'leader')",
    );
    db.transaction(() => {
      for (let t = 0; t < threads; t++) {
        const id = `th_big${String(t).padStart(6, '0')}`;
        thread.run(id, `thread ${t}`, 1_700_000_000_000 + t, 1_700_000_000_000 + t);
        for (let m = 0; m < perThread; m++) {
          const body = `${t}/${m} `.padEnd(1024, 'é✓x');
          message.run(id, m === 0 ? 'task' : 'note', body, m % 10 === 0 ? JSON.stringify({ t, m }) : null, 1_700_000_000_000 + t * perThread + m);
        }
      }
    })();
  } finally {
    db.close();
  }
}
