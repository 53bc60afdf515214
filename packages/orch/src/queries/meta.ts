import type { Kysely } from 'kysely';
import type { OrchDatabase } from '../schema.ts';

/** This database's id (made once by migration 3): the owner mark on its worktrees and branches. */
export async function databaseIdIn(db: Kysely<OrchDatabase>): Promise<string> {
  const row = await db.selectFrom('orch_meta').select('value').where('key', '=', 'database_id').executeTakeFirstOrThrow();
  return row.value;
}
