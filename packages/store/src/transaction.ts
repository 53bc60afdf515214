import { AsyncLocalStorage } from 'node:async_hooks';
import { sql, type Kysely } from 'kysely';
import { AppError, ExitCode, mapSqliteError } from './errors.ts';
import type { Store } from './open.ts';

/**
 * Runs `fn` inside one `BEGIN IMMEDIATE` transaction: the write lock is taken up front (waiting up
 * to the busy timeout), so concurrent writers queue instead of failing with SQLITE_BUSY on upgrade
 * as Kysely's own `transaction()` (a plain `BEGIN`) would. Commits when `fn` resolves, rolls back
 * when it throws. This is the only way anything writes.
 *
 * `fn` must use the `trx` it is given (never `store.db`, which would wait for itself) and must not
 * await anything but the database: no git, subprocess, network or timers inside.
 *
 * @throws DatabaseUnavailableError (DB_BUSY, exit 6) when the lock stays taken past the busy timeout;
 *   whatever `fn` throws, after rolling back.
 */
export async function writeTransaction<DB, T>(store: Store, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
  return runTransaction(store, sql`begin immediate`, fn);
}

/**
 * Runs `fn` inside one read transaction (`BEGIN DEFERRED`), so several reads see one snapshot.
 * `fn` must not write.
 */
export async function readTransaction<DB, T>(store: Store, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
  return runTransaction(store, sql`begin deferred`, fn);
}

// Which store's transaction the current async context is inside: a call from within one is a real
// nesting (it would wait for itself), while a concurrent caller simply queues for the connection.
const insideTransaction = new AsyncLocalStorage<Store>();

async function runTransaction<DB, T>(
  store: Store,
  begin: ReturnType<typeof sql>,
  fn: (trx: Kysely<DB>) => Promise<T>,
): Promise<T> {
  if (insideTransaction.getStore() === store) {
    throw new AppError('INTERNAL', ExitCode.internal, 'internal error (this is a bug): nested transaction');
  }
  return store.db.connection().execute((conn) => insideTransaction.run(store, async () => {
    try {
      await begin.execute(conn);
    } catch (err) {
      throw mapSqliteError(err);
    }
    try {
      const result = await fn(conn as Kysely<DB>);
      await sql`commit`.execute(conn);
      return result;
    } catch (err) {
      if (store.sqlite.inTransaction) await sql`rollback`.execute(conn);
      throw mapSqliteError(err);
    }
  }));
}
