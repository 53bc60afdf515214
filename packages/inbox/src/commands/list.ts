import { defineCommand, idSchema, intFlag } from '@orch/store';
import { z } from 'zod';
import { threadTable } from '../render.ts';
import { THREAD_STATES } from '../schema.ts';
import { listThreads } from '../threads.ts';
import { withInbox } from './shared.ts';

export const listInput = z.object({
  agent: idSchema.optional(),
  state: z.enum(THREAD_STATES, { error: `must be one of ${THREAD_STATES.join(', ')}` }).optional(),
  limit: intFlag(1, 10_000).optional(),
});

export const listCommand = defineCommand({
  name: 'list',
  summary: 'List threads, newest first',
  flags: {
    agent: { type: 'string', describe: 'Only threads assigned to this agent' },
    state: { type: 'string', describe: `Only threads in this state: ${THREAD_STATES.join('|')}` },
    limit: { type: 'string', describe: 'At most this many threads (default 100)' },
  },
  examples: ['--db ./coord.db list', '--db ./coord.db --json list --agent qa-worker --state open'],
  input: listInput,
  run: (ctx, input) => withInbox(ctx, (inbox) => listThreads(inbox, input)),
  text: (r) => threadTable(r.threads),
});
