/**
 * The engine of this test run and how its PostgreSQL schemas are named: the part of test/engine.ts
 * that vitest.config.ts and test/global-setup.ts use too (so it must not import vitest).
 */
import crypto from 'node:crypto';
import os from 'node:os';

export type Engine = 'sqlite' | 'postgres';

function engineFromEnv(): Engine {
  const v = process.env.ORCH_TEST_ENGINE ?? 'sqlite';
  if (v !== 'sqlite' && v !== 'postgres') throw new Error(`ORCH_TEST_ENGINE=${v}: expected sqlite or postgres`);
  return v;
}

/** The engine of this run: `ORCH_TEST_ENGINE` (sqlite, the default, or postgres). */
export const ENGINE: Engine = engineFromEnv();
export const onPostgres = ENGINE === 'postgres';
export const onSqlite = !onPostgres;

/** The server the PostgreSQL half runs against (its database; the schema is added per test database). */
export const PG_URL = process.env.ORCH_TEST_PG_URL ?? 'postgres://127.0.0.1:5432/test';

/** The environment variable test/global-setup.ts passes the run's id in (`<base36 seconds>x<random>`). */
export const RUN_ID_VAR = 'ORCH_TEST_PG_RUN';

/**
 * Every schema this process names starts with this: `t_<run id>_`. The run id begins with the
 * run's start time in base-36 seconds, so the teardown can tell this run's schemas from another
 * run's (left alone while young: several runs may share one server) and from leftovers a day old.
 */
export function schemaPrefix(runId = process.env[RUN_ID_VAR] ?? newRunId()): string {
  return `t_${runId}_`;
}

/** A fresh run id: its start time (base-36 seconds) and a little randomness. */
export function newRunId(now = Date.now()): string {
  return `${Math.floor(now / 1000).toString(36)}x${crypto.randomBytes(2).toString('hex')}`;
}

/** When the run that named `schema` started (ms since the epoch), or undefined for a name not made here. */
export function schemaStartedAt(schema: string): number | undefined {
  const m = /^t_([0-9a-z]+)x[0-9a-f]+_/.exec(schema);
  return m ? Number.parseInt(m[1] ?? '', 36) * 1000 : undefined;
}

/**
 * What a test's own `pg` client connects with for `url`: without our `schema` parameter, and with the
 * user libpq would pick (PGUSER, else the login name) when the URL names none, since node-postgres
 * falls back to $USER only.
 */
export function pgConnectionString(url: string): string {
  const u = new URL(url);
  u.searchParams.delete('schema');
  if (u.username === '' && !process.env.PGUSER) u.username = os.userInfo().username;
  return u.toString();
}
