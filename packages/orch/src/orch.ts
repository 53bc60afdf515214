import { attachInbox, initHint, type InboxDatabase } from '@orch/inbox';
import {
  AppError,
  assertSchemaCurrent,
  migrate,
  openStore,
  randomIds,
  systemClock,
  type Clock,
  type IdGenerator,
  type Store,
} from '@orch/store';
import type { Kysely } from 'kysely';
import { orchMigrations } from './migrations.ts';
import type { OrchDatabase } from './schema.ts';

/** An open orchestration database: the store plus the injected clock and id generator. */
export interface Orch {
  readonly store: Store;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  close(): Promise<void>;
}

/** What in-transaction operations need besides the transaction. */
export type OrchEnv = { clock: Clock; ids: IdGenerator };

/** A transaction (or connection) over the orch tables. */
export type Tx = Kysely<OrchDatabase>;

/** The same transaction, typed for the inbox library's in-transaction functions. */
export function inboxTx(trx: Tx): Kysely<InboxDatabase> {
  return trx as unknown as Kysely<InboxDatabase>;
}

export interface OpenOrchOptions {
  path: string;
  clock?: Clock;
  ids?: IdGenerator;
  nativeBinding?: string;
  busyTimeoutMs?: number;
}

/**
 * Opens a database initialised with `inbox init` for orchestration. The first orch call on a
 * database creates (or upgrades) the orch tables, in one IMMEDIATE transaction that is safe to
 * race; later calls only read the schema version.
 *
 * @throws DatabaseUnavailableError (exit 6) when the file is missing, not initialised with
 *   `inbox init`, or newer than this code.
 */
export async function openOrch(options: OpenOrchOptions): Promise<Orch> {
  const store = openStore({
    path: options.path,
    create: false,
    initHint: initHint(options.path),
    ...(options.nativeBinding ? { nativeBinding: options.nativeBinding } : {}),
    ...(options.busyTimeoutMs ? { busyTimeoutMs: options.busyTimeoutMs } : {}),
  });
  const clock = options.clock ?? systemClock;
  try {
    await attachInbox(store, { clock });
    await ensureOrchSchema(store, clock);
  } catch (err) {
    await store.close();
    throw err;
  }
  return { store, clock, ids: options.ids ?? randomIds, close: () => store.close() };
}

async function ensureOrchSchema(store: Store, clock: Clock): Promise<void> {
  try {
    await assertSchemaCurrent(store, orchMigrations, initHint(store.path));
  } catch (err) {
    if (err instanceof AppError && (err.code === 'DB_NOT_INITIALISED' || err.code === 'DB_OUTDATED')) {
      await migrate(store, orchMigrations, clock);
      return;
    }
    throw err;
  }
}
