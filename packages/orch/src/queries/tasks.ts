import type { Insertable, Kysely, Selectable } from 'kysely';
import { LIVE_ATTEMPT_STATES, type OrchDatabase, type TaskState } from '../schema.ts';

export type TaskRow = Selectable<OrchDatabase['orch_tasks']>;
export type DependencyRow = Selectable<OrchDatabase['orch_dependencies']>;
type Db = Kysely<OrchDatabase>;

export async function insertTask(db: Db, row: Insertable<OrchDatabase['orch_tasks']>): Promise<TaskRow> {
  return db.insertInto('orch_tasks').values(row).returningAll().executeTakeFirstOrThrow();
}

export async function getTask(db: Db, runId: string, id: string): Promise<TaskRow | undefined> {
  return db.selectFrom('orch_tasks').selectAll().where('run_id', '=', runId).where('id', '=', id).executeTakeFirst();
}

/** A run's tasks in insertion order. */
export async function listTasks(db: Db, runId: string): Promise<TaskRow[]> {
  return db.selectFrom('orch_tasks').selectAll().where('run_id', '=', runId).orderBy('seq').execute();
}

export async function setTaskState(db: Db, args: { runId: string; id: string; state: TaskState; now: number }): Promise<TaskRow> {
  return db
    .updateTable('orch_tasks')
    .set({ state: args.state, updated_at: args.now })
    .where('run_id', '=', args.runId)
    .where('id', '=', args.id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Every dependency edge of a run. */
export async function listDependencies(db: Db, runId: string): Promise<DependencyRow[]> {
  return db.selectFrom('orch_dependencies').selectAll().where('run_id', '=', runId).orderBy('created_at').execute();
}

/** The tasks that depend directly on `taskId`, in the order the edges were added. */
export async function listDependents(db: Db, runId: string, taskId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('orch_dependencies')
    .select('task_id')
    .where('run_id', '=', runId)
    .where('depends_on', '=', taskId)
    .orderBy('created_at')
    .orderBy('task_id')
    .execute();
  return rows.map((r) => r.task_id);
}

/** Adds an edge; returns false when it already existed. */
export async function insertDependency(db: Db, row: DependencyRow): Promise<boolean> {
  const result = await db
    .insertInto('orch_dependencies')
    .values(row)
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

/** How many tasks the run has, how many are done, and how many are neither done nor cancelled. */
export async function taskCounts(db: Db, runId: string): Promise<{ total: number; done: number; unfinished: number }> {
  const row = await db
    .selectFrom('orch_tasks')
    .select((eb) => [
      eb.fn.countAll<number>().as('total'),
      eb.fn.sum<number | null>(eb.case().when('state', '=', 'done').then(1).else(0).end()).as('done'),
      eb.fn.sum<number | null>(eb.case().when('state', 'not in', ['done', 'cancelled']).then(1).else(0).end()).as('unfinished'),
    ])
    .where('run_id', '=', runId)
    .executeTakeFirstOrThrow();
  return { total: Number(row.total), done: Number(row.done ?? 0), unfinished: Number(row.unfinished ?? 0) };
}

/** One task's dependencies (in the order they were added) with each one's state. */
export async function dependencyStates(db: Db, runId: string, taskId: string): Promise<{ depends_on: string; state: TaskState }[]> {
  return db
    .selectFrom('orch_dependencies as d')
    .innerJoin('orch_tasks as dt', (j) => j.onRef('dt.run_id', '=', 'd.run_id').onRef('dt.id', '=', 'd.depends_on'))
    .select(['d.depends_on', 'dt.state'])
    .where('d.run_id', '=', runId)
    .where('d.task_id', '=', taskId)
    .orderBy('d.created_at')
    .orderBy('d.depends_on')
    .execute();
}

/** Whether the task has an attempt in a live state. */
export async function hasLiveAttempt(db: Db, runId: string, taskId: string): Promise<boolean> {
  const row = await db
    .selectFrom('orch_attempts')
    .select('seq')
    .where('run_id', '=', runId)
    .where('task_id', '=', taskId)
    .where('state', 'in', LIVE_ATTEMPT_STATES)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * The run's ready tasks, computed in SQL: not done or cancelled, no dependency whose task is not
 * done, no live attempt. One row per (task, dependency) (`depends_on` null for a task without
 * any), highest priority first, then oldest, then dependencies in the order they were added;
 * `attempts` counts the task's attempts so far. Every lookup is an index search (schema v2).
 */
export async function listReadyTaskEdges(db: Db, runId: string): Promise<(TaskRow & { depends_on: string | null; attempts: number })[]> {
  return db
    .selectFrom('orch_tasks as t')
    .leftJoin('orch_dependencies as d', (j) => j.onRef('d.run_id', '=', 't.run_id').onRef('d.task_id', '=', 't.id'))
    .selectAll('t')
    .select('d.depends_on')
    .select((eb) =>
      eb
        .selectFrom('orch_attempts as a')
        .select(eb.fn.countAll<number>().as('n'))
        .whereRef('a.run_id', '=', 't.run_id')
        .whereRef('a.task_id', '=', 't.id')
        .as('attempts'),
    )
    .where('t.run_id', '=', runId)
    .where('t.state', 'not in', ['done', 'cancelled'])
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('orch_attempts as l')
            .select('l.seq')
            .whereRef('l.run_id', '=', 't.run_id')
            .whereRef('l.task_id', '=', 't.id')
            .where('l.state', 'in', LIVE_ATTEMPT_STATES),
        ),
      ),
    )
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          // Nested (not a join), so the plan walks the task's own edges, then looks each one up.
          selectFrom('orch_dependencies as w')
            .select('w.depends_on')
            .whereRef('w.run_id', '=', 't.run_id')
            .whereRef('w.task_id', '=', 't.id')
            .where((eb) =>
              eb.exists(
                eb
                  .selectFrom('orch_tasks as wt')
                  .select('wt.seq')
                  .whereRef('wt.run_id', '=', 'w.run_id')
                  .whereRef('wt.id', '=', 'w.depends_on')
                  .where('wt.state', '!=', 'done'),
              ),
            ),
        ),
      ),
    )
    .orderBy('t.priority', 'desc')
    .orderBy('t.seq')
    .orderBy('d.created_at')
    .orderBy('d.depends_on')
    .execute() as Promise<(TaskRow & { depends_on: string | null; attempts: number })[]>;
}

/**
 * Done tasks whose latest attempt is a code attempt `orch merge` has not recorded (their work has
 * not landed anywhere yet), in insertion order.
 */
export async function unmergedDoneTasks(db: Db, runId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('orch_tasks as t')
    .innerJoin('orch_attempts as a', (j) => j.onRef('a.run_id', '=', 't.run_id').onRef('a.task_id', '=', 't.id'))
    .select('t.id')
    .where('t.run_id', '=', runId)
    .where('t.state', '=', 'done')
    .where('a.execution_mode', '=', 'code')
    .where('a.merged_at', 'is', null)
    .where('a.number', '=', (eb) =>
      eb
        .selectFrom('orch_attempts as m')
        .select((m) => m.fn.max('m.number').as('n'))
        .whereRef('m.run_id', '=', 't.run_id')
        .whereRef('m.task_id', '=', 't.id'),
    )
    .orderBy('t.seq')
    .execute();
  return rows.map((r) => r.id);
}
