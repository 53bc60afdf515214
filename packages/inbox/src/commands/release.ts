import { defineCommand, idSchema } from '@orch/store';
import { z } from 'zod';
import { release } from '../leases.ts';
import { leaseFlag, threadFlag, withInbox } from './shared.ts';

export const releaseInput = z.object({ thread: idSchema, lease: idSchema });

export const command = defineCommand({
  name: 'release',
  summary: 'Give a thread back unfinished: it is open again for its agent to claim',
  flags: { thread: threadFlag, lease: leaseFlag },
  examples: ['--db ./coord.db --json release --thread th_123 --lease ls_abc'],
  input: releaseInput,
  run: (ctx, input) => withInbox(ctx, (inbox) => release(inbox, { threadId: input.thread, lease: input.lease })),
  text: (r) => `released thread ${r.thread.id}; it is open again`,
});
