import { defineCommand } from '@orch/store';
import { z } from 'zod';
import { initInbox, type InitResult } from '../inbox.ts';

export const initInput = z.object({});

export const command = defineCommand({
  name: 'init',
  summary: 'Create the database, or upgrade it to this version; safe to run again',
  description:
    'Creates the file with owner-only permissions in WAL mode (for a postgres:// URL: the schema named by ?schema=, ' +
    'default public) and applies any missing schema steps. Running it on a current database changes nothing, and ' +
    'several at once are safe. Every other command needs it to have run once.',
  flags: {},
  examples: ['--db ./coord.db init', '--db ./coord.db --json init', "--db 'postgres://orch@db.internal:5432/agents?schema=blog' init"],
  input: initInput,
  run: (ctx): Promise<InitResult> => initInbox({ path: ctx.dbPath, clock: ctx.clock, ...(ctx.nativeBinding ? { nativeBinding: ctx.nativeBinding } : {}) }),
  text: (r) => {
    const versions = Object.entries(r.schema_version)
      .map(([pkg, v]) => `${pkg} v${v}`)
      .join(', ');
    const applied = r.applied.length === 0 ? 'already up to date' : `applied ${r.applied.map((a) => `${a.package} ${a.version} (${a.name})`).join(', ')}`;
    return `${r.path}: schema ${versions}; ${applied}`;
  },
});
