import os from 'node:os';
import { DatabaseUnavailableError } from '../errors.ts';
import { decodeUrlPart, redactLocation } from '../location.ts';

/** What a PostgreSQL URL says, split into what the driver takes and what this tool reads itself. */
export interface PostgresTarget {
  /** The URL for the driver: without `schema` and `connect_timeout`, which this tool handles. */
  connectionString: string;
  /** The schema the tables live in: `?schema=NAME`, default `public`. */
  schema: string;
  /** How long connecting may take before DB_CANNOT_OPEN: `?connect_timeout=SECONDS` (libpq's name), default 5 s. */
  connectTimeoutMs: number;
  /** The URL without its password, for messages and for other processes. */
  display: string;
  /** The password the URL carries, if any (handed to agents as PGPASSWORD, never printed). */
  password: string | undefined;
  /** host:port, for messages. */
  server: string;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Reads a `postgres://` / `postgresql://` URL. Credentials may also come from PGUSER, PGPASSWORD,
 * ~/.pgpass and the other PG* variables the driver reads; TLS from `sslmode` in the URL.
 *
 * @throws DatabaseUnavailableError DB_CANNOT_OPEN for a URL that cannot be read or names an invalid schema.
 */
export function parsePostgresUrl(raw: string): PostgresTarget {
  const display = redactLocation(raw);
  let url: URL | undefined;
  try {
    // postgres:USER@HOST/DB (no //) parses as a URL without a host: refused with the rest.
    if (/^postgres(ql)?:\/\//i.test(raw)) url = new URL(raw);
  } catch {
    // Below.
  }
  if (url === undefined) {
    throw new DatabaseUnavailableError('DB_CANNOT_OPEN', `${display} is not a valid PostgreSQL URL (expected postgres://USER@HOST:PORT/DATABASE?schema=NAME)`);
  }
  const schema = url.searchParams.get('schema') ?? 'public';
  if (!IDENTIFIER.test(schema)) {
    throw new DatabaseUnavailableError(
      'DB_CANNOT_OPEN',
      `schema ${JSON.stringify(schema)} in ${display} is not a plain identifier (letters, digits and _, at most 63, not starting with a digit)`,
    );
  }
  if (/^pg_/i.test(schema)) {
    // PostgreSQL keeps pg_* for itself (pg_catalog, pg_toast, and pg_temp: temporary tables that
    // would vanish with the connection); it refuses to create such a schema.
    throw new DatabaseUnavailableError(
      'DB_CANNOT_OPEN',
      `schema ${JSON.stringify(schema)} in ${display} is reserved by PostgreSQL (names starting with pg_); choose another ?schema=NAME`,
    );
  }
  let connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS;
  const timeout = url.searchParams.get('connect_timeout');
  if (timeout !== null) {
    const seconds = Number(timeout);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) {
      throw new DatabaseUnavailableError('DB_CANNOT_OPEN', `connect_timeout in ${display} must be a number of seconds from 1 to 3600`);
    }
    connectTimeoutMs = Math.round(seconds * 1000);
  }
  url.searchParams.delete('schema');
  url.searchParams.delete('connect_timeout');
  // The driver takes the URL's `options` over the ones this tool sets, and a search_path there would
  // put the tables in another schema than the one every message names: ours comes last, and wins.
  const options = url.searchParams.get('options');
  if (options !== null) url.searchParams.set('options', `${options} -c search_path=${quoteIdent(schema)}`);
  // As libpq does: without a user in the URL or PGUSER, the operating system's user name (as a
  // `user` parameter when the URL has no host, postgres:///DB, which cannot carry a user part).
  if (url.username === '' && !process.env.PGUSER && !url.searchParams.has('user')) {
    try {
      const name = os.userInfo().username;
      url.username = encodeURIComponent(name);
      if (url.username === '') url.searchParams.set('user', name);
    } catch {
      // No user database entry: the driver's own default applies.
    }
  }
  const password = url.password !== '' ? decodeUrlPart(url.password) : (url.searchParams.get('password') ?? undefined);
  const host = url.hostname === '' ? (process.env.PGHOST ?? 'localhost') : url.hostname;
  const port = url.port === '' ? (process.env.PGPORT ?? '5432') : url.port;
  return { connectionString: url.toString(), schema, connectTimeoutMs, display, password, server: `${host}:${port}` };
}

/** A double-quoted SQL identifier (the name was checked by parsePostgresUrl). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A stable signed 32-bit hash (FNV-1a) of `text`: advisory lock keys and channel names per schema. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}
