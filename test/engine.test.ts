import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  columnNames,
  copyDb,
  dbExists,
  dbSnapshot,
  ENGINE,
  freshDb,
  isPgUrl,
  onPostgres,
  PG_URL,
  pgConnectionString,
  RUN_ID_VAR,
  rawSql,
  rawSqlMany,
  rows,
  schemaOf,
  schemaStartedAt,
  tableNames,
  toDollarParams,
} from './engine.ts';
import { tempDir } from './helpers.ts';

/** Asks the server directly (not through rawSql) whether a schema exists and what its table holds. */
async function direct<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: pgConnectionString(PG_URL) });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

describe(`test/engine.ts on ${ENGINE}`, () => {
  it('freshDb gives one database per dir and name, the same one when asked twice', () => {
    const dir = tempDir();
    const a = freshDb(dir);
    expect(freshDb(dir)).toBe(a);
    expect(freshDb(dir, 'other.db')).not.toBe(a);
    expect(freshDb(tempDir())).not.toBe(a);
    if (onPostgres) {
      expect(isPgUrl(a)).toBe(true);
      expect(schemaOf(a)).toMatch(/^t_[0-9a-z]+x[0-9a-f]+_[0-9a-f]{8}$/);
      // The run id came from test/global-setup.ts, so its teardown drops this schema.
      expect(schemaOf(a).startsWith(`t_${process.env[RUN_ID_VAR]}_`)).toBe(true);
      expect(Date.now() - (schemaStartedAt(schemaOf(a)) ?? 0)).toBeLessThan(24 * 60 * 60 * 1000);
    } else {
      expect(a).toBe(`${dir}/coord.db`);
    }
    expect(dbExists(a)).toBe(false);
  });

  it('rawSql writes and reads with ? parameters, several statements at once, numbers as numbers', async () => {
    const db = freshDb(tempDir());
    rawSql(db, 'create table notes (id integer primary key, body text not null, n bigint); create table other (x text)');
    expect(dbExists(db)).toBe(true);
    rawSql(db, 'insert into notes (id, body, n) values (?, ?, ?)', [1, "it's '?' here", 9_000_000_000]);
    rawSql(db, "insert into notes (id, body, n) values (2, 'b', ?)", [5]);
    expect(rawSql(db, 'select id, body, n from notes where id >= ? order by id', [1])).toEqual([
      { id: 1, body: "it's '?' here", n: 9_000_000_000 },
      { id: 2, body: 'b', n: 5 },
    ]);
    expect(rows(db, 'select count(*) as c, sum(n) as s from notes')).toEqual([{ c: 2, s: 9_000_000_005 }]);
    expect(tableNames(db)).toEqual(['notes', 'other']);
    if (onPostgres) {
      // The table is in the URL's schema and nowhere else, as the server itself sees it.
      const where = await direct<{ table_schema: string }>(
        "select table_schema from information_schema.tables where table_name = 'notes' and table_schema like 't\\_%'",
      );
      expect(where.map((r) => r.table_schema)).toContain(schemaOf(db));
      expect(await direct(`select body from "${schemaOf(db)}".notes where id = 2`)).toEqual([{ body: 'b' }]);
    }
  });

  it('rows is read-only and needs the database to exist', () => {
    const db = freshDb(tempDir());
    expect(() => rows(db, 'select 1')).toThrow();
    expect(dbExists(db)).toBe(false);
    rawSql(db, 'create table t (x integer)');
    expect(() => rows(db, 'insert into t (x) values (1)')).toThrow();
    expect(rows(db, 'select count(*) as n from t')).toEqual([{ n: 0 }]);
  });

  it('dbSnapshot sees every change and nothing else', () => {
    const db = freshDb(tempDir());
    expect(dbSnapshot(db)).toEqual({ missing: true });
    rawSql(db, 'create table t (id integer primary key, v text)');
    rawSql(db, 'insert into t (id, v) values (2, ?), (1, ?)', ['b', 'a']);
    const before = dbSnapshot(db);
    expect(dbSnapshot(db)).toEqual(before);
    rawSql(db, "update t set v = 'c' where id = 1");
    expect(dbSnapshot(db)).not.toEqual(before);
    rawSql(db, "update t set v = 'a' where id = 1");
    expect(dbSnapshot(db)).toEqual(before);
    rawSql(db, 'create index t_v on t (v)');
    expect(dbSnapshot(db)).not.toEqual(before);
  });

  it('rawSqlMany inserts in one transaction; foreignKeys: false lets a test break a reference on purpose', () => {
    const db = freshDb(tempDir());
    rawSql(db, 'create table parent (id text primary key); create table child (id integer primary key, parent text not null references parent (id))');
    rawSqlMany(db, 'insert into parent (id) values (?)', [['a'], ['b']]);
    rawSqlMany(
      db,
      'insert into child (id, parent) values (?, ?)',
      Array.from({ length: 500 }, (_, i) => [i + 1, i % 2 === 0 ? 'a' : 'b']),
    );
    expect(rows(db, 'select parent, count(*) as n from child group by parent order by parent')).toEqual([
      { parent: 'a', n: 250 },
      { parent: 'b', n: 250 },
    ]);
    // A failing row rolls the whole batch back.
    expect(() => rawSqlMany(db, 'insert into parent (id) values (?)', [['c'], ['a']])).toThrow();
    expect(rows(db, 'select id from parent order by id')).toEqual([{ id: 'a' }, { id: 'b' }]);
    expect(() => rawSql(db, "delete from parent where id = 'a'")).toThrow();
    rawSql(db, "delete from parent where id = 'a'", [], { foreignKeys: false });
    expect(rows(db, 'select id from parent')).toEqual([{ id: 'b' }]);
    // ... and only while that statement runs.
    expect(() => rawSql(db, "delete from parent where id = 'b'")).toThrow();
    expect(columnNames(db, 'child')).toEqual(['id', 'parent']);
  });

  it('copyDb gives an independent copy, counters included', () => {
    const dir = tempDir();
    const db = freshDb(dir);
    rawSql(db, onPostgres ? 'create table t (id serial primary key, v text)' : 'create table t (id integer primary key autoincrement, v text)');
    rawSqlMany(db, 'insert into t (v) values (?)', [['a'], ['b']]);
    const copy = copyDb(db, tempDir());
    expect(copy).not.toBe(db);
    expect(dbSnapshot(copy)).toEqual(dbSnapshot(db));
    rawSql(copy, "insert into t (v) values ('c')");
    expect(rows(copy, "select id from t where v = 'c'")).toEqual([{ id: 3 }]);
    expect(rows(db, 'select count(*) as n from t')).toEqual([{ n: 2 }]);
    rawSql(db, "insert into t (v) values ('d')");
    expect(rows(db, "select id from t where v = 'd'")).toEqual([{ id: 3 }]);
  });

  it('toDollarParams numbers the placeholders outside quotes and comments', () => {
    expect(toDollarParams('select ? , \'?\', "a?", ? -- ?\n, ?')).toBe('select $1 , \'?\', "a?", $2 -- ?\n, $3');
  });
});
