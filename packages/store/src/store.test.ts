import Database from 'better-sqlite3';
import { sql, type Kysely } from 'kysely';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from './clock.ts';
import { AppError, DatabaseUnavailableError } from './errors.ts';
import { intFlag, jsonObjectFlag } from './flags.ts';
import { idSchema, randomIds, randomPart } from './ids.ts';
import { assertSchemaCurrent, migrate, schemaVersions, type MigrationSet } from './migrations.ts';
import type { SqliteStore as Store } from './engine.ts';
import { openStore, TRY_BUSY_MS } from './open.ts';
import { preparedQuery } from './prepared.ts';
import { readNow, runStepsOn, writeNow, writeTransaction } from './transaction.ts';
import { waitForChange } from './wait.ts';

const require = createRequire(import.meta.url);
let dir: string;
const open: Store[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
});
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function fresh(name = 'db.sqlite', busyTimeoutMs?: number): Store {
  const s = openStore({ path: path.join(dir, name), create: true, ...(busyTimeoutMs ? { busyTimeoutMs } : {}) });
  open.push(s);
  return s;
}

const notes: MigrationSet = {
  package: 'notes',
  migrations: [
    {
      version: 1,
      name: 'notes',
      up: (db) =>
        db.schema
          .createTable('notes')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('text', 'text')
          .execute(),
    },
    { version: 2, name: 'notes_tag', up: (db) => db.schema.alterTable('notes').addColumn('tag', 'text').execute() },
  ],
};

function reason(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError ? err.code : `not an AppError: ${String(err)}`;
  }
  return undefined;
}

describe('openStore', () => {
  it('creates an owner-only WAL file with foreign keys and an explicit busy timeout', () => {
    const s = fresh();
    expect(fs.statSync(s.path).mode & 0o777).toBe(0o600);
    expect(s.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.sqlite.pragma('foreign_keys', { simple: true })).toBe(1);
    // SQLite's handler waits briefly per statement; a writer's whole wait is writeTransaction's.
    expect(s.sqlite.pragma('busy_timeout', { simple: true })).toBe(TRY_BUSY_MS);
    expect(s.busyTimeoutMs).toBe(5000);
    expect(s.sqlite.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
  });

  it('makes an existing empty file owner-only when it creates the database in it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-empty-'));
    try {
      const file = path.join(dir, 'made-by-touch.db');
      fs.writeFileSync(file, '', { mode: 0o644 });
      fs.chmodSync(file, 0o644);
      const s = openStore({ path: file, create: true });
      expect(s.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      void s.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a missing file without creating it, a directory, and a file that is not SQLite (unchanged)', () => {
    const missing = path.join(dir, 'missing.db');
    expect(reason(() => openStore({ path: missing }))).toBe('DB_MISSING');
    expect(fs.existsSync(missing)).toBe(false);
    expect(reason(() => openStore({ path: dir }))).toBe('DB_CANNOT_OPEN');
    expect(reason(() => openStore({ path: dir, create: true }))).toBe('DB_CANNOT_OPEN');
    const text = path.join(dir, 'notes.txt');
    fs.writeFileSync(text, 'hello, not a database\n'.repeat(100));
    const before = fs.readFileSync(text);
    expect(reason(() => openStore({ path: text }))).toBe('DB_NOT_A_DATABASE');
    expect(reason(() => openStore({ path: text, create: true }))).toBe('DB_NOT_A_DATABASE');
    expect(fs.readFileSync(text).equals(before)).toBe(true);
    expect(fs.existsSync(`${text}-wal`)).toBe(false);
  });
});

describe('writeTransaction', () => {
  it('commits on success and rolls back everything when the function throws', async () => {
    const s = fresh();
    await migrate(s, notes, systemClock);
    await writeTransaction(s, (trx: Kysely<any>) => trx.insertInto('notes').values({ id: 1, text: 'kept' }).execute());
    await expect(
      writeTransaction(s, async (trx: Kysely<any>) => {
        await trx.insertInto('notes').values({ id: 2, text: 'lost' }).execute();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(s.sqlite.prepare('select id from notes').all()).toEqual([{ id: 1 }]);
    expect(s.sqlite.inTransaction).toBe(false);
  });

  it('takes the write lock up front (BEGIN IMMEDIATE): even a read-only body waits for another writer, then fails DB_BUSY', async () => {
    const s = fresh('busy.db', 100);
    const other = new Database(s.path);
    other.exec('begin immediate');
    try {
      const err = await writeTransaction(s, (trx: Kysely<any>) => sql`select 1`.execute(trx)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DatabaseUnavailableError);
      expect((err as AppError).code).toBe('DB_BUSY');
      expect((err as AppError).exitCode).toBe(6);
    } finally {
      other.exec('rollback');
      other.close();
    }
    await expect(writeTransaction(s, (trx: Kysely<any>) => sql`select 1`.execute(trx))).resolves.toBeDefined();
  });

  it('queues concurrent callers on one connection instead of calling them nested', async () => {
    const s = fresh();
    await migrate(s, notes, systemClock);
    // The first transaction is still open (a test-only pause) when the second caller arrives.
    const slow = writeTransaction(s, async (trx: Kysely<any>) => {
      await trx.insertInto('notes').values({ id: 1, text: 'first' }).execute();
      await new Promise((r) => setTimeout(r, 50));
    });
    const second = new Promise((r) => setTimeout(r, 10)).then(() =>
      writeTransaction(s, (trx: Kysely<any>) => trx.insertInto('notes').values({ id: 2, text: 'second' }).execute()),
    );
    await Promise.all([slow, second]);
    expect(s.sqlite.prepare('select id from notes order by id').all()).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('refuses to nest', async () => {
    const s = fresh();
    await expect(writeTransaction(s, () => writeTransaction(s, async () => 1))).rejects.toThrow(/nested/);
  });
});

type NoteRow = { id: number; text: string | null; tag: string | null };
const noteById = preparedQuery((db: Kysely<any>, p: { id: number }) => db.selectFrom('notes').selectAll().where('id', '=', p.id));
const notesTagged = preparedQuery((db: Kysely<any>, p: { tag: string; above: number }) =>
  db.selectFrom('notes').select('id').where('tag', '=', p.tag).where('id', '>', p.above).where('text', '!=', 'skip').orderBy('id'),
);
const addNote = preparedQuery((db: Kysely<any>, p: { id: number; text: string }) =>
  db.insertInto('notes').values({ id: p.id, text: p.text, tag: 'fixed' }).returningAll(),
);

describe('preparedQuery', () => {
  it("binds named values where the query uses them and keeps the query's own constants", async () => {
    const s = fresh();
    await migrate(s, notes, systemClock);
    await writeNow(s, function* () {
      expect(yield* addNote.row({ id: 1, text: 'a' })).toEqual({ id: 1, text: 'a', tag: 'fixed' });
      yield* addNote.row({ id: 2, text: 'skip' });
      yield* addNote.row({ id: 3, text: 'c' });
    });
    expect(runStepsOn(s, () => notesTagged.rows({ tag: 'fixed', above: 0 }))).toEqual([{ id: 1 }, { id: 3 }]);
    expect(await readNow(s, () => notesTagged.rows({ tag: 'fixed', above: 1 }))).toEqual([{ id: 3 }]);
    expect(runStepsOn(s, () => notesTagged.rows({ tag: 'other', above: 0 }))).toEqual([]);
    expect(runStepsOn(s, () => noteById.row({ id: 3 }))).toEqual({ id: 3, text: 'c', tag: 'fixed' });
    expect(runStepsOn(s, () => noteById.row({ id: 9 }))).toBeUndefined();
    // The same compiled query through Kysely (inside an async transaction, say).
    expect(await writeTransaction(s, (trx: Kysely<any>) => noteById.execute(trx, { id: 1 }))).toEqual([{ id: 1, text: 'a', tag: 'fixed' }]);
    expect(notesTagged.compile(s.db, { tag: 't', above: 5 }).parameters).toEqual(['t', 5, 'skip']);
  });

  it('refuses a query that puts a parameter into the SQL text instead of binding it', async () => {
    const s = fresh();
    await migrate(s, notes, systemClock);
    const inlined = preparedQuery((db: Kysely<any>, p: { text: string }) => db.selectFrom('notes').selectAll().where('text', '=', sql.lit(p.text)));
    expect(() => runStepsOn(s, () => inlined.rows({ text: 'x' }))).toThrow(/inlined/);
  });

  it('prepares each statement once per connection', async () => {
    const s = fresh();
    await migrate(s, notes, systemClock);
    expect(s.statements.prepare('select 1 as one')).toBe(s.statements.prepare('select 1 as one'));
  });
});

describe('random ids', () => {
  it('are the prefix and 16 letters or digits, every one of the 62 about equally likely', () => {
    expect(randomIds.next('th')).toMatch(/^th_[0-9A-Za-z]{16}$/);
    const counts = new Map<string, number>();
    const n = 62 * 500;
    const text = Array.from({ length: n / 31 }, () => randomPart(31)).join('');
    expect(text).toMatch(/^[0-9A-Za-z]+$/);
    for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // 500 expected per character; a generator that favoured some would land far outside.
    for (const [c, k] of counts) {
      expect(k, c).toBeGreaterThan(380);
      expect(k, c).toBeLessThan(620);
    }
  });
});

describe('writeNow', () => {
  it('commits what the function wrote, rolls back everything when it throws', async () => {
    const s = fresh();
    await migrate(s, notes, systemClock);
    await writeNow(s, () => addNote.row({ id: 1, text: 'kept' }));
    await expect(
      writeNow(s, function* () {
        yield* addNote.row({ id: 2, text: 'lost' });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(s.sqlite.prepare('select id from notes').all()).toEqual([{ id: 1 }]);
    expect(s.sqlite.inTransaction).toBe(false);
  });

  it('takes the write lock up front and fails DB_BUSY when another writer keeps it', async () => {
    const s = fresh('busy-now.db', 100);
    await migrate(s, notes, systemClock);
    const other = new Database(s.path);
    other.exec('begin immediate');
    try {
      const err = await writeNow(s, () => noteById.row({ id: 1 })).catch((e: unknown) => e);
      expect((err as AppError).code).toBe('DB_BUSY');
    } finally {
      other.exec('rollback');
      other.close();
    }
    expect(s.sqlite.inTransaction).toBe(false);
    await expect(writeNow(s, () => addNote.row({ id: 2, text: 'after' }))).resolves.toMatchObject({ id: 2 });
  });

  it('waits past the busy timeout while other writers keep committing: DB_BUSY only for one lock held that long', async () => {
    const s = fresh('busy-stream.db', 300);
    await migrate(s, notes, systemClock);
    // Another thread takes the lock in back-to-back transactions of 100 ms each for about 2 s:
    // no single one is held past 300 ms, so the writer here must wait, not fail.
    const other = new Worker(
      `const Database = require(${JSON.stringify(require.resolve('better-sqlite3'))});
       const { parentPort, workerData } = require('node:worker_threads');
       const db = new Database(workerData);
       db.pragma('busy_timeout = 5000');
       const hold = new Int32Array(new SharedArrayBuffer(4));
       db.exec('begin immediate');
       parentPort.postMessage('holding');
       for (let i = 0; i < 20; i++) {
         Atomics.wait(hold, 0, 0, 100);
         db.prepare("insert into notes (text) values ('other')").run();
         db.exec('commit');
         db.exec('begin immediate');
       }
       db.exec('commit');
       db.close();`,
      { eval: true, workerData: s.path },
    );
    const exited = new Promise((resolve) => other.once('exit', resolve));
    await new Promise((resolve) => other.once('message', resolve));
    const err = await writeNow(s, () => addNote.row({ id: 999, text: 'mine' })).catch((e: unknown) => e);
    await exited;
    expect(err instanceof AppError ? err.code : err).not.toBe('DB_BUSY');
    expect(s.sqlite.prepare("select count(*) as n from notes where text = 'mine'").get()).toEqual({ n: 1 });
  });

  it('queues behind a transaction of the same process that is still open, instead of joining it', async () => {
    const s = fresh();
    await migrate(s, notes, systemClock);
    let release!: () => void;
    const paused = new Promise<void>((r) => (release = r));
    const slow = writeTransaction(s, async (trx: Kysely<any>) => {
      await trx.insertInto('notes').values({ id: 1, text: 'first' }).execute();
      await paused;
      throw new Error('first rolls back');
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(s.sqlite.inTransaction).toBe(true);
    const second = writeNow(s, function* () {
      expect(yield* noteById.row({ id: 1 })).toBeUndefined();
      return yield* addNote.row({ id: 2, text: 'second' });
    });
    release();
    await expect(slow).rejects.toThrow('first rolls back');
    await expect(second).resolves.toMatchObject({ id: 2 });
    expect(s.sqlite.prepare('select id from notes order by id').all()).toEqual([{ id: 2 }]);
  });

  it('refuses to nest, in either direction', async () => {
    const s = fresh();
    await migrate(s, notes, systemClock);
    const one = () => noteById.row({ id: 1 });
    await expect(
      writeNow(s, function* () {
        yield* addNote.row({ id: 7, text: 'x' });
        return writeNow(s, one);
      }),
    ).rejects.toThrow(/nested/);
    await expect(
      writeNow(s, function* () {
        yield* noteById.row({ id: 1 });
        return readNow(s, one);
      }),
    ).rejects.toThrow(/nested/);
    await expect(writeTransaction(s, () => writeNow(s, one))).rejects.toThrow(/nested/);
    await expect(
      writeNow(s, function* () {
        yield* noteById.row({ id: 1 });
        return writeTransaction(s, async () => 1);
      }),
    ).rejects.toThrow(/nested/);
    expect(s.sqlite.prepare('select count(*) as n from notes').get()).toEqual({ n: 0 });
    expect(s.sqlite.inTransaction).toBe(false);
  });
});

describe('migrations', () => {
  it('apply in order once; a second run changes nothing', async () => {
    const s = fresh();
    const first = await migrate(s, notes, systemClock);
    expect(first).toMatchObject({ from: 0, to: 2, applied: [{ version: 1 }, { version: 2 }] });
    const again = await migrate(s, notes, systemClock);
    expect(again).toMatchObject({ from: 2, to: 2, applied: [] });
    expect(await schemaVersions(s)).toEqual({ notes: 2 });
    await expect(assertSchemaCurrent(s, notes, 'init')).resolves.toBe(2);
  });

  it('upgrade an older schema; ordinary opens say to run init', async () => {
    const s = fresh();
    await migrate(s, { package: 'notes', migrations: notes.migrations.slice(0, 1) }, systemClock);
    await expect(assertSchemaCurrent(s, notes, 'tool init')).rejects.toMatchObject({ code: 'DB_OUTDATED' });
    expect((await migrate(s, notes, systemClock)).applied).toEqual([{ version: 2, name: 'notes_tag' }]);
  });

  it('refuse an uninitialised file, a newer schema, and a file holding foreign tables', async () => {
    const s = fresh();
    await expect(assertSchemaCurrent(s, notes, 'tool --db X init')).rejects.toThrow(/not initialised; run `tool --db X init`/);
    await migrate(s, notes, systemClock);
    s.sqlite.prepare("insert into schema_migrations values ('notes', 3, 'future', 0)").run();
    await expect(assertSchemaCurrent(s, notes, 'init')).rejects.toMatchObject({ code: 'DB_TOO_NEW', exitCode: 6 });
    await expect(migrate(s, notes, systemClock)).rejects.toMatchObject({ code: 'DB_TOO_NEW' });

    const foreign = fresh('foreign.db');
    foreign.sqlite.exec('create table customers (id integer)');
    await expect(migrate(foreign, notes, systemClock)).rejects.toMatchObject({ code: 'DB_FOREIGN' });
    expect(foreign.sqlite.prepare("select name from sqlite_master where type = 'table'").all()).toEqual([{ name: 'customers' }]);
  });
});

describe('waitForChange', () => {
  it('wakes when another connection commits', async () => {
    const s = fresh();
    await migrate(s, notes, systemClock);
    const other = new Database(s.path);
    setTimeout(() => other.prepare("insert into notes (id, text) values (7, 'hi')").run(), 50);
    const found = await waitForChange(s, async () => s.sqlite.prepare('select text from notes where id = 7').get(), {
      timeoutMs: 5000,
      clock: systemClock,
      recheckMs: 60_000,
    });
    other.close();
    expect(found).toEqual({ text: 'hi' });
  });

  it('ends as at the timeout once its signal aborts, whether aborted before or during the wait', async () => {
    const s = fresh();
    await migrate(s, notes, systemClock);
    const before = new AbortController();
    before.abort();
    let checks = 0;
    const check = async () => {
      checks++;
      return undefined;
    };
    expect(await waitForChange(s, check, { timeoutMs: 60_000, clock: systemClock, signal: before.signal })).toBeUndefined();
    expect(checks).toBe(1);
    const during = new AbortController();
    setTimeout(() => during.abort(), 50);
    const started = performance.now();
    const found = await waitForChange(s, async () => undefined, { timeoutMs: 60_000, clock: systemClock, recheckMs: 60_000, signal: during.signal });
    expect(found).toBeUndefined();
    // Ended by the abort, long before its 60 s timeout.
    expect(performance.now() - started).toBeLessThan(60_000);
  });

  it('gives up at the timeout, measured on the injected clock', async () => {
    const s = fresh();
    const clock = new ManualClock();
    const start = clock.now();
    let checks = 0;
    const found = await waitForChange(s, async () => (checks++, undefined), { timeoutMs: 3000, clock, pollMs: 10, recheckMs: 1000 });
    expect(found).toBeUndefined();
    expect(clock.now() - start).toBe(3000);
    // Once at the start, then only on the 1 s rechecks: not on every 10 ms poll.
    expect(checks).toBe(4);
  });

  it('measures its timeout and rechecks on monotonic time: the wall clock set back an hour changes nothing', async () => {
    const s = fresh();
    const clock = new ManualClock();
    const start = clock.monotonicMs();
    let checks = 0;
    const found = await waitForChange(
      s,
      async () => {
        // The system clock is set back an hour while the wait has begun.
        if (checks++ === 0) clock.setWall(clock.now() - 3_600_000);
        return undefined;
      },
      { timeoutMs: 3000, clock, pollMs: 10, recheckMs: 1000 },
    );
    expect(found).toBeUndefined();
    expect(clock.monotonicMs() - start).toBe(3000);
    expect(checks).toBe(4);
  });

  it('a wall clock set forward does not cut the wait short', async () => {
    const s = fresh();
    const clock = new ManualClock();
    const start = clock.monotonicMs();
    let checks = 0;
    const found = await waitForChange(
      s,
      async () => {
        if (checks++ === 0) clock.setWall(clock.now() + 3_600_000);
        return undefined;
      },
      { timeoutMs: 3000, clock, pollMs: 10, recheckMs: 1000 },
    );
    expect(found).toBeUndefined();
    expect(clock.monotonicMs() - start).toBe(3000);
    expect(checks).toBe(4);
  });
});

describe('flag validation', () => {
  it('whole numbers only, within bounds', () => {
    const f = intFlag(1, 86_400);
    expect(f.parse('900')).toBe(900);
    for (const bad of ['-5', '1e12', '0', '3.5', 'ten', '86401', '', '99999999999999999999']) expect(f.safeParse(bad).success, bad).toBe(false);
  });

  it('ids: safe characters, no leading dash or dot, no ".."', () => {
    for (const good of ['T1', 'blog_mvp_001', 'qa-worker', 'a.b', '_x']) expect(idSchema.safeParse(good).success, good).toBe(true);
    for (const bad of ['', '-x', '.x', 'a/b', 'a..b', 'a b', 'a\nb', 'ä', 'x'.repeat(129)]) expect(idSchema.safeParse(bad).success, bad).toBe(false);
  });

  it('payloads must be JSON objects', () => {
    expect(jsonObjectFlag.parse('{"a":1}')).toEqual({ a: 1 });
    for (const bad of ['{bad', '[1]', '5', 'null', '"s"']) expect(jsonObjectFlag.safeParse(bad).success, bad).toBe(false);
  });
});

describe('JSON depth bound', () => {
  it('counts nesting without recursion, ignoring brackets inside strings', async () => {
    const { jsonDepth, parseBoundedJson, jsonObjectFlag, MAX_JSON_DEPTH } = await import('./flags.ts');
    expect(jsonDepth('{"a":[1,{"b":"[[[[\\"{"}]}')).toBe(3);
    expect(jsonDepth('"[[["')).toBe(0);
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    expect(jsonDepth(deep(100_000))).toBe(MAX_JSON_DEPTH + 1);
    expect(() => parseBoundedJson(deep(MAX_JSON_DEPTH))).not.toThrow();
    expect(() => parseBoundedJson(deep(MAX_JSON_DEPTH + 1))).toThrow(/deeper than 64/);
    const r = jsonObjectFlag.safeParse(`{"a":${deep(4000)}}`);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/at most 64 levels/);
  });
});
