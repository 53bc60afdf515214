/**
 * Which database engine this test run is on, and the few things a test needs to treat both alike:
 * a fresh database location (`freshDb`), SQL run by hand (`rawSql`, `rows`), a comparable picture
 * of a whole database (`dbSnapshot`), and marking a test that is about SQLite itself.
 *
 * `ORCH_TEST_ENGINE=postgres` (the vitest project `postgres` sets it) runs a file against the
 * PostgreSQL server at `ORCH_TEST_PG_URL` (default postgres://127.0.0.1:5432/test): every fresh
 * database is then a brand-new schema on it, named `t_<run>_<random>` (see `schemaPrefix`), which
 * `inbox init` creates and test/global-setup.ts drops at the end of the run.
 *
 * rawSql is synchronous on both engines (the assertions it serves were written that way): on
 * PostgreSQL a worker thread holds the `pg` connections and the caller blocks on Atomics.wait
 * until it answers.
 */
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, type TestFunction } from 'vitest';
import { onPostgres, PG_URL, pgConnectionString, schemaPrefix } from './engine-env.ts';
import { pgCall } from './engine-pg.ts';

export { ENGINE, type Engine, newRunId, onPostgres, onSqlite, PG_URL, pgConnectionString, RUN_ID_VAR, schemaPrefix, schemaStartedAt } from './engine-env.ts';

let processPrefix: string | undefined;
const named = new Map<string, string>();

/**
 * A database no test has used: on SQLite `<dir>/<name>` (not created); on PostgreSQL a URL naming
 * a new schema (not created either: `inbox init` creates it). The same dir and name give the same
 * URL within one process, so a test may ask twice for one database.
 */
export function freshDb(dir: string, name = 'coord.db'): string {
  const file = path.join(dir, name);
  if (!onPostgres) return file;
  let url = named.get(file);
  if (url === undefined) {
    processPrefix ??= schemaPrefix();
    url = withSchema(PG_URL, `${processPrefix}${crypto.randomBytes(4).toString('hex')}`);
    named.set(file, url);
  }
  return url;
}

/** True for a PostgreSQL URL (what the CLIs accept in place of a path). */
export function isPgUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//.test(db);
}

/** `url` naming `schema` through `?schema=`. */
export function withSchema(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('schema', schema);
  return u.toString();
}

/** The schema a URL names (`?schema=`, default public). */
export function schemaOf(url: string): string {
  return new URL(url).searchParams.get('schema') ?? 'public';
}

/** `db` as a command run in `from` may spell it: a relative path on SQLite; a URL has one spelling. */
export function relativeDb(db: string, from: string): string {
  return isPgUrl(db) ? db : path.relative(from, db);
}

/** A file name under test-results/ for this engine's run (`name` on SQLite, `<name>.postgres` on PostgreSQL), so the two projects never share one. */
export function perEngine(name: string): string {
  if (!onPostgres) return name;
  const ext = path.extname(name);
  return `${name.slice(0, name.length - ext.length)}.postgres${ext}`;
}

/** Where `inbox work` puts its work directory by default: beside the database file, or on PostgreSQL in its cwd. */
export function defaultWorkDir(db: string, cwd: string): string {
  return isPgUrl(db) ? path.join(cwd, '.inbox-work') : path.join(path.dirname(path.resolve(cwd, db)), '.inbox-work');
}

export interface RawSqlOptions {
  /** Read only, and the database must exist (SQLite: opened read-only; PostgreSQL: the schema must exist). */
  readonly?: boolean;
  /**
   * false: foreign keys are not enforced while this runs, to damage a database on purpose (SQLite:
   * `pragma foreign_keys = off`; PostgreSQL: `session_replication_role = replica` in its transaction).
   */
  foreignKeys?: boolean;
}

/**
 * Runs SQL by hand on either engine and returns the rows of its (last) statement. `?` placeholders
 * (outside quotes) become `$1..` on PostgreSQL. Text without parameters may hold several statements.
 * Like opening a SQLite file, a write creates the database (the schema) if it is missing.
 * Integers (int8, numeric) come back as numbers and json as its text, as they do from SQLite.
 * Write SQL both engines accept: no SQLite-only functions (`json_extract`, `rowid`, `sqlite_master`).
 */
export function rawSql<T = Record<string, unknown>>(db: string, text: string, params: readonly unknown[] = [], options: RawSqlOptions = {}): T[] {
  if (isPgUrl(db)) {
    return pgCall({
      op: 'query',
      url: db,
      text: toDollarParams(text),
      params: [...params],
      readonly: options.readonly ?? false,
      foreignKeysOff: options.foreignKeys === false,
    }) as T[];
  }
  return withSqlite(db, options, (conn) => {
    if (params.length === 0 && !isOneStatement(conn, text)) {
      conn.exec(text);
      return [];
    }
    const stmt = conn.prepare(text);
    if (stmt.reader) return stmt.all(...params) as T[];
    stmt.run(...params);
    return [];
  });
}

/** Runs one statement once per parameter list, all in one transaction (bulk inserts by hand). */
export function rawSqlMany(db: string, text: string, paramLists: readonly (readonly unknown[])[], options: Omit<RawSqlOptions, 'readonly'> = {}): void {
  if (isPgUrl(db)) {
    pgCall({
      op: 'many',
      url: db,
      text: toDollarParams(text),
      params: paramLists.map((p) => [...p]),
      readonly: false,
      foreignKeysOff: options.foreignKeys === false,
    });
    return;
  }
  withSqlite(db, options, (conn) => {
    const stmt = conn.prepare(text);
    conn.transaction(() => {
      for (const p of paramLists) stmt.run(...p);
    })();
  });
}

function withSqlite<T>(db: string, options: RawSqlOptions, fn: (conn: Database.Database) => T): T {
  const conn = new Database(db, options.readonly ? { readonly: true, fileMustExist: true } : {});
  try {
    if (options.foreignKeys === false) conn.pragma('foreign_keys = off');
    return fn(conn);
  } finally {
    conn.close();
  }
}

/** The column names of a table, in order. */
export function columnNames(db: string, table: string): string[] {
  const q = isPgUrl(db)
    ? 'select column_name as name from information_schema.columns where table_schema = current_schema() and table_name = ? order by ordinal_position'
    : 'select name from pragma_table_info(?) order by cid';
  return rows<{ name: string }>(db, q, table).map((r) => r.name);
}

/**
 * A copy of database `from` as `freshDb(dir, name)`, to give each test its own copy of a fixture
 * built once: SQLite copies the file and its WAL; PostgreSQL copies the schema with pg_dump and psql
 * (its name, random, is renamed in the dump text), sequences included.
 */
export function copyDb(from: string, dir: string, name = 'coord.db'): string {
  const to = freshDb(dir, name);
  if (!isPgUrl(from)) {
    for (const suffix of ['', '-wal']) if (fs.existsSync(from + suffix)) fs.copyFileSync(from + suffix, to + suffix);
    return to;
  }
  const conn = pgConnectionString(from);
  const dump = spawnSync('pg_dump', ['--no-owner', '--no-privileges', '--schema', schemaOf(from), conn], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (dump.status !== 0) throw new Error(`pg_dump of ${schemaOf(from)} exited ${dump.status}: ${dump.stderr}`);
  const text = dump.stdout.split(schemaOf(from)).join(schemaOf(to));
  const load = spawnSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', pgConnectionString(to)], { input: text, encoding: 'utf8', maxBuffer: 1 << 30 });
  if (load.status !== 0) throw new Error(`psql loading the copy ${schemaOf(to)} exited ${load.status}: ${load.stderr}`);
  return to;
}

/** Rows of a read-only query (the database must exist). */
export function rows<T = Record<string, unknown>>(db: string, query: string, ...params: unknown[]): T[] {
  return rawSql<T>(db, query, params, { readonly: true });
}

/** Whether the database exists: the file on SQLite, the schema on PostgreSQL. */
export function dbExists(db: string): boolean {
  if (!isPgUrl(db)) return fs.existsSync(db);
  return (
    (
      pgCall({
        op: 'query',
        url: db,
        text: 'select 1 from pg_namespace where nspname = $1',
        params: [schemaOf(db)],
        readonly: false,
        noSchema: true,
      }) as unknown[]
    ).length > 0
  );
}

/** The names of the database's tables, sorted. */
export function tableNames(db: string): string[] {
  const q = isPgUrl(db)
    ? "select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE' order by 1"
    : "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by 1";
  return rows<{ name: string }>(db, q).map((r) => r.name);
}

/**
 * Every row of every table plus the schema, as one comparable value (`{ missing: true }` when the
 * database does not exist). Taking it never writes. On PostgreSQL a table's definition is its
 * columns and indexes, and its rows are sorted (there is no rowid order).
 */
export function dbSnapshot(db: string): unknown {
  if (!dbExists(db)) return { missing: true };
  if (isPgUrl(db)) return pgCall({ op: 'snapshot', url: db, text: '', params: [], readonly: true });
  const conn = new Database(db, { readonly: true, fileMustExist: true });
  try {
    const tables = conn.prepare("select name, sql from sqlite_master where name not like 'sqlite_%' order by name").all() as {
      name: string;
      sql: string | null;
    }[];
    return tables.map((t) => ({
      ...t,
      rows: t.sql?.startsWith('CREATE TABLE') ? conn.prepare(`select * from "${t.name}" order by rowid`).all() : undefined,
    }));
  } finally {
    conn.close();
  }
}

/**
 * Marks what is about SQLite itself (files, WAL, hard links, query plans, the native module):
 * run on SQLite, skipped on PostgreSQL with the reason in the skipped test's name.
 */
export const sqliteOnly = {
  it(reason: string, name: string, fn: TestFunction, timeout?: number): void {
    if (onPostgres) it.skip(`${name} [SQLite only: ${reason}]`, fn, timeout);
    else it(name, fn, timeout);
  },
  describe(reason: string, name: string, fn: () => void): void {
    if (onPostgres) describe.skip(`${name} [SQLite only: ${reason}]`, fn);
    else describe(name, fn);
  },
};

function isOneStatement(conn: Database.Database, text: string): boolean {
  try {
    conn.prepare(text);
    return true;
  } catch (err) {
    if (err instanceof RangeError && /more than one statement/.test(err.message)) return false;
    throw err;
  }
}

/** `?` placeholders outside quotes and comments become `$1`, `$2`, ... */
export function toDollarParams(text: string): string {
  let out = '';
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      const stop = end < 0 ? text.length : end + 1;
      out += text.slice(i, stop);
      i = stop - 1;
    } else if (c === '-' && text[i + 1] === '-') {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? text.length : end;
      out += text.slice(i, stop);
      i = stop - 1;
    } else if (c === '?') {
      out += `$${++n}`;
    } else {
      out += c;
    }
  }
  return out;
}
