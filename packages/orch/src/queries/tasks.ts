import type { Insertable, Kysely, Selectable } from 'kysely';
import type { OrchDatabase, TaskState } from '../schema.ts';

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

/** Adds an edge; returns false when it already existed. */
export async function insertDependency(db: Db, row: DependencyRow): Promise<boolean> {
  const result = await db.insertInto('orch_dependencies').values(row).onConflict((oc) => oc.doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}
