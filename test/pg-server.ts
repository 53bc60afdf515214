/**
 * The PostgreSQL server the PostgreSQL-specific test files (test/postgres-*.test.ts) run against,
 * and the few things they need from it: a fresh schema per test (`freshSchema`, dropped after the
 * file), SQL by hand (`pgRows`, `pgExec`), and a describe that runs only where the server answers.
 *
 * The server is `ORCH_TEST_PG_URL` (default postgres://127.0.0.1:5432/test). Unreachable: the
 * files skip, saying so once per file, except under CI=true, where they fail. Under a vitest
 * project that sets ORCH_TEST_ENGINE=sqlite they skip silently: these files are about PostgreSQL,
 * and the postgres project runs them.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { afterAll, describe, it } from 'vitest';

export const PG_BASE = process.env.ORCH_TEST_PG_URL ?? 'postgres://127.0.0.1:5432/test';
const CI = process.env.CI === 'true' || process.env.CI === '1';

/** Connection settings for `url`; without a user in it or PGUSER, the OS user (as libpq and the CLIs do). */
function connection(url: string, extra: pg.ClientConfig = {}): pg.ClientConfig {
  const u = new URL(url);
  if (u.username === '' && !process.env.PGUSER) u.username = encodeURIComponent(os.userInfo().username);
  return { connectionString: u.toString(), ...extra };
}

/** Why the server cannot be used, or undefined when it answers. */
async function serverProblem(): Promise<string | undefined> {
  const client = new pg.Client(connection(PG_BASE, { connectionTimeoutMillis: 3000 }));
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const otherProject = process.env.ORCH_TEST_ENGINE === 'sqlite';
const problem = otherProject ? undefined : await serverProblem();
let said = false;

/**
 * A describe that runs when the server answers; skips (one message) when it does not, or fails
 * under CI=true; skips silently in the sqlite project.
 */
export function describePg(name: string, fn: () => void): void {
  if (otherProject) {
    describe.skip(name, fn);
    return;
  }
  if (problem === undefined) {
    describe(name, fn);
    return;
  }
  if (CI) {
    describe(name, () => {
      it('reaches the PostgreSQL server (CI=true: a PostgreSQL suite without its server fails)', () => {
        throw new Error(`no PostgreSQL server at ${PG_BASE}: ${problem}`);
      });
    });
    return;
  }
  if (!said) {
    said = true;
    console.log(`PostgreSQL tests skipped: no server at ${PG_BASE} (${problem})`);
  }
  describe.skip(name, fn);
}

/** `base` (a postgres:// URL) naming `schema`. */
export function withSchema(base: string, schema: string): string {
  const u = new URL(base);
  u.searchParams.set('schema', schema);
  return u.toString();
}

const made: string[] = [];
afterAll(async () => {
  if (made.length === 0) return;
  const client = new pg.Client(connection(PG_BASE));
  await client.connect();
  try {
    for (const schema of made.splice(0)) await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
});

/** A URL naming a schema no one has used (not created: `inbox init` creates it); dropped after the file. */
export function freshSchema(): { url: string; schema: string } {
  const schema = `t_${crypto.randomBytes(6).toString('hex')}`;
  made.push(schema);
  return { url: withSchema(PG_BASE, schema), schema };
}

/** A connection to the server (the base URL's database), search_path set to `schema` when given. */
export async function pgClient(schema?: string, url = PG_BASE): Promise<pg.Client> {
  const client = new pg.Client(connection(url, schema ? { options: `-c search_path="${schema}"` } : {}));
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Rows of one query (search_path `schema` when given); int8 and numeric come back as numbers. */
export async function pgRows<T = Record<string, unknown>>(schema: string | undefined, text: string, params: unknown[] = []): Promise<T[]> {
  const client = await pgClient(schema);
  try {
    const r = await client.query({ text, values: params, types: { getTypeParser: numericParser } });
    return r.rows as T[];
  } finally {
    await client.end();
  }
}

/** Runs SQL (several statements allowed without parameters) on the server, search_path `schema` when given. */
export async function pgExec(schema: string | undefined, text: string, params: unknown[] = []): Promise<void> {
  const client = await pgClient(schema);
  try {
    await client.query(text, params);
  } finally {
    await client.end();
  }
}

function numericParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === 20 || oid === 1700) return (v: string) => Number(v);
  return pg.types.getTypeParser(oid, format as 'text') as (value: string) => unknown;
}
