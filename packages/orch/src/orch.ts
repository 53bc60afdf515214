import { attachInbox, existingThreadIds, initHint, requireThread, threadView, type InboxDatabase, type ThreadView } from '@orch/inbox';
import { AppError, assertSchemaCurrent, migrate, openDatabase, randomIds, type Clock, type IdGenerator, type Store } from '@orch/store';
import type { Kysely } from 'kysely';
import { orchMigrations } from './migrations.ts';
import type { OrchDatabase } from './schema.ts';

/** An open orchestration database: the store plus the injected clock and id generator. */
export interface Orch {
  readonly store: Store;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /** See CommandContext.signal: `wait` ends as at its timeout once it aborts. */
  readonly signal?: AbortSignal | undefined;
  /** See CommandContext.author: recorded as the author of what is written in the leader's name. */
  readonly author?: string | undefined;
  close(): Promise<void>;
}

/**
 * What in-transaction operations need besides the transaction; `author` (default `leader`) is who
 * the messages written in the leader's name are recorded as.
 */
export type OrchEnv = { clock: Clock; ids: IdGenerator; author?: string | undefined };

/** A transaction (or connection) over the orch tables. */
export type Tx = Kysely<OrchDatabase>;

/** The same transaction, typed for the inbox library's in-transaction functions. */
export function inboxTx(trx: Tx): Kysely<InboxDatabase> {
  return trx as unknown as Kysely<InboxDatabase>;
}

/** The thread's view, or null when it no longer exists (an attempt whose thread was deleted: damage doctor reports). */
export async function threadOrNull(trx: Tx, threadId: string, now: number): Promise<ThreadView | null> {
  if (!(await existingThreadIds(inboxTx(trx), [threadId])).has(threadId)) return null;
  return threadView(await requireThread(inboxTx(trx), threadId), now);
}

export interface OpenOrchOptions {
  path: string;
  clock?: Clock;
  ids?: IdGenerator;
  nativeBinding?: string;
  busyTimeoutMs?: number;
  /** PostgreSQL: connections the store may hold at once (default 1). */
  poolSize?: number;
  /** PostgreSQL: how long a lost connection is tried again (see OpenDatabaseOptions.reconnectMs). */
  reconnectMs?: number;
  /**
   * What to do when the database has no orch tables yet: create them (default), or throw
   * NoOrchTablesError without writing anything (the CLI does this for every command but
   * `run init`, so a refused command never changes the file).
   */
  createTables?: boolean;
  /** See Orch.signal. */
  signal?: AbortSignal | undefined;
  /** See Orch.author. */
  author?: string | undefined;
}

/** The database has no orch tables yet, so it has no runs. */
export class NoOrchTablesError extends Error {
  constructor(path: string) {
    super(`${path} has no runs yet (create one with \`orch run init\`)`);
  }
}

/**
 * Opens a database initialised with `inbox init` for orchestration. Creates the orch tables if
 * they are missing (unless `createTables` is false) and upgrades outdated ones, in one IMMEDIATE
 * transaction that is safe to race; otherwise only reads the schema version.
 *
 * @throws DatabaseUnavailableError (exit 6) when the file is missing, not initialised with
 *   `inbox init`, or newer than this code; NoOrchTablesError when tables are missing and
 *   `createTables` is false.
 */
export async function openOrch(options: OpenOrchOptions): Promise<Orch> {
  const store = await openDatabase({
    path: options.path,
    create: false,
    initHint: initHint(options.path),
    ...(options.nativeBinding ? { nativeBinding: options.nativeBinding } : {}),
    ...(options.busyTimeoutMs ? { busyTimeoutMs: options.busyTimeoutMs } : {}),
    ...(options.poolSize ? { poolSize: options.poolSize } : {}),
    ...(options.reconnectMs ? { reconnectMs: options.reconnectMs } : {}),
  });
  try {
    return await attachOrch(store, options);
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * openOrch on a store that is already open (a server's shared one): checks and creates the orch
 * tables as openOrch does. The Orch's `close` closes the store: a caller sharing it does not call it.
 *
 * @throws as openOrch, without closing the store.
 */
export async function attachOrch(
  store: Store,
  options: Omit<OpenOrchOptions, 'path' | 'nativeBinding' | 'busyTimeoutMs' | 'poolSize' | 'reconnectMs'>,
): Promise<Orch> {
  const clock = options.clock ?? store.clock;
  await attachInbox(store, { clock });
  await ensureOrchSchema(store, clock, options.createTables ?? true);
  return {
    store,
    clock,
    ids: options.ids ?? randomIds,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.author !== undefined ? { author: options.author } : {}),
    close: () => store.close(),
  };
}

async function ensureOrchSchema(store: Store, clock: Clock, create: boolean): Promise<void> {
  try {
    await assertSchemaCurrent(store, orchMigrations, initHint(store.path));
  } catch (err) {
    if (err instanceof AppError && err.code === 'DB_NOT_INITIALISED' && !create) throw new NoOrchTablesError(store.path);
    if (err instanceof AppError && (err.code === 'DB_NOT_INITIALISED' || err.code === 'DB_OUTDATED')) {
      await migrate(store, orchMigrations, clock);
      return;
    }
    throw err;
  }
}
