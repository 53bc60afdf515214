import { sql } from 'kysely';
import type { MigrationSet } from '@orch/store';

/** The inbox's schema history. Append only: never edit a released step. */
export const inboxMigrations: MigrationSet = {
  package: 'inbox',
  migrations: [
    {
      version: 1,
      name: 'threads_and_messages',
      async up(db) {
        await db.schema
          .createTable('inbox_threads')
          .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('assigned_to', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) =>
            c.notNull().check(sql`state in ('open', 'claimed', 'blocked', 'done', 'failed', 'cancelled')`),
          )
          .addColumn('claimed_by', 'text')
          .addColumn('lease_token', 'text')
          .addColumn('lease_expires_at', 'integer')
          .addColumn('lease_ms', 'integer')
          .addColumn('claim_count', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'integer', (c) => c.notNull())
          .addColumn('updated_at', 'integer', (c) => c.notNull())
          .execute();
        // Serves claim (oldest claimable for an agent) and list --agent --state.
        await db.schema.createIndex('inbox_threads_agent_state').on('inbox_threads').columns(['assigned_to', 'state', 'seq']).execute();
        await db.schema.createIndex('inbox_threads_state').on('inbox_threads').columns(['state', 'seq']).execute();
        await db.schema
          .createTable('inbox_messages')
          .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
          .addColumn('thread_id', 'text', (c) => c.notNull().references('inbox_threads.id'))
          .addColumn('author', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) =>
            c.notNull().check(sql`kind in ('task', 'progress', 'question', 'answer', 'result', 'failure', 'note')`),
          )
          .addColumn('body', 'text', (c) => c.notNull())
          .addColumn('payload', 'text')
          .addColumn('created_at', 'integer', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('inbox_messages_thread').on('inbox_messages').columns(['thread_id', 'id']).execute();
      },
    },
    {
      version: 2,
      name: 'held_threads_by_lease_expiry',
      async up(db) {
        // Finding an agent's threads whose lease ran out without scanning every thread it holds.
        await db.schema
          .createIndex('inbox_threads_held_expiry')
          .on('inbox_threads')
          .columns(['assigned_to', 'lease_expires_at'])
          .where(sql.ref('state'), 'in', sql`('claimed', 'blocked')`)
          .execute();
      },
    },
    {
      version: 3,
      name: 'drop_threads_by_state',
      async up(db) {
        // Every claim, result and failure moved two entries of this index, about a quarter of what
        // such a commit writes, for listing threads by state across all agents (`list --state`
        // without `--agent`, doctor), which a scan newest-first serves well enough.
        await db.schema.dropIndex('inbox_threads_state').execute();
      },
    },
  ],
};
