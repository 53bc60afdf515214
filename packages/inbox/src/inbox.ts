import {
  assertSchemaCurrent,
  ensureWal,
  migrate,
  openDatabase,
  redactLocation,
  randomIds,
  schemaVersions,
  shellWord,
  type Clock,
  type IdGenerator,
  type OpenDatabaseOptions,
  type Store,
} from '@orch/store';
import { inboxMigrations } from './migrations.ts';

/** An open inbox: the store plus the injected clock and id generator every operation uses. */
export interface Inbox {
  readonly store: Store;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /**
   * The one agent this inbox may act as (see CommandContext.actingAgent): claim, show, heartbeat,
   * progress, ask, result, fail, release, wait, send and reply refuse another agent's thread
   * (FORBIDDEN), and list shows its threads only.
   */
  readonly actingAgent?: string | undefined;
  /** See CommandContext.signal: waits end as at their timeout once it aborts. */
  readonly signal?: AbortSignal | undefined;
  close(): Promise<void>;
}

export interface OpenInboxOptions {
  path: string;
  clock?: Clock;
  ids?: IdGenerator;
  nativeBinding?: string;
  busyTimeoutMs?: number;
  /** PostgreSQL: connections the store may hold at once (default 1; long-lived processes use more). */
  poolSize?: number;
  /** PostgreSQL: how long a lost connection is tried again (see OpenDatabaseOptions.reconnectMs). */
  reconnectMs?: number;
  /** See Inbox.actingAgent. */
  actingAgent?: string | undefined;
  /** See Inbox.signal. */
  signal?: AbortSignal | undefined;
}

export interface InitResult {
  path: string;
  /** Schema version of every package recorded in the file, e.g. `{ "inbox": 1 }`. */
  schema_version: Record<string, number>;
  /** Migration steps this call applied (empty when the database was already current). */
  applied: { package: string; version: number; name: string }[];
}

/** The command that initialises `path`, as quoted in error messages (ready to paste: a URL's `?` and `&` quoted). */
export function initHint(path: string): string {
  return `inbox --db ${shellWord(redactLocation(path))} init`;
}

/**
 * Opens an initialised database for inbox work. Makes no write.
 *
 * @throws DatabaseUnavailableError (exit 6) when the file is missing, not SQLite, not initialised,
 *   older than this code (run init), or newer than this code.
 */
export async function openInbox(options: OpenInboxOptions): Promise<Inbox> {
  const store = await openDatabase(storeOptions(options, false));
  try {
    return await attachInbox(store, options);
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** Uses an already open store as an inbox (for packages that share one connection, like orch). */
export async function attachInbox(
  store: Store,
  options: { clock?: Clock | undefined; ids?: IdGenerator; actingAgent?: string | undefined; signal?: AbortSignal | undefined } = {},
): Promise<Inbox> {
  await assertSchemaCurrent(store, inboxMigrations, initHint(store.path));
  return {
    store,
    clock: options.clock ?? store.clock,
    ids: options.ids ?? randomIds,
    ...(options.actingAgent !== undefined ? { actingAgent: options.actingAgent } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    close: () => store.close(),
  };
}

/**
 * Creates the database file (owner-only permissions, WAL) if needed and brings the inbox tables
 * up to date. Idempotent and safe to run from several processes at once.
 *
 * @throws DatabaseUnavailableError (exit 6) for a directory, a non-SQLite file, a file holding
 *   another program's tables, or a database newer than this code.
 */
export async function initInbox(options: OpenInboxOptions): Promise<InitResult> {
  const store = await openDatabase(storeOptions(options, true));
  try {
    const result = await migrate(store, inboxMigrations, options.clock ?? store.clock);
    ensureWal(store);
    return {
      path: redactLocation(options.path),
      schema_version: await schemaVersions(store),
      applied: result.applied.map((a) => ({ package: result.package, ...a })),
    };
  } finally {
    await store.close();
  }
}

function storeOptions(options: OpenInboxOptions, create: boolean): OpenDatabaseOptions {
  return {
    path: options.path,
    create,
    initHint: initHint(options.path),
    ...(options.nativeBinding ? { nativeBinding: options.nativeBinding } : {}),
    ...(options.busyTimeoutMs ? { busyTimeoutMs: options.busyTimeoutMs } : {}),
    ...(options.poolSize ? { poolSize: options.poolSize } : {}),
    ...(options.reconnectMs ? { reconnectMs: options.reconnectMs } : {}),
  };
}
