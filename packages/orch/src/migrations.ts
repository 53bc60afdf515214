import { sql } from 'kysely';
import { randomPart, type MigrationSet } from '@orch/store';

const list = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(', '));

/** orch's schema history. Append only: never edit a released step. */
export const orchMigrations: MigrationSet = {
  package: 'orch',
  // Migration 3 writes the database's id; a copy carries the source's over (see inbox's copy.ts).
  seeded: ['orch_meta'],
  migrations: [
    {
      version: 1,
      name: 'runs_tasks_attempts_events',
      async up(db) {
        await db.schema
          .createTable('orch_runs')
          .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('goal', 'text', (c) => c.notNull())
          .addColumn('summary', 'text')
          .addColumn('state', 'text', (c) => c.notNull().check(sql`state in (${list(['active', 'done', 'cancelled'])})`))
          .addColumn('created_at', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'integer', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('orch_tasks')
          .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
          .addColumn('run_id', 'text', (c) => c.notNull().references('orch_runs.id'))
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('title', 'text', (c) => c.notNull())
          .addColumn('summary', 'text')
          .addColumn('default_to', 'text')
          .addColumn('acceptance', 'text')
          .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('state', 'text', (c) =>
            c.notNull().check(sql`state in (${list(['pending', 'dispatched', 'running', 'blocked', 'done', 'failed', 'expired', 'cancelled'])})`),
          )
          .addColumn('created_at', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'integer', (c) => c.notNull())
          .addUniqueConstraint('orch_tasks_run_id', ['run_id', 'id'])
          .execute();
        await db.schema
          .createTable('orch_dependencies')
          .addColumn('run_id', 'text', (c) => c.notNull())
          .addColumn('task_id', 'text', (c) => c.notNull())
          .addColumn('depends_on', 'text', (c) => c.notNull())
          .addColumn('created_at', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('orch_dependencies_pk', ['run_id', 'task_id', 'depends_on'])
          .addForeignKeyConstraint('orch_dependencies_task', ['run_id', 'task_id'], 'orch_tasks', ['run_id', 'id'])
          .addForeignKeyConstraint('orch_dependencies_on', ['run_id', 'depends_on'], 'orch_tasks', ['run_id', 'id'])
          .addCheckConstraint('orch_dependencies_not_self', sql`task_id <> depends_on`)
          .execute();
        await db.schema.createIndex('orch_dependencies_reverse').on('orch_dependencies').columns(['run_id', 'depends_on']).execute();
        await db.schema
          .createTable('orch_attempts')
          .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('run_id', 'text', (c) => c.notNull())
          .addColumn('task_id', 'text', (c) => c.notNull())
          .addColumn('number', 'integer', (c) => c.notNull())
          .addColumn('assigned_to', 'text', (c) => c.notNull())
          .addColumn('execution_mode', 'text', (c) => c.notNull().check(sql`execution_mode in ('analysis', 'code')`))
          .addColumn('thread_id', 'text', (c) => c.notNull().unique())
          .addColumn('state', 'text', (c) =>
            c.notNull().check(sql`state in (${list(['dispatched', 'running', 'blocked', 'done', 'failed', 'expired', 'cancelled'])})`),
          )
          .addColumn('body', 'text', (c) => c.notNull())
          .addColumn('repo_path', 'text')
          .addColumn('workspace_root', 'text')
          .addColumn('base_ref', 'text')
          .addColumn('base_commit', 'text')
          .addColumn('worktree_path', 'text')
          .addColumn('branch', 'text')
          .addColumn('merged_at', 'integer')
          .addColumn('merged_into', 'text')
          .addColumn('merge_commit', 'text')
          .addColumn('merged_head', 'text')
          .addColumn('worktree_removed_at', 'integer')
          .addColumn('branch_deleted_at', 'integer')
          .addColumn('result', 'text')
          .addColumn('claims_seen', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('last_message_id', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'integer', (c) => c.notNull())
          .addColumn('ended_at', 'integer')
          .addUniqueConstraint('orch_attempts_number', ['run_id', 'task_id', 'number'])
          .addForeignKeyConstraint('orch_attempts_task', ['run_id', 'task_id'], 'orch_tasks', ['run_id', 'id'])
          .execute();
        // Reconcile reads a run's live attempts.
        await db.schema.createIndex('orch_attempts_run_state').on('orch_attempts').columns(['run_id', 'state']).execute();
        await db.schema
          .createTable('orch_events')
          .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
          .addColumn('run_id', 'text', (c) => c.notNull().references('orch_runs.id'))
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('task_id', 'text')
          .addColumn('attempt_id', 'text')
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('created_at', 'integer', (c) => c.notNull())
          .addUniqueConstraint('orch_events_run_seq', ['run_id', 'seq'])
          .execute();
      },
    },
    {
      version: 2,
      name: 'readiness_indexes',
      async up(db) {
        // Readiness in SQL (`ready`, `dispatch`): each task's dependencies' states, and whether a
        // task has a live attempt, read from indexes alone.
        await db.schema.createIndex('orch_tasks_run_id_state').on('orch_tasks').columns(['run_id', 'id', 'state']).execute();
        await db.schema.createIndex('orch_attempts_run_task_state').on('orch_attempts').columns(['run_id', 'task_id', 'state']).execute();
      },
    },
    {
      version: 3,
      name: 'database_id',
      async up(db) {
        // Settings of this database, one row each. `database_id` is made once, here, at random:
        // worktrees and branches carry it (as git config) so that several databases sharing one
        // repository never take over or remove each other's.
        await db.schema
          .createTable('orch_meta')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
        await db
          .insertInto('orch_meta')
          .values({ key: 'database_id', value: `db_${randomPart()}` })
          .execute();
      },
    },
    {
      version: 4,
      name: 'attempt_remote',
      async up(db) {
        // Code mode across machines: the git remote an attempt's branch travels through (null for
        // an attempt whose worktree is on the leader's disk).
        await db.schema.alterTable('orch_attempts').addColumn('remote_url', 'text').execute();
      },
    },
  ],
};
