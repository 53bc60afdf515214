import type { Insertable, Kysely, Selectable } from 'kysely';
import type { EventType, OrchDatabase } from '../schema.ts';

export type EventRow = Selectable<OrchDatabase['orch_events']>;
type Db = Kysely<OrchDatabase>;

/** The run's newest event number, or 0. */
export async function lastEventSeq(db: Db, runId: string): Promise<number> {
  const row = await db
    .selectFrom('orch_events')
    .select((eb) => eb.fn.max('seq').as('seq'))
    .where('run_id', '=', runId)
    .executeTakeFirst();
  return Number(row?.seq ?? 0);
}

export async function insertEvent(db: Db, row: Insertable<OrchDatabase['orch_events']>): Promise<EventRow> {
  return db.insertInto('orch_events').values(row).returningAll().executeTakeFirstOrThrow();
}

/** A run's events after `afterSeq` (optionally only some types), in order. */
export async function listEvents(
  db: Db,
  filter: { runId: string; afterSeq: number; types?: readonly EventType[]; taskId?: string; limit: number },
): Promise<EventRow[]> {
  let q = db.selectFrom('orch_events').selectAll().where('run_id', '=', filter.runId).where('seq', '>', filter.afterSeq);
  if (filter.types !== undefined) q = q.where('type', 'in', filter.types);
  if (filter.taskId !== undefined) q = q.where('task_id', '=', filter.taskId);
  return q.orderBy('seq').limit(filter.limit).execute();
}
