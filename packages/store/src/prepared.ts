import type Database from 'better-sqlite3';
import { CompiledQuery, type Compilable, type Kysely } from 'kysely';

/**
 * Statements prepared once per connection, by SQL text. Preparing costs about as much as running
 * a small statement, and Kysely's SQLite driver prepares every query it runs, so the store hands
 * Kysely a connection whose `prepare` answers from this cache. Bounded: a query whose text varies
 * (an `in` list of varying length) cannot grow it without limit.
 */
export class StatementCache {
  readonly #statements = new Map<string, Database.Statement>();

  constructor(
    private readonly sqlite: Database.Database,
    private readonly limit = 256,
  ) {}

  prepare(text: string): Database.Statement {
    let stmt = this.#statements.get(text);
    if (stmt !== undefined) {
      // Most recently used last, so the oldest entry is the first one evicted.
      this.#statements.delete(text);
    } else {
      stmt = this.sqlite.prepare(text);
      if (this.#statements.size >= this.limit) this.#statements.delete(this.#statements.keys().next().value as string);
    }
    this.#statements.set(text, stmt);
    return stmt;
  }
}

/** What a prepared query runs on: an open SQLite store (its Kysely handle compiles, its connection runs). */
export interface QueryTarget {
  readonly db: Kysely<any>;
  readonly sqlite: Database.Database;
  readonly statements: StatementCache;
}

/**
 * One database operation of a step function (see `Step`): a prepared query, how to run it, and its
 * parameter values. The transaction helper that drives the step runs it on its engine.
 */
export interface StepOp {
  readonly query: PreparedQuery<any, any>;
  readonly method: 'all' | 'first' | 'run';
  readonly params: Record<string, unknown>;
}

/**
 * A database routine written once for both engines: a generator that yields its queries
 * (`yield* q.rows(params)`) and returns its result. `writeNow`/`readNow` drive it: on SQLite
 * synchronously, each query on the spot (the hot path stays free of async hops); on PostgreSQL
 * each query is awaited. Between its queries a step may compute but never await anything else.
 */
export type Step<T> = Generator<StepOp, T, unknown>;

const SLOT = '\u0000slot:';

/**
 * The SQL texts of every PreparedQuery compiled so far, each with a number: the hot paths. Bounded
 * (prepared queries are module constants, one text per dialect). The PostgreSQL engine runs these
 * as named prepared statements, parsed and planned once per connection (see pg/open.ts).
 */
export const preparedTexts = new Map<string, number>();

interface Compiled {
  sql: string;
  /** For each parameter: the name of the value to bind, or null for a constant of the query. */
  slots: (string | null)[];
  constants: unknown[];
}

function bind(compiled: Compiled, params: Record<string, unknown>): unknown[] {
  const { slots, constants } = compiled;
  const args = new Array<unknown>(slots.length);
  for (let i = 0; i < slots.length; i++) {
    const name = slots[i];
    args[i] = name === null || name === undefined ? constants[i] : params[name];
  }
  return args;
}

/**
 * A Kysely query compiled once and run many times with new parameter values, synchronously, through
 * a cached prepared statement: no query building, compiling or preparing per call. The query is
 * still written with Kysely in a query module (so it compiles for whichever dialect the store
 * uses); `build` receives stand-ins for the named parameters (`p.agent`, ...) and uses them where
 * values go. Only values may be parameters: not identifiers, not `in` lists, not values that
 * change the shape of the query (build one prepared query per shape instead).
 *
 * `all`/`first`/`run` run synchronously on the store's connection as it is: call them inside
 * `writeNow`/`readNow` (or for a single read). `execute` runs the same compiled query through a
 * Kysely handle (a transaction's `trx`, say), like any Kysely query.
 */
export class PreparedQuery<P extends Record<string, unknown>, R> {
  // Compiled once per dialect (a process may hold a SQLite and a PostgreSQL store: `inbox copy`).
  readonly #compiled = new WeakMap<object, Compiled>();

  constructor(private readonly build: (db: Kysely<any>, p: P) => Compilable<R>) {}

  /** Every row (a step of a writeNow/readNow routine). */
  *rows(params: P): Step<R[]> {
    return (yield { query: this, method: 'all', params }) as R[];
  }

  /** The first row, or undefined (a step). */
  *row(params: P): Step<R | undefined> {
    return (yield { query: this, method: 'first', params }) as R | undefined;
  }

  /** Runs a statement that returns no rows (a step): the number of rows it changed. */
  *exec(params: P): Step<number> {
    return (yield { query: this, method: 'run', params }) as number;
  }

  /** Runs `method` synchronously on a SQLite connection through its cached prepared statement. */
  runOn(target: QueryTarget, method: StepOp['method'], params: P): unknown {
    const compiled = this.compiled(target.db);
    const stmt = target.statements.prepare(compiled.sql);
    const args = bind(compiled, params);
    if (method === 'run') return stmt.run(args).changes;
    if (method === 'all') return stmt.all(args);
    // A write with RETURNING must run to completion: `all`, not `get`.
    return stmt.readonly ? stmt.get(args) : stmt.all(args)[0];
  }

  /** Runs `method` through Kysely (a transaction's handle on PostgreSQL): what runOn returns. */
  async runAsync(db: Kysely<any>, method: StepOp['method'], params: P): Promise<unknown> {
    const compiled = this.compiled(db);
    const result = await db.executeQuery<R>(CompiledQuery.raw(compiled.sql, bind(compiled, params)));
    if (method === 'run') return Number(result.numAffectedRows ?? 0n);
    return method === 'all' ? result.rows : result.rows[0];
  }

  /** Runs through Kysely (inside an async transaction, say): the rows. */
  async execute(db: Kysely<any>, params: P): Promise<R[]> {
    const compiled = this.compiled(db);
    const result = await db.executeQuery<R>(CompiledQuery.raw(compiled.sql, bind(compiled, params)));
    return result.rows;
  }

  /** The SQL text and parameters this query compiles to (for EXPLAIN QUERY PLAN checks). */
  compile(db: Kysely<any>, params: P): { sql: string; parameters: unknown[] } {
    const compiled = this.compiled(db);
    return { sql: compiled.sql, parameters: bind(compiled, params) };
  }

  private compiled(db: Kysely<any>): Compiled {
    const key = db.getExecutor().adapter.constructor;
    const known = this.#compiled.get(key);
    if (known !== undefined) return known;
    const standIns = new Proxy({} as P, { get: (_, name) => `${SLOT}${String(name)}` });
    const { sql, parameters } = this.build(db, standIns).compile();
    if (sql.includes(SLOT)) throw new Error(`prepared query: a parameter was inlined into the SQL text: ${sql}`);
    const slots = parameters.map((v) => (typeof v === 'string' && v.startsWith(SLOT) ? v.slice(SLOT.length) : null));
    const compiled = { sql, slots, constants: [...parameters] };
    if (!preparedTexts.has(sql)) preparedTexts.set(sql, preparedTexts.size);
    this.#compiled.set(key, compiled);
    return compiled;
  }
}

/** Defines a prepared query; see PreparedQuery. */
export function preparedQuery<DB, P extends Record<string, unknown>, R>(build: (db: Kysely<DB>, p: P) => Compilable<R>): PreparedQuery<P, R> {
  return new PreparedQuery<P, R>(build as (db: Kysely<any>, p: P) => Compilable<R>);
}
