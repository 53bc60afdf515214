import type pg from 'pg';
import { DatabaseUnavailableError } from '../errors.ts';

export type PgDriver = typeof pg;

let driver: PgDriver | undefined;

/**
 * The `pg` driver, loaded on first use. The bundled CLIs carry it as a file of its own beside them
 * (`pg-driver.cjs`, see scripts/build.mjs): a SQLite call never reads it. When it cannot load (the
 * file was left behind when the executable was copied): DB_CANNOT_OPEN, exit 6.
 */
export async function loadDriver(): Promise<PgDriver> {
  if (driver === undefined) {
    let mod: { default?: PgDriver } & PgDriver;
    try {
      mod = (await import('pg')) as unknown as { default?: PgDriver } & PgDriver;
    } catch (err) {
      throw new DatabaseUnavailableError(
        'DB_CANNOT_OPEN',
        `the PostgreSQL engine cannot load (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); copy the whole folder the executable came from`,
        { cause: err },
      );
    }
    driver = mod.default ?? mod;
  }
  return driver;
}
