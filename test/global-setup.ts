import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { newRunId, PG_URL, pgConnectionString, RUN_ID_VAR, schemaPrefix, schemaStartedAt } from './engine-env.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Runs once per vitest project. Bundles the test-only process fixtures (real OS processes that drive
 * the library API), once per run; the CLIs themselves are built by `npm test` before vitest starts.
 * For the `postgres` project it also checks the server (vitest.config.ts leaves that project out,
 * saying so once, when the server is unreachable outside CI; under CI=true an unreachable server
 * fails the run here), names this run's schemas (see test/engine.ts), and returns the teardown that
 * drops them, with any schema of ours older than a day.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  await buildFixtures();
  if (project.config.env?.ORCH_TEST_ENGINE !== 'postgres') return undefined;
  const problem = await pgProblem(PG_URL);
  if (problem !== undefined) {
    throw new Error(
      `the PostgreSQL half of the suite cannot reach its server at ${PG_URL} (${problem}). Start it (.ci/run does: ` +
        'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set ORCH_TEST_PG_URL.',
    );
  }
  const runId = newRunId();
  // Test processes are forked after this and inherit it (see schemaPrefix).
  process.env[RUN_ID_VAR] = runId;
  return async () => {
    await dropSchemas(PG_URL, schemaPrefix(runId));
  };
}

let built: Promise<void> | undefined;

function buildFixtures(): Promise<void> {
  built ??= (async () => {
    const root = path.resolve(import.meta.dirname, '..');
    const outdir = path.join(root, 'test-results/fixtures');
    fs.mkdirSync(outdir, { recursive: true });
    for (const name of fs.readdirSync(path.join(root, 'test/fixtures')).filter((f) => f.endsWith('.ts'))) {
      await build({
        entryPoints: [path.join(root, 'test/fixtures', name)],
        outfile: path.join(outdir, name.replace(/\.ts$/, '.cjs')),
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: 'cjs',
        // Loaded from node_modules at run time, so the native addon is found the usual way (and pg
        // only when a URL asks for it).
        external: ['better-sqlite3', 'pg'],
        logLevel: 'warning',
      });
    }
    if (!fs.existsSync(path.join(root, 'packages/inbox/dist/inbox.cjs'))) {
      throw new Error('packages/inbox/dist/inbox.cjs is missing: run `npm run build` (npm test does it for you)');
    }
  })();
  return built;
}

/** Why the PostgreSQL server at `url` cannot be used (undefined when it can), within a few seconds. */
export async function pgProblem(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: pgConnectionString(url), connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (err) {
    return (err as Error).message || String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Drops every schema named `<prefix>...`, and our schemas (`t_<run>_...`) from runs started over a day ago. */
export async function dropSchemas(url: string, prefix: string, now = Date.now()): Promise<string[]> {
  const client = new pg.Client({ connectionString: pgConnectionString(url), connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const names = (await client.query<{ nspname: string }>("select nspname from pg_namespace where nspname like 't\\_%'")).rows.map((r) => r.nspname);
    const doomed = names.filter((n) => {
      if (n.startsWith(prefix)) return true;
      const started = schemaStartedAt(n);
      return started !== undefined && now - started > DAY_MS;
    });
    for (const n of doomed) await client.query(`drop schema if exists "${n.replace(/"/g, '""')}" cascade`);
    return doomed;
  } finally {
    await client.end();
  }
}
