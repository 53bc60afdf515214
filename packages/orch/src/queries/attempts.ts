import type { Insertable, Kysely, Selectable, Updateable } from 'kysely';
import type { AttemptState, OrchDatabase } from '../schema.ts';

export type AttemptRow = Selectable<OrchDatabase['orch_attempts']>;
type Db = Kysely<OrchDatabase>;

export async function insertAttempt(db: Db, row: Insertable<OrchDatabase['orch_attempts']>): Promise<AttemptRow> {
  return db.insertInto('orch_attempts').values(row).returningAll().executeTakeFirstOrThrow();
}

export async function getAttempt(db: Db, id: string): Promise<AttemptRow | undefined> {
  return db.selectFrom('orch_attempts').selectAll().where('id', '=', id).executeTakeFirst();
}

/** A run's attempts (optionally of one task, optionally in some states), oldest first. */
export async function listAttempts(db: Db, filter: { runId: string; taskId?: string; states?: readonly AttemptState[] }): Promise<AttemptRow[]> {
  let q = db.selectFrom('orch_attempts').selectAll().where('run_id', '=', filter.runId);
  if (filter.taskId !== undefined) q = q.where('task_id', '=', filter.taskId);
  if (filter.states !== undefined) q = q.where('state', 'in', filter.states);
  return q.orderBy('seq').execute();
}

/** The newest attempt of a task, if any. */
export async function latestAttempt(db: Db, runId: string, taskId: string): Promise<AttemptRow | undefined> {
  return db
    .selectFrom('orch_attempts')
    .selectAll()
    .where('run_id', '=', runId)
    .where('task_id', '=', taskId)
    .orderBy('number', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export async function updateAttempt(db: Db, id: string, changes: Updateable<OrchDatabase['orch_attempts']>): Promise<AttemptRow> {
  return db.updateTable('orch_attempts').set(changes).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
}

/** The attempt whose worktree is at `worktreePath`, if any. */
export async function attemptByWorktree(db: Db, worktreePath: string): Promise<AttemptRow | undefined> {
  return db.selectFrom('orch_attempts').selectAll().where('worktree_path', '=', worktreePath).executeTakeFirst();
}
