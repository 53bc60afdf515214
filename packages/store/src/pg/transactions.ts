import { AsyncLocalStorage } from 'node:async_hooks';
import { CompiledQuery, type Kysely } from 'kysely';
import { AppError, DatabaseUnavailableError, ExitCode } from '../errors.ts';
import type { Step } from '../prepared.ts';
import { MAX_BUSY_WAIT_FACTOR } from '../transaction.ts';
import type { ServerClock } from './clock.ts';
import { isStalePlan, mapPgError } from './errors.ts';
import { quoteIdent } from './url.ts';

export interface PgTransactionsOptions {
  db: Kysely<any>;
  clock: ServerClock;
  /** The advisory lock every writer of this schema takes: (app, schema). */
  keys: { app: number; schema: number };
  /** The NOTIFY channel of this schema. */
  channel: string;
  busyTimeoutMs: number;
  /** For messages. */
  server: string;
  /**
   * How long a transaction (or a change-mark read) whose connection was lost is tried again on a new
   * one: the connect timeout, or longer for long-lived processes (OpenDatabaseOptions.reconnectMs).
   */
  reconnectMs: number;
  /** The pool's size (connections). */
  poolSize: number;
}

/**
 * A read; a write, alone among writers; a claim, beside other claims (see writeClaim); plain reads
 * outside a transaction (each statement its own snapshot).
 */
type Mode = 'read' | 'write' | 'claim' | 'plain';

/** How often a transaction the server aborted as a deadlock or serialization failure is run again. */
const MAX_RETRIES = 3;
const RETRYABLE = new Set(['40001', '40P01']);
/** Between tries of an operation whose connection was lost. */
const RECONNECT_PAUSE_MS = 200;

/**
 * Transactions on PostgreSQL, with the same guarantees as SQLite's `BEGIN IMMEDIATE`:
 *
 * - A write transaction runs at READ COMMITTED and first takes one transaction-scoped advisory lock
 *   per schema, so writers of one project run one at a time, as on SQLite: every check-then-write
 *   the packages make (a lease, a task's state, the next event number of a run) holds without
 *   relying on SERIALIZABLE retries. The wait for the lock is bounded by the busy timeout
 *   (`lock_timeout`), counted again while other writers of the schema keep taking their turns (as on
 *   SQLite, DB_BUSY, exit 6, means one writer held the lock that long: see lockHolders), up to
 *   MAX_BUSY_WAIT_FACTOR timeouts in all. A claim (writeClaim) holds the lock shared: claims run
 *   side by side, each picking its row with `FOR UPDATE SKIP LOCKED` and re-checking it in its
 *   UPDATE, and never beside any other writer. Deadlocks and serialization failures (40P01, 40001) are retried a
 *   bounded number of times: a transaction function does database work only, so running it again is safe.
 * - BEGIN, the lock, and reading the server's clock (leases are judged by it) are one round trip;
 *   so are the NOTIFY that wakes waiters (sent only when the transaction wrote something) and COMMIT.
 * - A read transaction is REPEATABLE READ, READ ONLY: one snapshot, like SQLite's.
 */
export class PgTransactions {
  readonly #inside = new AsyncLocalStorage<true>();
  readonly #begin: string;
  readonly #beginClaim: string;
  readonly #commit: string;

  constructor(private readonly o: PgTransactionsOptions) {
    this.#begin =
      `begin; set local lock_timeout = '${Math.max(1, Math.trunc(o.busyTimeoutMs))}ms'; ` +
      `select pg_advisory_xact_lock(${o.keys.app}, ${o.keys.schema}); ` +
      'select (extract(epoch from clock_timestamp()) * 1000)::float8 as now';
    this.#beginClaim = this.#begin.replace('pg_advisory_xact_lock(', 'pg_advisory_xact_lock_shared(');
    this.#commit = `select pg_notify('${o.channel}', '') where txid_current_if_assigned() is not null; commit`;
  }

  write<T>(fn: (trx: Kysely<any>) => Promise<T>): Promise<T> {
    return this.run('write', fn);
  }

  read<T>(fn: (trx: Kysely<any>) => Promise<T>): Promise<T> {
    return this.run('read', fn);
  }

  /**
   * Reads that need no common snapshot (the schema check at open), with no BEGIN or COMMIT around
   * them: tried again on a lost connection and their errors mapped, like a transaction's.
   */
  plain<T>(fn: (db: Kysely<any>) => Promise<T>): Promise<T> {
    return this.run('plain', fn);
  }

  /** Drives a step routine (see Step), awaiting each of its queries, inside one transaction. */
  steps<T>(mode: 'read' | 'write' | 'claim', step: () => Step<T>): Promise<T> {
    return this.run(mode, async (trx) => {
      const routine = step();
      let next = routine.next();
      while (!next.done) {
        const op = next.value;
        let value: unknown;
        try {
          value = await op.query.runAsync(trx, op.method, op.params);
        } catch (err) {
          next = routine.throw(err);
          continue;
        }
        next = routine.next(value);
      }
      return next.value;
    });
  }

  /**
   * The server's next transaction id: it moves whenever anything on the server may have committed.
   * A lost connection is tried again like a transaction's (a waiter must outlive a server restart).
   */
  async changeMark(): Promise<string> {
    let lostSince: number | undefined;
    for (;;) {
      try {
        const r = await this.o.db.executeQuery<{ mark: string }>(CompiledQuery.raw('select txid_snapshot_xmax(txid_current_snapshot())::text as mark'));
        return r.rows[0]?.mark ?? '';
      } catch (err) {
        lostSince ??= performance.now();
        if (!(await this.reconnecting(err, lostSince))) throw mapPgError(err, this.o.server);
      }
    }
  }

  /**
   * Who holds this schema's writers' lock now: their transactions, by virtual transaction id. The
   * same ones at two timeouts in a row held it for a whole timeout (a transaction's start would not
   * tell: it includes its own wait in the queue). Only this schema's writers count, unlike the
   * server-wide changeMark: a busy neighbour on the server does not keep a writer waiting behind a
   * stuck one.
   */
  private async lockHolders(): Promise<string> {
    const r = await this.o.db.executeQuery<{ holders: string }>(
      CompiledQuery.raw(
        `select coalesce(string_agg(l.virtualtransaction, ',' order by l.virtualtransaction), '') as holders
         from pg_catalog.pg_locks l
         where l.locktype = 'advisory' and l.granted and l.objsubid = 2 and l.classid::int8 = $1::int8 and l.objid::int8 = $2::int8`,
        [this.o.keys.app >>> 0, this.o.keys.schema >>> 0],
      ),
    );
    return r.rows[0]?.holders ?? '';
  }

  /**
   * Whether an operation that failed with `err`, first at `lostSince`, should run again: when the
   * connection was lost (or none could be had) and the reconnect window since then is not over.
   * Waits a moment first, so a server that is restarting is not hammered.
   */
  private async reconnecting(err: unknown, lostSince: number): Promise<boolean> {
    if (!isConnectionLoss(err) || (err as { duringCommit?: boolean }).duringCommit) return false;
    if (performance.now() - lostSince >= this.o.reconnectMs) return false;
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_PAUSE_MS));
    return true;
  }

  /**
   * Checks the connection and reads the server's clock (at open), and in the same round trip whether
   * the login may use `schema`: without USAGE the server hides the schema (current_schema() skips
   * it, the catalog views show nothing), which would otherwise read as "not initialised".
   *
   * @throws DatabaseUnavailableError DB_PERMISSION when the schema exists and the role may not use it.
   */
  async probe(schema: string): Promise<{ schemaExists: boolean }> {
    const sentAt = performance.now();
    const r = await this.o.db.executeQuery<{ now: number; usable: boolean | null }>(
      CompiledQuery.raw(
        `select (extract(epoch from clock_timestamp()) * 1000)::float8 as now,
          (select has_schema_privilege(oid, 'USAGE') from pg_catalog.pg_namespace where nspname = $1) as usable`,
        [schema],
      ),
    );
    this.o.clock.observe(Number(r.rows[0]?.now), sentAt, performance.now());
    if (r.rows[0]?.usable === false) {
      throw new DatabaseUnavailableError(
        'DB_PERMISSION',
        `permission denied on ${this.o.server}: this login may not use schema ${quoteIdent(schema)} (it needs USAGE on it; GRANT USAGE, SELECT, INSERT, UPDATE, DELETE to it)`,
      );
    }
    return { schemaExists: r.rows[0]?.usable === true };
  }

  /** Creates `schema` when missing, under the writers' lock (concurrent `create schema if not exists` can collide). */
  async ensureSchema(schema: string): Promise<void> {
    await this.o.db.connection().execute(async (conn) => {
      try {
        await conn.executeQuery(
          CompiledQuery.raw(
            // Only when missing: creating needs a right on the database that users of an existing schema may lack.
            `begin; select pg_advisory_xact_lock(${this.o.keys.app}, ${this.o.keys.schema}); ` +
              `do $$ begin if not exists (select 1 from pg_namespace where nspname = '${schema}') then create schema ${quoteIdent(schema)}; end if; end $$; commit`,
          ),
        );
      } catch (err) {
        await conn.executeQuery(CompiledQuery.raw('rollback')).catch(() => undefined);
        throw mapPgError(err, this.o.server);
      }
    });
  }

  private async run<T>(mode: Mode, fn: (trx: Kysely<any>) => Promise<T>): Promise<T> {
    if (this.#inside.getStore()) throw new AppError('INTERNAL', ExitCode.internal, 'internal error (this is a bug): nested transaction');
    let lostSince: number | undefined;
    // As on SQLite, DB_BUSY means one writer held the lock past the busy timeout, not that many
    // writers took turns: a wait that timed out while others kept committing waits again, for
    // at most MAX_BUSY_WAIT_FACTOR timeouts in all.
    const waitStart = performance.now();
    let mark: string | undefined;
    let retries = 0;
    let stalePlans = 0;
    for (;;) {
      try {
        return await this.once(mode, fn);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'string' && RETRYABLE.has(code) && retries++ < MAX_RETRIES) continue;
        // Each stale plan closes its connection (see lastResultPool): at most one per pooled connection.
        if (isStalePlan(err) && stalePlans++ <= this.o.poolSize) continue;
        if (code === '55P03' && performance.now() - waitStart < MAX_BUSY_WAIT_FACTOR * this.o.busyTimeoutMs) {
          // Wait again unless the same transactions held the lock at this timeout and the last one
          // (nobody holding it now: it was just let go).
          const now = await this.lockHolders().catch(() => undefined);
          const moved = now !== undefined && (now === '' || now !== mark);
          mark = now;
          if (moved) continue;
        }
        // The server went away (a restart, a dropped connection) before this transaction committed:
        // nothing of it took effect, so it runs again on a new connection, for up to the reconnect
        // window. A connection lost during COMMIT is not retried: whether it committed is unknown.
        if (isConnectionLoss(err)) {
          lostSince ??= performance.now();
          if (await this.reconnecting(err, lostSince)) continue;
        }
        const mapped = mapPgError(err, this.o.server);
        if ((err as { duringCommit?: boolean }).duringCommit && mapped instanceof AppError) {
          mapped.message = `${mapped.message} (the connection was lost while committing: the change may or may not have been saved; check before repeating it)`;
          Object.assign(mapped, { commitUnknown: true });
        }
        throw mapped;
      }
    }
  }

  private once<T>(mode: Mode, fn: (trx: Kysely<any>) => Promise<T>): Promise<T> {
    return this.o.db.connection().execute((conn) =>
      this.#inside.run(true, async () => {
        let open = false;
        try {
          if (mode === 'plain') return await fn(conn);
          if (mode !== 'read') {
            const sentAt = performance.now();
            open = true;
            const r = await conn.executeQuery<{ now: number }>(CompiledQuery.raw(mode === 'claim' ? this.#beginClaim : this.#begin));
            this.o.clock.observe(Number(r.rows[0]?.now), sentAt, performance.now());
          } else {
            open = true;
            await conn.executeQuery(CompiledQuery.raw('begin isolation level repeatable read read only'));
          }
          const result = await fn(conn);
          open = false;
          try {
            await conn.executeQuery(CompiledQuery.raw(mode === 'read' ? 'commit' : this.#commit));
          } catch (err) {
            if (mode !== 'read' && isConnectionLoss(err)) Object.assign(err as object, { duringCommit: true });
            await conn.executeQuery(CompiledQuery.raw('rollback')).catch(() => undefined);
            throw err;
          }
          return result;
        } catch (err) {
          if (open) await conn.executeQuery(CompiledQuery.raw('rollback')).catch(() => undefined);
          throw err;
        }
      }),
    );
  }
}

/** Whether `err` means the connection to the server is gone (a restart, a network drop). */
export function isConnectionLoss(err: unknown): boolean {
  if (!(err instanceof Error) || err instanceof AppError) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03')) return true;
  if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT)$/.test(code)) return true;
  // The last one: the pool had no free connection within the connect timeout (its connections were
  // all busy reconnecting); nothing ran.
  return /Connection terminated|connection timeout|timeout expired|Client has encountered a connection error|not queryable|timeout exceeded when trying to connect/i.test(
    err.message,
  );
}
