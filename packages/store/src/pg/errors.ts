import { AppError, DatabaseUnavailableError } from '../errors.ts';

/**
 * Errors of the PostgreSQL driver that mean "the database cannot be used" become exit 6 with a code
 * and one line; anything else is returned as it is (a bug, exit 1). No driver import: this module
 * is part of every CLI (toAppError uses it), the driver only of PostgreSQL calls.
 */
export function mapPgError(err: unknown, server = 'the PostgreSQL server'): unknown {
  // Our own errors (a refusal, a lost lease) pass as they are, whatever their message says.
  if (err instanceof AppError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  const message = err.message.split('\n')[0] ?? '';
  const sqlState = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && 'severity' in err ? code : undefined;
  if (sqlState !== undefined) {
    const cls = sqlState.slice(0, 2);
    if (sqlState === '28P01' || sqlState === '28000') {
      return new DatabaseUnavailableError(
        'DB_AUTH_FAILED',
        `${server} refused the login (${message}); check the user and the password (PGPASSWORD or ~/.pgpass)`,
        { cause: err },
      );
    }
    if (sqlState === '3D000') return new DatabaseUnavailableError('DB_MISSING', `${message} on ${server}; create it first (createdb)`, { cause: err });
    if (sqlState === '42501') return new DatabaseUnavailableError('DB_PERMISSION', `permission denied on ${server} (${message})`, { cause: err });
    if (sqlState === '55P03')
      return new DatabaseUnavailableError('DB_BUSY', `database is busy: another writer held the write lock past the timeout (${message}); try again`, {
        cause: err,
      });
    if (sqlState === '40001' || sqlState === '40P01') {
      // Retried a few times already (pg/transactions.ts); what is left is contention, not a bug.
      return new DatabaseUnavailableError('DB_BUSY', `database is busy: the server kept aborting the transaction (${message}); try again`, {
        cause: err,
      });
    }
    if (sqlState === '25006') {
      // A hot standby, a server after a failover to a replica, or default_transaction_read_only.
      return new DatabaseUnavailableError('DB_CANNOT_OPEN', `${server} takes no writes (${message}): is it a read-only replica?`, { cause: err });
    }
    if (cls === '08' || cls === '57' || cls === '53' || sqlState === '3F000') {
      return new DatabaseUnavailableError('DB_CANNOT_OPEN', `cannot use ${server}: ${message}`, { cause: err });
    }
    return err;
  }
  // The driver's own refusals while logging in: the server asked for a password and none was given
  // (URL, PGPASSWORD, ~/.pgpass), or SCRAM failed on the client's side.
  if (/^SASL: |client password must be|Password must be a string/.test(message)) {
    return new DatabaseUnavailableError(
      'DB_AUTH_FAILED',
      `${server} asks for a password and none was given (${message}); give it through PGPASSWORD or ~/.pgpass`,
      { cause: err },
    );
  }
  const errno = typeof code === 'string' ? code : '';
  if (/^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ECONNRESET|EPIPE)$/.test(errno)) {
    return new DatabaseUnavailableError('DB_CANNOT_OPEN', `cannot reach ${server} (${errno}: ${message})`, { cause: err });
  }
  if (
    /timeout expired|connection timeout|timeout exceeded when trying to connect|Connection terminated|Client has encountered a connection error|self.signed|certificate|does not support SSL|SSL/i.test(
      message,
    )
  ) {
    return new DatabaseUnavailableError('DB_CANNOT_OPEN', `cannot use ${server}: ${message}`, { cause: err });
  }
  return err;
}

/** A named statement planned before its tables changed shape (see lastResultPool in open.ts): run the transaction again. */
export function isStalePlan(err: unknown): boolean {
  return (err as { code?: unknown }).code === '0A000' && /cached plan must not change result type/.test(String((err as Error).message));
}
