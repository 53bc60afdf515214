import type Database from 'better-sqlite3';
import { type Kysely, PostgresAdapter } from 'kysely';
import type { Clock } from './clock.ts';
import { DatabaseUnavailableError } from './errors.ts';
import { isPostgresUrl } from './location.ts';
import { openStore, type OpenStoreOptions } from './open.ts';
import type { StatementCache, Step } from './prepared.ts';

/**
 * The two engines behind one API. Packages call `openDatabase`, the transaction helpers
 * (`writeTransaction`, `writeNow`, ...), `migrate` and `waitForChange` on a `Store` and never look
 * at which engine it is; only the store's own modules do (transaction.ts, wait.ts, health.ts,
 * migrations.ts), and the PostgreSQL side lives in `pg/`, loaded only for a PostgreSQL URL.
 */
interface BaseStore {
  /** Where the data lives, as given: a file path, or a PostgreSQL URL with its password removed. */
  readonly path: string;
  /**
   * What to hand another process so it finds the same data: the file's absolute path, or the
   * URL without its password (credentials travel through PGPASSWORD or ~/.pgpass).
   */
  readonly location: string;
  /** Kysely over the store's connection(s). Packages narrow it to their own table types. */
  readonly db: Kysely<any>;
  /** How long a writer waits for the write lock before failing with DB_BUSY. */
  readonly busyTimeoutMs: number;
  /**
   * The clock leases are judged by unless a caller injects another: the system clock on SQLite
   * (one machine), the database server's clock on PostgreSQL (many machines, one judge).
   */
  readonly clock: Clock;
  close(): Promise<void>;
}

/** An open SQLite database file. */
export interface SqliteStore extends BaseStore {
  readonly kind: 'sqlite';
  /** The underlying better-sqlite3 connection (pragmas, `inTransaction`). */
  readonly sqlite: Database.Database;
  /** Statements prepared once on this connection, by SQL text. */
  readonly statements: StatementCache;
  /** `PRAGMA data_version`: changes whenever another connection commits. Costs microseconds. */
  dataVersion(): number;
}

/** What the PostgreSQL engine (pg/engine.ts) gives the store's shared modules. */
export interface PostgresEngine {
  /** The schema the tables live in. */
  readonly schema: string;
  write<T>(fn: (trx: Kysely<any>) => Promise<T>): Promise<T>;
  read<T>(fn: (trx: Kysely<any>) => Promise<T>): Promise<T>;
  /** Reads outside a transaction, tried again on a lost connection (see PgTransactions.plain). */
  plain<T>(fn: (db: Kysely<any>) => Promise<T>): Promise<T>;
  steps<T>(mode: 'read' | 'write' | 'claim', step: () => Step<T>): Promise<T>;
  /** A value that changes when something may have been committed (the server's next transaction id). */
  changeMark(): Promise<string>;
  /** How many NOTIFYs of commits this store has received (a hint, like SQLite's data_version). */
  notifications(): number;
  /** Resolves on the next NOTIFY of a commit in this schema (a hint; see wait.ts), or when `signal` aborts. */
  nextCommit(signal: AbortSignal): Promise<void>;
  /**
   * Whether the LISTEN connection is up: every commit in the schema then reaches nextCommit, and
   * when it comes back after a drop every waiter wakes once (commits in between notified nobody).
   */
  listening(): boolean;
  /** Creates the schema when it does not exist (init only). */
  ensureSchema(): Promise<void>;
}

/** An open PostgreSQL database (a schema on a server). */
export interface PostgresStore extends BaseStore {
  readonly kind: 'postgres';
  readonly pg: PostgresEngine;
}

/** An open database: a SQLite file or a PostgreSQL schema. */
export type Store = SqliteStore | PostgresStore;

export { absoluteLocation, isPostgresUrl, redactLocation, urlPassword } from './location.ts';

export interface OpenDatabaseOptions extends OpenStoreOptions {
  /** Connections a PostgreSQL store may hold at once: 1 for a CLI call, more for long-lived processes. */
  poolSize?: number;
  /**
   * PostgreSQL: how long an operation whose connection was lost (a server restart or crash, a
   * network drop) keeps trying on a new connection before it fails with exit 6. Default, and never
   * less than: the URL's connect timeout (5 s). Long-lived processes pass LONG_LIVED_RECONNECT_MS.
   */
  reconnectMs?: number;
}

/**
 * The reconnect window of long-lived processes (`orch wait`, `inbox wait`, `inbox work`): a server
 * restart on a loaded machine, or a managed server failing over, can take longer than the connect
 * timeout that bounds a one-shot call, and such a process has work in flight to go on with.
 */
export const LONG_LIVED_RECONNECT_MS = 60_000;

/**
 * Opens the database at `options.path`: a SQLite file, or for a `postgres://` URL the schema it
 * names on a PostgreSQL server (the driver is loaded only then, so SQLite calls never pay for it).
 *
 * @throws DatabaseUnavailableError (exit 6) when it cannot be opened (see openStore and pg/open.ts).
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Store> {
  if (!isPostgresUrl(options.path)) return openStore(options);
  const pg = await loadPostgres();
  return pg.openPostgresStore(options);
}

type PostgresModule = typeof import('./pg/open.ts');

/**
 * The PostgreSQL engine module. The bundled CLIs ship it (with the `pg` driver) as a separate file
 * beside themselves (scripts/build.mjs), so SQLite calls never parse it.
 */
async function loadPostgres(): Promise<PostgresModule> {
  try {
    return await import('./pg/open.ts');
  } catch (err) {
    throw new DatabaseUnavailableError(
      'DB_CANNOT_OPEN',
      `the PostgreSQL engine cannot load (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); copy the whole folder the executable came from`,
      { cause: err },
    );
  }
}

/**
 * A number that changes when another process may have committed: SQLite's `PRAGMA data_version`,
 * or on PostgreSQL the count of commit notifications received (a hint only: callers still look
 * again now and then, since a notification can be lost).
 */
export function commitMark(store: Store): number {
  return store.kind === 'sqlite' ? store.dataVersion() : store.pg.notifications();
}

/**
 * Whether `db` speaks PostgreSQL: for the few queries that must differ (a claim's FOR UPDATE SKIP
 * LOCKED), decided once where the query module builds its query.
 */
export function isPostgresDb(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/**
 * Whether `err` says the connection was lost while a write transaction was committing (PostgreSQL):
 * the change may or may not have been saved. A caller whose write is idempotent (a reconcile, which
 * folds from a cursor) may simply carry on and look again.
 */
export function commitOutcomeUnknown(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { commitUnknown?: unknown }).commitUnknown === true;
}
