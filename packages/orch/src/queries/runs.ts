import type { Insertable, Kysely, Selectable } from 'kysely';
import { LIVE_ATTEMPT_STATES, type OrchDatabase, type RunState, type TaskState } from '../schema.ts';

export type RunRow = Selectable<OrchDatabase['orch_runs']>;
type Db = Kysely<OrchDatabase>;

export async function insertRun(db: Db, row: Insertable<OrchDatabase['orch_runs']>): Promise<RunRow> {
  return db.insertInto('orch_runs').values(row).returningAll().executeTakeFirstOrThrow();
}

export async function getRun(db: Db, id: string): Promise<RunRow | undefined> {
  return db.selectFrom('orch_runs').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Runs newest first. */
export async function listRuns(db: Db, filter: { state?: RunState; limit: number }): Promise<RunRow[]> {
  let q = db.selectFrom('orch_runs').selectAll();
  if (filter.state !== undefined) q = q.where('state', '=', filter.state);
  return q.orderBy('seq', 'desc').limit(filter.limit).execute();
}

export async function setRunState(db: Db, args: { id: string; state: RunState; now: number }): Promise<RunRow> {
  return db.updateTable('orch_runs').set({ state: args.state, updated_at: args.now }).where('id', '=', args.id).returningAll().executeTakeFirstOrThrow();
}

/** Number of tasks in each state, for one run or for each of several. */
export async function taskCounts(db: Db, runIds: string[]): Promise<{ run_id: string; state: TaskState; n: number }[]> {
  if (runIds.length === 0) return [];
  const rows = await db
    .selectFrom('orch_tasks')
    .select(['run_id', 'state', (eb) => eb.fn.countAll<number>().as('n')])
    .where('run_id', 'in', runIds)
    .groupBy(['run_id', 'state'])
    .execute();
  return rows.map((r) => ({ run_id: r.run_id, state: r.state, n: Number(r.n) }));
}

/**
 * The active runs that have a live (dispatched, running or blocked) attempt, oldest first: the only
 * runs a reconcile can leave with a blocked task. One index seek per active run, in one statement.
 */
export async function activeRunIdsWithLiveAttempts(db: Db): Promise<string[]> {
  const rows = await db
    .selectFrom('orch_runs as r')
    .select('r.id')
    .where('r.state', '=', 'active')
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('orch_attempts as a')
          .select('a.run_id')
          .whereRef('a.run_id', '=', 'r.id')
          .where('a.state', 'in', [...LIVE_ATTEMPT_STATES]),
      ),
    )
    .orderBy('r.seq')
    .execute();
  return rows.map((r) => r.id);
}

/**
 * When each run's newest event was written (runs without events are left out). One backward step
 * on the (run_id, seq) index per run: a GROUP BY max(seq) read every event of the runs on SQLite
 * and the whole table on PostgreSQL.
 */
export async function lastEventTimes(db: Db, runIds: string[]): Promise<Map<string, number>> {
  if (runIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('orch_runs as r')
    .where('r.id', 'in', runIds)
    .select([
      'r.id',
      (eb) => eb.selectFrom('orch_events as e').select('e.created_at').whereRef('e.run_id', '=', 'r.id').orderBy('e.seq', 'desc').limit(1).as('created_at'),
    ])
    .execute();
  return new Map(rows.flatMap((r) => (r.created_at === null || r.created_at === undefined ? [] : [[r.id, Number(r.created_at)] as const])));
}
