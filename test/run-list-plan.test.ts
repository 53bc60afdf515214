// `orch run list`'s last_activity reads each listed run's newest event. On a database of many
// runs and events it must take one index step per run: a GROUP BY max(seq) over the listed runs
// read every event of them (SQLite) or the whole events table (PostgreSQL's plan: a sequential
// scan). Plans, not timings: this holds on any machine.
import { DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from 'kysely';
import { describe, expect, it } from 'vitest';
import { lastEventTimes } from '../packages/orch/src/queries/runs.ts';
import type { OrchDatabase } from '../packages/orch/src/schema.ts';
import { freshDb, onPostgres, rawSql } from './engine.ts';
import { ok, orchOk, tempDir } from './helpers.ts';

/** The statement lastEventTimes runs for `runIds`, with its values (`?` placeholders: rawSql turns them into `$n` on PostgreSQL). */
async function compiled(runIds: string[]): Promise<{ sql: string; params: readonly unknown[] }> {
  const seen: { sql: string; params: readonly unknown[] }[] = [];
  const db = new Kysely<OrchDatabase>({
    dialect: {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (k) => new SqliteIntrospector(k),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    },
    log: (e) => void seen.push({ sql: e.query.sql, params: e.query.parameters }),
  });
  await lastEventTimes(db, runIds);
  expect(seen).toHaveLength(1);
  return seen[0]!;
}

/**
 * 3,000 runs of 20 events each, and one of 30,000 events. Only the two tables are analysed: a bare
 * ANALYZE locks every table of every schema in the database at once, and on a PostgreSQL server
 * holding many test schemas that runs out of the lock table ("out of shared memory").
 */
function seed(db: string): void {
  const runs = onPostgres
    ? 'generate_series(1, 3000) as n(i)'
    : '(with recursive n(i) as (select 1 union all select i + 1 from n where i < 3000) select i from n) as n';
  const seqs = (to: number) =>
    onPostgres ? `generate_series(1, ${to}) as s(j)` : `(with recursive s(j) as (select 1 union all select j + 1 from s where j < ${to}) select j from s) as s`;
  rawSql(
    db,
    `insert into orch_runs (id, goal, state, created_at, updated_at) select 'p' || i, 'g', 'active', 1000 + i, 1000 + i from ${runs};
     insert into orch_events (run_id, seq, type, data, created_at) select 'p' || i, j, 'x', '{}', 2000 + i * 100 + j from ${runs}, ${seqs(20)};
     insert into orch_events (run_id, seq, type, data, created_at) select 'p7', 20 + j, 'x', '{}', 900000 + j from ${seqs(30000)};
     analyze orch_runs;
     analyze orch_events;`,
  );
}

describe("run list's last_activity on many runs", () => {
  it('takes one index step per listed run, never a scan of the events', async () => {
    const db = freshDb(tempDir());
    ok(db, ['init']);
    orchOk(db, ['run', 'init', '--run', 'r0', '--goal', 'g']);
    seed(db);
    const ids = Array.from({ length: 100 }, (_, i) => `p${i + 1}`);
    const q = await compiled(ids);
    if (onPostgres) {
      const plan = rawSql<{ 'QUERY PLAN': string }>(db, `explain ${q.sql}`, q.params)
        .map((r) => r['QUERY PLAN'])
        .join('\n');
      expect(plan).not.toMatch(/Seq Scan on orch_events/);
      expect(plan).toMatch(/Limit[\s\S]*Index (Only )?Scan Backward using orch_events_run_seq on orch_events/);
    } else {
      const plan = rawSql<{ detail: string }>(db, `explain query plan ${q.sql}`, q.params).map((r) => r.detail);
      expect(plan.filter((d) => /^SCAN (orch_events|e)\b/.test(d))).toEqual([]);
      // The newest event of each run is a correlated lookup (one seek), not a group over all its events.
      expect(plan.some((d) => /CORRELATED SCALAR SUBQUERY/.test(d))).toBe(true);
      expect(plan.some((d) => /MATERIALIZE|GROUP BY/.test(d))).toBe(false);
    }
    // And the answer is right: each run's newest event, the large run's included.
    const list = orchOk(db, ['run', 'list', '--limit', '3001']).runs as { id: string; last_activity: string }[];
    expect(list.find((r) => r.id === 'p7')?.last_activity).toBe(new Date(900000 + 30000).toISOString());
    expect(list.find((r) => r.id === 'p8')?.last_activity).toBe(new Date(2000 + 800 + 20).toISOString());
  });
});
