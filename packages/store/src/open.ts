import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { DatabaseUnavailableError, mapSqliteError } from './errors.ts';
import { StatementCache } from './prepared.ts';
import { systemClock } from './clock.ts';
import type { SqliteStore, Store } from './engine.ts';

export interface OpenStoreOptions {
  /** Path of the database file. */
  path: string;
  /**
   * Create the file (owner-only permissions) and switch it to WAL when it does not exist yet.
   * Default false: a missing file is refused with DB_MISSING.
   */
  create?: boolean;
  /**
   * How long a writer waits for the write lock while no other writer commits before failing with
   * DB_BUSY (one transaction held the lock that long), and how long SQLite's own busy handler waits
   * for anything else. Default 5000 ms.
   */
  busyTimeoutMs?: number;
  /** Path to `better_sqlite3.node`, for bundled CLIs that ship the addon beside themselves. */
  nativeBinding?: string;
  /** The command that initialises a database, quoted in error messages. Default `inbox --db PATH init`. */
  initHint?: string;
  /**
   * Open a file that has more than one hard link instead of refusing it (DB_HARD_LINKED). Only for
   * `doctor`, which reports it: nothing else may use such a file.
   */
  allowHardLinks?: boolean;
  /**
   * Open the file read-only (SQLite's own read-only mode): nothing through this connection can
   * write it, not even a checkpoint. For a copy's source, which may be in use. Implies no `create`.
   */
  readOnly?: boolean;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/**
 * The connection's own `busy_timeout`: how long SQLite's busy handler waits in one statement (a
 * read while another process recovers the WAL, one try of a write transaction's BEGIN IMMEDIATE).
 */
export const TRY_BUSY_MS = 100;

/**
 * Opens a database file with the pragmas every connection needs: an explicit busy_timeout,
 * foreign keys on, synchronous=NORMAL (with WAL this survives process crashes; a power loss may
 * lose the last commits but never corrupts the file). WAL itself is persistent: it is switched on
 * when the file is created (or by `ensureWal` once init accepted it), so opening an existing file
 * never writes to it.
 *
 * @throws DatabaseUnavailableError (exit 6) when the path is missing (without `create`), is a
 *   directory, is not a SQLite database, has more than one hard link (DB_HARD_LINKED, unless
 *   `allowHardLinks`), or the native SQLite module cannot load.
 */
export function openStore(options: OpenStoreOptions): SqliteStore {
  const file = options.path;
  const hint = options.initHint ?? `inbox --db ${file} init`;
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const readOnly = options.readOnly === true;
  prepareFile(file, options.create === true && !readOnly, hint, options.allowHardLinks === true);

  let sqlite: Database.Database;
  try {
    sqlite = new Database(file, {
      fileMustExist: true,
      readonly: readOnly,
      timeout: Math.min(busyTimeoutMs, TRY_BUSY_MS),
      ...(options.nativeBinding ? { nativeBinding: options.nativeBinding } : {}),
    });
  } catch (err) {
    throw openError(err, file);
  }

  try {
    // SQLite's own busy handler waits only briefly: a writer's longer wait is writeTransaction's,
    // which keeps trying often and counts its timeout from the last commit of another writer.
    sqlite.pragma(`busy_timeout = ${Math.trunc(Math.min(busyTimeoutMs, TRY_BUSY_MS))}`);
    // Reading the schema cookie is the cheapest statement that fails on a file that is not SQLite.
    sqlite.pragma('schema_version');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('synchronous = NORMAL');
    // Only a brand-new (empty) file is switched here; an existing file is left exactly as it is
    // until `init` has accepted it (see ensureWal).
    if (options.create === true && !readOnly && sqlite.pragma('page_count', { simple: true }) === 0) enableWal(sqlite, busyTimeoutMs);
  } catch (err) {
    sqlite.close();
    throw openError(err, file);
  }

  // Prepared once: waiting reads it every few milliseconds.
  const dataVersion = sqlite.prepare('PRAGMA data_version').pluck();
  const statements = new StatementCache(sqlite);
  // Kysely's driver prepares every query it runs; this connection answers from the cache instead.
  const database = { prepare: (text: string) => statements.prepare(text), close: () => sqlite.close() };
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database }) });
  return {
    kind: 'sqlite',
    path: file,
    location: path.resolve(file),
    clock: systemClock,
    db,
    sqlite,
    statements,
    busyTimeoutMs,
    dataVersion: () => dataVersion.get() as number,
    close: () => db.destroy(),
  };
}

/**
 * Checks the path and creates an empty owner-only file when allowed. An empty file left behind by
 * a failed init is harmless: SQLite treats it as an empty database and the next init fills it.
 */
function prepareFile(file: string, create: boolean, hint: string, allowHardLinks: boolean): void {
  if (file.length === 0) {
    throw new DatabaseUnavailableError('DB_CANNOT_OPEN', 'the database path is empty');
  }
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) {
      throw new DatabaseUnavailableError('DB_CANNOT_OPEN', `cannot read ${file}: ${errMessage(err)}`, { cause: err });
    }
  }
  if (stat?.isDirectory()) {
    throw new DatabaseUnavailableError('DB_CANNOT_OPEN', `${file} is a directory, not a database file`);
  }
  if (stat && !stat.isFile()) {
    throw new DatabaseUnavailableError('DB_CANNOT_OPEN', `${file} is not a regular file`);
  }
  if (stat && stat.nlink > 1 && !allowHardLinks) {
    throw new DatabaseUnavailableError('DB_HARD_LINKED', hardLinkedMessage(file, stat.nlink), { details: { links: stat.nlink } });
  }
  if (stat) {
    // An empty file is about to become the database: it gets the same owner-only mode as one made here.
    if (create && stat.size === 0 && (stat.mode & 0o077) !== 0 && symlinkTarget(file) === undefined) {
      try {
        fs.chmodSync(file, 0o600);
      } catch {
        // Not ours to change: it stays as it is.
      }
    }
    return;
  }
  const link = symlinkTarget(file);
  if (link !== undefined) {
    throw new DatabaseUnavailableError(
      create ? 'DB_CANNOT_OPEN' : 'DB_MISSING',
      `${file} is a symbolic link to ${link}, which does not exist${create ? '; refusing to create a file through it' : ''}`,
    );
  }
  if (!create) {
    throw new DatabaseUnavailableError('DB_MISSING', `no database at ${file}; create it with \`${hint}\``);
  }
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new DatabaseUnavailableError('DB_CANNOT_OPEN', `cannot create ${file}: directory ${dir} does not exist`);
  }
  try {
    fs.closeSync(fs.openSync(file, 'wx', 0o600));
  } catch (err) {
    // Another process created it first: fine, we open theirs.
    if (isErrno(err, 'EEXIST')) return;
    throw new DatabaseUnavailableError('DB_CANNOT_OPEN', `cannot create ${file}: ${errMessage(err)}`, { cause: err });
  }
}

/**
 * Why a database file with several hard links is refused. SQLite finds a database's `-wal` and
 * `-shm` files by the name it was opened under, so two hard-linked names keep two write-ahead logs
 * of one file: commits made through one name are lost when the other is checkpointed, and nothing
 * reports an error. A symbolic link is safe (SQLite follows it to the real name).
 */
export function hardLinkedMessage(file: string, links: number): string {
  return (
    `${file} has ${links} hard links: SQLite keeps a separate write-ahead log for each name of one file, ` +
    `so writes made through one name are silently lost; give every participant one path ` +
    `(or a symbolic link to it) and remove the other names (\`find / -xdev -samefile ${file}\` lists them)`
  );
}

/** How many hard links the file at `file` (followed through symbolic links) has; 1 when it cannot be read. */
export function hardLinkCount(file: string): number {
  try {
    return fs.statSync(file).nlink;
  } catch {
    return 1;
  }
}

/**
 * Puts a database this tool has accepted as its own into WAL mode (persistent in the file).
 * Does nothing when it already is, or on PostgreSQL. Must not run inside a transaction.
 */
export function ensureWal(store: Store, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS): void {
  if (store.kind !== 'sqlite') return;
  if (store.sqlite.pragma('journal_mode', { simple: true }) !== 'wal') enableWal(store.sqlite, busyTimeoutMs);
}

/**
 * Switching to WAL needs a moment of exclusive access; when another process is opening the same
 * new file at that instant SQLite may answer SQLITE_BUSY without consulting the busy handler, so
 * retry until the busy timeout.
 */
function enableWal(sqlite: Database.Database, busyTimeoutMs: number): void {
  const deadline = performance.now() + busyTimeoutMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    try {
      const mode = sqlite.pragma('journal_mode = WAL', { simple: true });
      if (mode === 'wal') return;
      throw new DatabaseUnavailableError('DB_CANNOT_OPEN', `could not switch the database to WAL mode (got ${String(mode)})`);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const busy = typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
      if (!busy || performance.now() >= deadline) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delay);
    }
  }
}

function openError(err: unknown, file: string): Error {
  const mapped = mapSqliteError(err);
  if (mapped instanceof DatabaseUnavailableError) {
    return mapped.code === 'DB_NOT_A_DATABASE' ? new DatabaseUnavailableError('DB_NOT_A_DATABASE', `${file} is not a SQLite database`, { cause: err }) : mapped;
  }
  if (err instanceof Error && /bindings|NODE_MODULE_VERSION|dlopen|\.node\b|ERR_DLOPEN/i.test(`${err.message} ${(err as { code?: string }).code ?? ''}`)) {
    return new DatabaseUnavailableError(
      'DB_NATIVE_MODULE',
      `the native SQLite module (better-sqlite3) cannot load on this host (Node ${process.version}, ` +
        `${process.platform}-${process.arch}, ABI ${process.versions.modules}); rebuild it for this Node ` +
        `(in a clone: \`npm rebuild better-sqlite3\`, then \`npm run build\`; the npm package: reinstall it under this Node, ` +
        `its better-sqlite3 install script allowed). Cause: ${err.message.split('\n')[0]}`,
      { cause: err },
    );
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** Where `file` points when it is a symbolic link (else undefined). */
function symlinkTarget(file: string): string | undefined {
  try {
    return fs.lstatSync(file).isSymbolicLink() ? fs.readlinkSync(file) : undefined;
  } catch {
    return undefined;
  }
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
