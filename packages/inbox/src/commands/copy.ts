import path from 'node:path';
import { defineCommand, isPostgresUrl, type CommandDefinition } from '@orch/store';
import { z } from 'zod';
import { copyDatabase, type CopyPackage, type CopyResult } from '../copy.ts';
import { initHint } from '../inbox.ts';
import { inboxMigrations } from '../migrations.ts';

export const copyInput = z.object({
  from: z.string({ error: 'is required: the SQLite database file to copy' }).min(1, 'is required: the SQLite database file to copy'),
  to: z.string({ error: 'is required: the PostgreSQL URL to copy into' }).min(1, 'is required: the PostgreSQL URL to copy into'),
});

/** What `inbox copy` can create on the target: the inbox's tables. */
export const inboxCopyPackage: CopyPackage = { migrations: inboxMigrations, upgradeHint: initHint };

/**
 * The copy command of a CLI that knows `packages` (inbox's own: the inbox tables; orch's: the
 * inbox's and orch's). A source holding tables of a package it does not know is refused.
 */
export function copyCommand(program: string, packages: CopyPackage[]): CommandDefinition {
  const names = packages.map((p) => p.migrations.package).join(' and ');
  return defineCommand({
    name: 'copy',
    summary: 'Copy a SQLite database into an empty PostgreSQL schema (moving to a server)',
    description:
      `Copies every table of the SQLite file --from (the ${names} tables) into the PostgreSQL schema --to: creates the ` +
      'tables there if needed (the same schema versions), then copies every row in one transaction (all or nothing: ' +
      'interrupted, it leaves the target without data and can simply be run again), ids, timestamps and text unchanged, ' +
      "sets the id counters past the copied ids, and checks every table's row count. The source is only read (one " +
      'snapshot; it may be in use, but writes made to it during the copy are not copied: stop its writers first). ' +
      'Refused: a --to that is not a postgres:// URL (exit 2); a source that is missing, not initialised, older than ' +
      'this code (upgrade it first: the message says how) or newer (exit 6); a target that already holds data (exit 4, ' +
      'nothing written); a source holding tables of a package this CLI does not know (exit 6, DB_FOREIGN: `inbox copy` ' +
      `cannot create orch's tables, \`orch copy\` copies both). Takes no --db. A URL's password is never printed.`,
    usesDb: false,
    flags: {
      from: { type: 'string', describe: 'The SQLite database file to copy (only read)', required: true },
      to: {
        type: 'string',
        describe: 'The PostgreSQL URL to copy into: postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE?schema=NAME (empty of data)',
        required: true,
      },
    },
    examples: [
      `copy --from ./coord.db --to 'postgres://agents@db.example:5432/work?schema=project_a'`,
      `--json copy --from ./coord.db --to 'postgres://127.0.0.1/work?schema=project_a'`,
    ],
    input: copyInput,
    run: (ctx, input): Promise<CopyResult> =>
      copyDatabase({
        // A URL is left as it is, for copyDatabase to refuse.
        from: input.from === '' || isPostgresUrl(input.from) ? input.from : path.resolve(ctx.cwd, input.from),
        to: input.to,
        packages,
        ...(ctx.nativeBinding ? { nativeBinding: ctx.nativeBinding } : {}),
      }),
    text: (r: CopyResult) =>
      [
        `copied ${r.from} to ${r.to} (schema ${Object.entries(r.schema_version)
          .map(([pkg, v]) => `${pkg} v${v}`)
          .join(', ')}): ${r.rows} rows, every count checked`,
        ...Object.entries(r.tables).map(([table, t]) => `  ${table}: ${t.rows} rows`),
        `use it with ${program} --db '${r.to}' ...`,
      ].join('\n'),
  });
}

export const command = copyCommand('inbox', [inboxCopyPackage]);
