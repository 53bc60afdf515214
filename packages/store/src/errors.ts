import { mapPgError } from './pg/errors.ts';
/**
 * Typed errors with stable codes and exit codes. Library code throws these; only a CLI's
 * `main` turns them into output and an exit code.
 *
 * Exit codes (documented in docs/json.md, "Errors and exit codes", and in every CLI's --help):
 * 0 ok · 1 internal error (a bug) · 2 usage or validation error · 3 not found ·
 * 4 conflict or invalid state · 5 lease lost · 6 database unavailable ·
 * 7 output failed (the command finished, and committed whatever it changes, but its output could
 * not be written).
 */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  leaseLost: 5,
  unavailable: 6,
  outputFailed: 7,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Exit codes and the JSON contract, shown at the end of every --help. Every CLI shows it. */
export const EXIT_CODES_HELP = [
  'Exit codes: 0 ok · 1 internal error (a bug) · 2 usage or validation error · 3 not found ·',
  '4 conflict or invalid state · 5 lease lost · 6 database unavailable (missing, not initialised,',
  'newer than this tool, hard-linked, busy past the timeout, or a PostgreSQL server that cannot be',
  'reached or refuses the login) · 7 output failed: the command',
  'finished (a change it makes is committed: the message says how to see it) but its output could',
  'not be written (a full disk, a closed pipe).',
  'With --json: exactly one JSON document on stdout; an error is one line on stderr:',
  '{"error": {"code": "...", "message": "...", "details": ...}}.',
].join('\n');

export class AppError extends Error {
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  readonly details: unknown;

  constructor(code: string, exitCode: ExitCodeValue, message: string, options: { details?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.details = options.details;
  }
}

/** Bad flags, bad values, bad JSON: exit 2. `details` lists every problem as `{path, message}`. */
export class ValidationError extends AppError {
  constructor(message: string, details?: unknown) {
    super('VALIDATION', ExitCode.usage, message, { details });
  }
}

/** The command line itself is wrong (unknown flag or command, missing flag): exit 2. */
export class UsageError extends AppError {
  constructor(message: string) {
    super('USAGE', ExitCode.usage, message);
  }
}

/** A named thing (thread, run, task, ...) does not exist: exit 3. */
export class NotFoundError extends AppError {
  constructor(message: string, details?: unknown) {
    super('NOT_FOUND', ExitCode.notFound, message, { details });
  }
}

/** The request is valid but the current state forbids it: exit 4. */
export class ConflictError extends AppError {
  constructor(message: string, details?: unknown) {
    super('CONFLICT', ExitCode.conflict, message, { details });
  }
}

/**
 * The caller may act only as one agent (`inbox mcp --agent NAME`, a worker token) and the thread is
 * not assigned to it, or the claim names another agent: exit 4. Nothing was written.
 */
export class ForbiddenError extends AppError {
  constructor(message: string, details?: unknown) {
    super('FORBIDDEN', ExitCode.conflict, message, { details });
  }
}

/**
 * A request to `orch serve` without a valid token: none where one is needed, unknown, revoked or
 * expired, or sent over plain HTTP from another machine: exit 4 at a remote CLI (HTTP 401).
 */
export class UnauthenticatedError extends AppError {
  constructor(message: string, details?: unknown) {
    super('UNAUTHENTICATED', ExitCode.conflict, message, { details });
  }
}

/** The lease token is stale, foreign, expired or revoked: exit 5. Nothing was written. */
export class LeaseLostError extends AppError {
  constructor(message: string, details?: unknown) {
    super('LEASE_LOST', ExitCode.leaseLost, message, { details });
  }
}

/** Why the database cannot be used. */
export type UnavailableReason =
  | 'DB_MISSING'
  | 'DB_NOT_INITIALISED'
  | 'DB_OUTDATED'
  | 'DB_TOO_NEW'
  | 'DB_NOT_A_DATABASE'
  | 'DB_FOREIGN'
  | 'DB_BUSY'
  | 'DB_CORRUPT'
  | 'DB_CANNOT_OPEN'
  | 'DB_HARD_LINKED'
  | 'DB_NATIVE_MODULE'
  | 'DB_AUTH_FAILED'
  | 'DB_PERMISSION';

/** The database is missing, uninitialised, newer than this code, busy past the timeout, ...: exit 6. */
export class DatabaseUnavailableError extends AppError {
  constructor(reason: UnavailableReason, message: string, options: { details?: unknown; cause?: unknown } = {}) {
    super(reason, ExitCode.unavailable, message, options);
  }
}

/**
 * The command finished (a writing command has committed its change) but its output could not be
 * written: stdout is a full disk, a closed pipe, ...: exit 7. The message says whether anything
 * was committed and how to see it, so nobody repeats a command that already took effect.
 */
export class OutputFailedError extends AppError {
  constructor(message: string, details?: unknown, cause?: unknown) {
    super('OUTPUT_FAILED', ExitCode.outputFailed, message, { details, cause });
  }
}

/** Shape of an error as printed with `--json` (on stderr). */
export interface ErrorJson {
  error: { code: string; message: string; details?: unknown };
}

/** Converts anything thrown into an AppError; unknown errors become INTERNAL (exit 1). */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const mapped = mapSqliteError(err);
  if (mapped instanceof AppError) return mapped;
  const fromServer = mapPgError(err);
  if (fromServer instanceof AppError) return fromServer;
  const message = err instanceof Error ? err.message : String(err);
  return new AppError('INTERNAL', ExitCode.internal, `internal error (this is a bug): ${message}`, { cause: err });
}

function sqliteErrorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string' && err.code.startsWith('SQLITE_')) {
    return err.code;
  }
  return undefined;
}

/**
 * Turns a SQLite error that means "the database cannot be used right now" (busy past the timeout,
 * not a database, corrupt, cannot open) into a DatabaseUnavailableError; returns anything else as is.
 */
export function mapSqliteError(err: unknown): unknown {
  const code = sqliteErrorCode(err);
  if (code === undefined) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new DatabaseUnavailableError('DB_BUSY', `database is busy and stayed busy past the timeout (${message})`, { cause: err });
  }
  if (code === 'SQLITE_NOTADB') {
    return new DatabaseUnavailableError('DB_NOT_A_DATABASE', 'the file is not a SQLite database', { cause: err });
  }
  if (code.startsWith('SQLITE_CORRUPT')) {
    return new DatabaseUnavailableError('DB_CORRUPT', `the database file is corrupt (${message})`, { cause: err });
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_FULL') {
    return new DatabaseUnavailableError('DB_CANNOT_OPEN', `cannot use the database file (${message})`, { cause: err });
  }
  return err;
}
