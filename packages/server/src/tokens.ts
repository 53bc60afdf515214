// Bearer tokens of `orch serve`: made, listed and revoked by `orch token ...`, checked by auth.ts.
// A token is `orch_` + 32 random bytes in base64url; the database keeps only its SHA-256, so a
// copy of the database (or a backup, or a look over a shoulder at `token list`) gives no token.
import crypto from 'node:crypto';
import {
  ConflictError,
  MAX_ID_LENGTH,
  NotFoundError,
  isoTime,
  latestVersion,
  migrate,
  readTransaction,
  schemaVersions,
  writeTransaction,
  DatabaseUnavailableError,
  type Clock,
  type IdGenerator,
  type Store,
} from '@orch/store';
import type { Kysely } from 'kysely';
import { serverMigrations, type ServerDatabase } from './migrations.ts';
import {
  countLive,
  insertToken,
  listTokenRows,
  liveTokenNamed,
  setLastUsed,
  setRevoked,
  tokenByHash,
  tokenById,
  type NewTokenRow,
  type TokenRow,
} from './queries/tokens.ts';

export const TOKEN_ROLES = ['leader', 'worker'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

/** What every token starts with (so a leaked one is easy to recognise, and to scan for). */
export const TOKEN_PREFIX = 'orch_';
/** A token's whole text: the prefix and 43 base64url characters (32 bytes). */
export const TOKEN_PATTERN = /^orch_[A-Za-z0-9_-]{43}$/;

/** The longest `--expires-in` accepted: ten years. */
export const MAX_EXPIRES_IN_MS = 3650 * 24 * 3600 * 1000;

/** A token as `token list` and `token create` show it: never its text, never its hash. */
export interface TokenView {
  id: string;
  name: string;
  role: TokenRole;
  /** The one agent a worker token acts as; null for a leader token. */
  agent: string | null;
  /** live, expired or revoked (only a live token is accepted). */
  state: 'live' | 'expired' | 'revoked';
  created_at: string;
  /** Null: never expires. */
  expires_at: string | null;
  revoked_at: string | null;
  /** When a request last came with it (updated at most once a minute). */
  last_used_at: string | null;
}

/** A new token's text: `orch_` and 32 bytes from the platform's cryptographic generator. */
export function newTokenText(): string {
  return TOKEN_PREFIX + crypto.randomBytes(32).toString('base64url');
}

/** The hex SHA-256 of a token's text: what the database keeps. */
export function hashToken(text: string): string {
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Parses `--expires-in`: a whole number and a unit, `m` (minutes), `h` (hours) or `d` (days), e.g.
 * `30m`, `12h`, `7d`; from one minute to ten years. Returns milliseconds, or a reason it is refused.
 */
export function parseExpiresIn(text: string): { ms: number } | { error: string } {
  const m = /^(\d{1,7})([mhd])$/.exec(text.trim());
  const error = 'must be a whole number and a unit m, h or d (e.g. 30m, 12h, 7d), from 1m to 3650d';
  if (!m) return { error };
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'];
  const ms = Number(m[1]) * unit;
  if (ms < 60_000 || ms > MAX_EXPIRES_IN_MS) return { error };
  return { ms };
}

function stateOf(row: NewTokenRow, now: number): TokenView['state'] {
  if (row.revoked_at !== null) return 'revoked';
  if (row.expires_at !== null && Number(row.expires_at) <= now) return 'expired';
  return 'live';
}

function time(ms: number | string | null): string | null {
  return ms === null ? null : isoTime(Number(ms));
}

/** The view of a token row at `now`. */
export function tokenView(row: NewTokenRow, now: number): TokenView {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    agent: row.agent,
    state: stateOf(row, now),
    created_at: isoTime(Number(row.created_at)),
    expires_at: time(row.expires_at),
    revoked_at: time(row.revoked_at),
    last_used_at: time(row.last_used_at),
  };
}

// Once a store has shown the tokens table it keeps it (tables are never dropped): only the answer
// "no tokens table yet" is read again each time, since `orch token create` in another process may
// create it while a server runs.
const hasTables = new WeakSet<Store>();

/**
 * Whether the database has the tokens table (a token was ever made on it). Reads the schema record
 * each time until it has seen the table.
 *
 * @throws DatabaseUnavailableError DB_TOO_NEW (6) when the server schema is newer than this code.
 */
export async function tokenTablesExist(store: Store): Promise<boolean> {
  if (hasTables.has(store)) return true;
  const version = (await schemaVersions(store)).server ?? 0;
  const latest = latestVersion(serverMigrations);
  if (version > latest) {
    throw new DatabaseUnavailableError(
      'DB_TOO_NEW',
      `${store.path} has server schema version ${version}, newer than this code understands (${latest}); use a newer release of this tool`,
      { details: { package: 'server', version, supported: latest } },
    );
  }
  if (version === latest) hasTables.add(store);
  return version > 0;
}

/** Creates or upgrades the tokens table when it is missing or outdated (a write only then). */
async function ensureTokenTables(store: Store, clock: Clock): Promise<void> {
  const version = (await schemaVersions(store)).server ?? 0;
  if (version < latestVersion(serverMigrations)) await migrate(store, serverMigrations, clock);
  hasTables.add(store);
}

export interface CreateTokenInput {
  role: TokenRole;
  /** Required for a worker token, refused for a leader token (the schema checks both). */
  agent?: string | undefined;
  /** Default: the agent (worker) or `leader`, with `-2`, `-3`, ... when a live token has it. */
  name?: string | undefined;
  /** Default: never expires. */
  expiresInMs?: number | undefined;
}

export interface CreateTokenResult {
  /** The token's text: shown this once, stored nowhere. */
  token: string;
  view: TokenView;
}

/**
 * Makes a token, creating the tokens table first if the database has none. The name must be unique
 * among live tokens: a name given explicitly that a live token has is refused.
 *
 * @throws ConflictError (4) when a live token already has the name given; DatabaseUnavailableError
 *   (6) as for opening.
 */
export async function createToken(store: Store, env: { clock: Clock; ids: IdGenerator }, input: CreateTokenInput): Promise<CreateTokenResult> {
  await ensureTokenTables(store, env.clock);
  const token = newTokenText();
  const hash = hashToken(token);
  const row = await writeTransaction<ServerDatabase, NewTokenRow>(store, async (trx) => {
    const now = env.clock.now();
    let name = input.name;
    if (name !== undefined) {
      if (await liveTokenNamed(trx, name, now)) {
        throw new ConflictError(`a live token is already named ${name}; revoke it first (orch token revoke --name ${name}) or choose another --name`, {
          name,
        });
      }
    } else {
      const base = input.agent ?? 'leader';
      name = base;
      for (let n = 2; await liveTokenNamed(trx, name, now); n++) name = `${base.slice(0, MAX_ID_LENGTH - 1 - String(n).length)}-${n}`;
    }
    const values: NewTokenRow = {
      id: env.ids.next('tok'),
      name,
      role: input.role,
      agent: input.role === 'worker' ? (input.agent ?? null) : null,
      hash,
      created_at: now,
      expires_at: input.expiresInMs === undefined ? null : now + input.expiresInMs,
      revoked_at: null,
      last_used_at: null,
    };
    await insertToken(trx, values);
    return values;
  });
  return { token, view: tokenView(row, env.clock.now()) };
}

/** Every token, newest first, at most `limit` (default 100). Writes nothing: no table, no tokens. */
export async function listTokens(store: Store, clock: Clock, options: { limit?: number | undefined } = {}): Promise<TokenView[]> {
  if (!(await tokenTablesExist(store))) return [];
  const rows = await readTransaction<ServerDatabase, TokenRow[]>(store, (trx) => listTokenRows(trx, options.limit ?? 100));
  const now = clock.now();
  return rows.map((r) => tokenView(r, now));
}

export interface RevokeResult {
  /** False when the token was revoked before (nothing changed). */
  revoked: boolean;
  token: TokenView;
}

/**
 * Revokes a token by id, or the live token with a name. A request with it is refused from the next
 * request on (every request reads the token's row). Revoking a revoked token changes nothing.
 *
 * @throws NotFoundError (3) for no such token (by name: no live token with that name).
 */
export async function revokeToken(store: Store, clock: Clock, by: { id: string } | { name: string }): Promise<RevokeResult> {
  const what = 'id' in by ? `no token ${by.id}` : `no live token named ${by.name}`;
  if (!(await tokenTablesExist(store))) throw new NotFoundError(`${what} (no token was ever made on this database)`, by);
  return writeTransaction<ServerDatabase, RevokeResult>(store, async (trx) => {
    const now = clock.now();
    const row = 'id' in by ? await tokenById(trx, by.id) : await liveTokenNamed(trx, by.name, now);
    if (!row) throw new NotFoundError(what, by);
    if (row.revoked_at !== null) return { revoked: false, token: tokenView(row, now) };
    await setRevoked(trx, row.id, now);
    return { revoked: true, token: tokenView({ ...row, revoked_at: now }, now) };
  });
}

/**
 * One read statement outside a transaction: what every request's authentication costs, so on
 * PostgreSQL one round trip rather than three (tried again on a lost connection, like any read).
 */
function readOnce<T>(store: Store, fn: (db: Kysely<ServerDatabase>) => Promise<T>): Promise<T> {
  return store.kind === 'postgres' ? store.pg.plain(fn) : fn(store.db as Kysely<ServerDatabase>);
}

/** How many live tokens the database has (0 when no token was ever made). */
export async function countLiveTokens(store: Store, now: number): Promise<number> {
  if (!(await tokenTablesExist(store))) return 0;
  return readOnce(store, (db) => countLive(db, now));
}

/** The row of the token whose text is `text`, whatever its state; undefined for none. */
export async function findToken(store: Store, text: string): Promise<TokenRow | undefined> {
  if (!(await tokenTablesExist(store))) return undefined;
  const hash = hashToken(text);
  const row = await readOnce(store, (db) => tokenByHash(db, hash));
  // Found by an index on the hash; compared once more in constant time, so how long a comparison
  // takes never depends on how much of a guess was right.
  if (row === undefined || !crypto.timingSafeEqual(Buffer.from(row.hash, 'hex'), Buffer.from(hash, 'hex'))) return undefined;
  return row;
}

/** Records that the token was used at `now`, unless that was recorded less than a minute ago. */
export async function touchToken(store: Store, row: TokenRow, now: number): Promise<void> {
  if (row.last_used_at !== null && now - Number(row.last_used_at) < 60_000) return;
  await writeTransaction<ServerDatabase, void>(store, (trx) => setLastUsed(trx, row.id, now));
}

export type { TokenRow };
