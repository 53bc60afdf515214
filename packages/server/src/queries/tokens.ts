// The queries of the tokens table (server_tokens). Expiry is judged in SQL against the `now` the
// caller passes (the store's clock: the database server's on PostgreSQL).
import type { Kysely, Selectable } from 'kysely';
import type { ServerDatabase } from '../migrations.ts';

export type Db = Kysely<ServerDatabase>;
export type TokenRow = Selectable<ServerDatabase['server_tokens']>;
export type NewTokenRow = Omit<TokenRow, 'seq'>;

/** The live (not revoked, not expired at `now`) token named `name`; at most one exists. */
export function liveTokenNamed(db: Db, name: string, now: number): Promise<TokenRow | undefined> {
  return db
    .selectFrom('server_tokens')
    .selectAll()
    .where('name', '=', name)
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .executeTakeFirst();
}

export async function insertToken(db: Db, row: NewTokenRow): Promise<void> {
  await db.insertInto('server_tokens').values(row).execute();
}

/** Tokens newest first, at most `limit`. */
export function listTokenRows(db: Db, limit: number): Promise<TokenRow[]> {
  return db.selectFrom('server_tokens').selectAll().orderBy('seq', 'desc').limit(limit).execute();
}

export function tokenById(db: Db, id: string): Promise<TokenRow | undefined> {
  return db.selectFrom('server_tokens').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The token whose SHA-256 is `hash` (an indexed lookup), whatever its state. */
export function tokenByHash(db: Db, hash: string): Promise<TokenRow | undefined> {
  return db.selectFrom('server_tokens').selectAll().where('hash', '=', hash).executeTakeFirst();
}

export async function setRevoked(db: Db, id: string, now: number): Promise<void> {
  await db.updateTable('server_tokens').set({ revoked_at: now }).where('id', '=', id).execute();
}

export async function setLastUsed(db: Db, id: string, now: number): Promise<void> {
  await db.updateTable('server_tokens').set({ last_used_at: now }).where('id', '=', id).execute();
}

/** How many tokens are live at `now`. */
export async function countLive(db: Db, now: number): Promise<number> {
  const row = await db
    .selectFrom('server_tokens')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}
