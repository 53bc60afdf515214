import { defineCommand, formatTable, idSchema, intFlag } from '@orch/store';
import { z } from 'zod';
import { stateLabel } from '../render.ts';
import { THREAD_STATES } from '../schema.ts';
import { listThreads } from '../threads.ts';
import type { ThreadView } from '../views.ts';
import { withInbox } from './shared.ts';

export const listInput = z.object({
  agent: idSchema.optional(),
  state: z.enum(THREAD_STATES, { error: `must be one of ${THREAD_STATES.join(', ')}` }).optional(),
  limit: intFlag(1, 10_000).optional(),
});

export const command = defineCommand({
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

/** One line per thread, aligned: id, state, agent, claimer, subject. */
export function threadTable(threads: ThreadView[]): string {
  if (threads.length === 0) return 'no threads';
  return formatTable([
    ['THREAD', 'STATE', 'ASSIGNED', 'CLAIMED BY', 'CREATED', 'SUBJECT'],
    ...threads.map((t) => [t.id, stateLabel(t), t.assigned_to, t.claimed_by ?? '-', t.created_at, t.subject]),
  ]);
}
