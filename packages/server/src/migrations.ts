import { sql, type Generated } from 'kysely';
import type { MigrationSet } from '@orch/store';

/**
 * The server's schema history (its tokens). Append only: never edit a released step. Applied by
 * the first `orch token create` on a database (an inbox database: `inbox init` first); a database
 * that never had a token has none of these tables, and a server on it serves loopback only.
 */
export const serverMigrations: MigrationSet = {
  package: 'server',
  migrations: [
    {
      version: 1,
      name: 'tokens',
      async up(db) {
        await db.schema
          .createTable('server_tokens')
          .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('leader', 'worker')`))
          .addColumn('agent', 'text')
          // The token itself is never stored: only the hex SHA-256 of its text.
          .addColumn('hash', 'text', (c) => c.notNull().unique())
          .addColumn('created_at', 'integer', (c) => c.notNull())
          .addColumn('expires_at', 'integer')
          .addColumn('revoked_at', 'integer')
          .addColumn('last_used_at', 'integer')
          .addCheckConstraint('server_tokens_worker_agent', sql`(role = 'worker') = (agent is not null)`)
          .execute();
        await db.schema.createIndex('server_tokens_name').on('server_tokens').columns(['name']).execute();
      },
    },
  ],
};

/** The tables serverMigrations creates, as Kysely sees them. */
export interface ServerDatabase {
  server_tokens: {
    seq: Generated<number>;
    id: string;
    name: string;
    role: 'leader' | 'worker';
    agent: string | null;
    hash: string;
    created_at: number;
    expires_at: number | null;
    revoked_at: number | null;
    last_used_at: number | null;
  };
}
