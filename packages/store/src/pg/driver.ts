import type pg from 'pg';

export type PgDriver = typeof pg;

let driver: PgDriver | undefined;

/**
 * The `pg` driver, loaded on first use. The bundled CLIs carry it as a file of its own beside them
 * (`pg-driver.cjs`, see scripts/build.mjs): a SQLite call never reads it.
 */
export async function loadDriver(): Promise<PgDriver> {
  if (driver === undefined) {
    const mod = (await import('pg')) as unknown as { default?: PgDriver } & PgDriver;
    driver = mod.default ?? mod;
  }
  return driver;
}
