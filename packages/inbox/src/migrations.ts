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
          .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('open', 'claimed', 'blocked', 'done', 'failed', 'cancelled')`))
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
          .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('task', 'progress', 'question', 'answer', 'result', 'failure', 'note')`))
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
    {
      version: 4,
      name: 'message_roles_and_delivery_marks',
      async up(db) {
        // Who wrote a message, recorded by the call that wrote it. The default only serves rows
        // inserted by hand; every insert of this code names the role.
        await db.schema
          .alterTable('inbox_messages')
          .addColumn('role', 'text', (c) => c.notNull().defaultTo('worker').check(sql`role in ('leader', 'worker', 'runner', 'person')`))
          .execute();
        // Before roles, only a lease holder wrote progress, questions, results and failures; tasks,
        // answers and notes came from the leader's side.
        await db.updateTable('inbox_messages').set({ role: 'leader' }).where('kind', 'in', ['task', 'answer', 'note']).execute();
        await db.schema.alterTable('inbox_threads').addColumn('delivered_message_id', 'integer').execute();
        // A lease held across the upgrade: what the holder was given is what the old default cursor
        // assumed, its own last message (or, if it wrote nothing, the newest one).
        await sql`
          update inbox_threads set delivered_message_id = coalesce(
            (select max(m.id) from inbox_messages m where m.thread_id = inbox_threads.id and m.author = inbox_threads.claimed_by and m.role = 'worker'),
            (select max(m.id) from inbox_messages m where m.thread_id = inbox_threads.id))
          where lease_token is not null`.execute(db);
      },
    },
  ],
};
