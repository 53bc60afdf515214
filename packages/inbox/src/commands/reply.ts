import { defineCommand, idSchema, jsonObjectFlag, textFlag } from '@orch/store';
import { z } from 'zod';
import { reply } from '../leader-side.ts';
import { payloadFlag, threadFlag, withInbox } from './shared.ts';

export const replyInput = z.object({
  thread: idSchema,
  body: textFlag('the body'),
  from: idSchema.default('leader'),
  payloadJson: jsonObjectFlag.optional(),
});

export const command = defineCommand({
  name: 'reply',
  summary: 'Answer the worker on a thread (a blocked thread goes back to claimed)',
  description: 'The leader side of ask/wait: posts an answer message, which wakes `inbox wait` on the worker side. Needs no lease.',
  flags: {
    thread: threadFlag,
    body: { type: 'string', describe: 'The answer', required: true },
    from: { type: 'string', describe: 'Author name (default: leader)' },
    'payload-json': payloadFlag,
  },
  examples: ['--db ./coord.db --json reply --thread th_123 --body "Drop the v1 API." --payload-json \'{"decision": "drop"}\''],
  input: replyInput,
  run: (ctx, input) =>
    withInbox(ctx, (inbox) => reply(inbox, { threadId: input.thread, from: ctx.author ?? input.from, body: input.body, payload: input.payloadJson })),
  text: (r) => `answer #${r.message.id} posted on thread ${r.thread.id} (now ${r.thread.state})`,
});
