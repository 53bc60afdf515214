import type { Kysely } from 'kysely';
import type { OrchDatabase } from '../schema.ts';
import type { EventRow } from './events.ts';

type Db = Kysely<OrchDatabase>;

/** Run ids, oldest first. */
export async function allRunIds(db: Db): Promise<string[]> {
  return (await db.selectFrom('orch_runs').select('id').orderBy('seq').execute()).map((r) => r.id);
}

/** How many events the run has and its highest number: equal when 1..N has no gap. */
export async function eventSeqSpan(db: Db, runId: string): Promise<{ count: number; max: number; min: number }> {
  const row = await db
    .selectFrom('orch_events')
    .select((eb) => [eb.fn.countAll<number>().as('count'), eb.fn.max('seq').as('max'), eb.fn.min('seq').as('min')])
    .where('run_id', '=', runId)
    .executeTakeFirstOrThrow();
  return { count: Number(row.count), max: Number(row.max ?? 0), min: Number(row.min ?? 0) };
}

/** The newest event of each task that reports the task's state (`data.task_state`), by task id. */
export async function latestTaskStateEvents(db: Db, runId: string): Promise<Map<string, EventRow>> {
  const rows = await db.selectFrom('orch_events').selectAll().where('run_id', '=', runId).where('task_id', 'is not', null).orderBy('seq').execute();
  const latest = new Map<string, EventRow>();
  for (const e of rows) {
    if (e.task_id === null) continue;
    const data = JSON.parse(e.data) as { task_state?: unknown };
    if (typeof data.task_state === 'string') latest.set(e.task_id, e);
  }
  return latest;
}
