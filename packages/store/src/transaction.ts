import { AsyncLocalStorage } from 'node:async_hooks';
import type Database from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { AppError, DatabaseUnavailableError, ExitCode, mapSqliteError } from './errors.ts';
import type { SqliteStore, Store } from './engine.ts';
import type { Step } from './prepared.ts';

/**
 * Runs `fn` inside one `BEGIN IMMEDIATE` transaction: the write lock is taken up front (waiting up
 * to the busy timeout), so concurrent writers queue instead of failing with SQLITE_BUSY on upgrade
 * as Kysely's own `transaction()` (a plain `BEGIN`) would. Commits when `fn` resolves, rolls back
 * when it throws. This (or `writeNow`, its synchronous form) is the only way anything writes.
 *
 * `fn` must use the `trx` it is given (never `store.db`, which would wait for itself) and must not
 * await anything but the database: no git, subprocess, network or timers inside.
 *
 * @throws DatabaseUnavailableError (DB_BUSY, exit 6) when another writer holds the lock past the busy
 *   timeout without committing (see beginWrite); whatever `fn` throws, after rolling back.
 */
export function writeTransaction<DB, T>(store: Store, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
  if (store.kind === 'postgres') return store.pg.write(fn as (trx: Kysely<any>) => Promise<T>);
  return runTransaction(store, 'write', fn);
}

/**
 * Runs `fn` inside one read transaction (`BEGIN DEFERRED`), so several reads see one snapshot.
 * `fn` must not write.
 */
export function readTransaction<DB, T>(store: Store, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
  if (store.kind === 'postgres') return store.pg.read(fn as (trx: Kysely<any>) => Promise<T>);
  return runTransaction(store, 'read', fn);
}

/**
 * `writeTransaction` for hot paths: `step` is a routine of prepared queries (see Step) run inside
 * the same kind of write transaction. On SQLite it runs synchronously and at once when the
 * connection is idle (no async hop, no Kysely query building); when another transaction of this
 * process holds the connection it queues behind it like `writeTransaction`. On PostgreSQL each of
 * its queries is awaited in turn.
 *
 * @throws as writeTransaction.
 */
export function writeNow<T>(store: Store, step: () => Step<T>): Promise<T> {
  if (store.kind === 'postgres') return store.pg.steps('write', step);
  return runNow(store, 'write', step);
}

/**
 * `writeNow` for a claim: a routine whose only write is one UPDATE of a row it picks with `FOR UPDATE
 * SKIP LOCKED` and re-checks in its WHERE, so it is correct beside other claims on its own. On
 * PostgreSQL claims therefore run side by side (each holds the writers' lock shared) while every
 * other writer still runs alone (it holds it exclusively). On SQLite it is writeNow.
 */
export function writeClaim<T>(store: Store, step: () => Step<T>): Promise<T> {
  if (store.kind === 'postgres') return store.pg.steps('claim', step);
  return runNow(store, 'write', step);
}

/** `readTransaction` for a routine of prepared reads (one snapshot); see writeNow. */
export function readNow<T>(store: Store, step: () => Step<T>): Promise<T> {
  if (store.kind === 'postgres') return store.pg.steps('read', step);
  return runNow(store, 'read', step);
}

/** Drives a step routine synchronously on a SQLite connection: each query runs on the spot. */
export function runStepsOn<T>(store: SqliteStore, step: () => Step<T>): T {
  const routine = step();
  let next = routine.next();
  while (!next.done) {
    const op = next.value;
    let value: unknown;
    try {
      value = op.query.runOn(store, op.method, op.params);
    } catch (err) {
      next = routine.throw(err);
      continue;
    }
    next = routine.next(value);
  }
  return next.value;
}

type Mode = 'read' | 'write';

interface Control {
  begin: Record<Mode, Database.Statement>;
  commit: Database.Statement;
  rollback: Database.Statement;
  /** True while a synchronous transaction's `fn` runs (a call from inside it is a nesting). */
  inSyncFn: boolean;
}

const controls = new WeakMap<SqliteStore, Control>();

function control(store: SqliteStore): Control {
  let c = controls.get(store);
  if (c === undefined) {
    c = {
      begin: { write: store.sqlite.prepare('begin immediate'), read: store.sqlite.prepare('begin deferred') },
      commit: store.sqlite.prepare('commit'),
      rollback: store.sqlite.prepare('rollback'),
      inSyncFn: false,
    };
    controls.set(store, c);
  }
  return c;
}

// Which store's transaction the current async context is inside: a call from within one is a real
// nesting (it would wait for itself), while a concurrent caller simply queues for the connection.
const insideTransaction = new AsyncLocalStorage<SqliteStore>();

function assertNotNested(store: SqliteStore, c: Control): void {
  if (c.inSyncFn || insideTransaction.getStore() === store) {
    throw new AppError('INTERNAL', ExitCode.internal, 'internal error (this is a bug): nested transaction');
  }
}

/** BEGIN; for a write, waits for the lock (see beginWrite); on failure the mapped error. */
function begin(store: SqliteStore, c: Control, mode: Mode): void {
  try {
    if (mode === 'write') beginWrite(store, c);
    else c.begin.read.run();
  } catch (err) {
    throw mapSqliteError(err);
  }
}

/** The whole wait, however many writers keep committing, is bounded by this many busy timeouts. */
export const MAX_BUSY_WAIT_FACTOR = 10;
const pause = new Int32Array(new SharedArrayBuffer(4));

/** `PRAGMA data_version`, or `previous` when even that read is refused for the moment. */
function commitCount(store: SqliteStore, previous: number): number {
  try {
    return store.dataVersion();
  } catch {
    return previous;
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/**
 * `BEGIN IMMEDIATE`, waiting for another writer's lock. SQLite's own busy handler backs off to one
 * try per 100 ms, so under many writers a waiter keeps missing the short moments the lock is free
 * and fails although no transaction held it long (waiters starve). Instead each try lets SQLite's
 * handler wait only a short while (the connection's busy_timeout, TRY_BUSY_MS), then pauses a
 * random 1 to 8 ms and tries again. The deadline is the busy timeout counted from the last commit
 * of another writer (`PRAGMA data_version` moves): so DB_BUSY means one lock was held past the
 * timeout, not that the waiter was unlucky. Bounded overall by MAX_BUSY_WAIT_FACTOR timeouts.
 * Monotonic time; the pauses block like SQLite's own do.
 */
function beginWrite(store: SqliteStore, c: Control): void {
  try {
    c.begin.write.run();
    return;
  } catch (err) {
    if (!isBusy(err)) throw err;
  }
  // Counted from the end of the first try (at most TRY_BUSY_MS late): the hot path reads no clock.
  const start = performance.now();
  const cap = start + MAX_BUSY_WAIT_FACTOR * store.busyTimeoutMs;
  let deadline = Math.min(cap, start + store.busyTimeoutMs);
  let version = commitCount(store, 0);
  for (;;) {
    Atomics.wait(pause, 0, 0, 1 + Math.random() * 7);
    try {
      c.begin.write.run();
      return;
    } catch (err) {
      if (!isBusy(err)) throw err;
      const now = performance.now();
      const current = commitCount(store, version);
      if (current !== version) {
        version = current;
        deadline = Math.min(cap, now + store.busyTimeoutMs);
      }
      if (now >= deadline) {
        const waited = Math.round(now - start);
        throw new DatabaseUnavailableError(
          'DB_BUSY',
          now >= cap
            ? `database is busy: other writers kept the write lock for ${waited} ms in all (the limit); try again`
            : `database is busy: another writer held the write lock for more than the busy timeout (${store.busyTimeoutMs} ms) without committing; try again`,
          { cause: err, details: { waited_ms: waited, busy_timeout_ms: store.busyTimeoutMs } },
        );
      }
    }
  }
}

function rollbackAfter(store: SqliteStore, c: Control, err: unknown): unknown {
  if (store.sqlite.inTransaction) c.rollback.run();
  return mapSqliteError(err);
}

function runTransaction<DB, T>(store: SqliteStore, mode: Mode, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
  const c = control(store);
  // Called from a synchronous transaction's function: thrown at once, so the error escapes it.
  if (c.inSyncFn) assertNotNested(store, c);
  try {
    assertNotNested(store, c);
  } catch (err) {
    return Promise.reject(err);
  }
  // Holding Kysely's connection keeps this process's other queries out until the transaction ends.
  return store.db.connection().execute((conn) =>
    insideTransaction.run(store, async () => {
      begin(store, c, mode);
      try {
        const result = await fn(conn as Kysely<DB>);
        c.commit.run();
        return result;
      } catch (err) {
        throw rollbackAfter(store, c, err);
      }
    }),
  );
}

function runNow<T>(store: SqliteStore, mode: Mode, fn: () => Step<T>): Promise<T> {
  const c = control(store);
  // A nesting is a bug in the caller: thrown at once, so it escapes the outer function too.
  assertNotNested(store, c);
  try {
    // Idle connection: run now. Another transaction of this process is open (its fn is awaiting
    // the database): wait for the connection like any Kysely query, then run.
    if (!store.sqlite.inTransaction) return Promise.resolve(runSync(store, c, mode, fn));
  } catch (err) {
    return Promise.reject(err);
  }
  return store.db.connection().execute(async () => runSync(store, c, mode, fn));
}

function runSync<T>(store: SqliteStore, c: Control, mode: Mode, fn: () => Step<T>): T {
  begin(store, c, mode);
  c.inSyncFn = true;
  try {
    const result = runStepsOn(store, fn);
    c.commit.run();
    return result;
  } catch (err) {
    throw rollbackAfter(store, c, err);
  } finally {
    c.inSyncFn = false;
  }
}
