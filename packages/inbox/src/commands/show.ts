import { defineCommand, idSchema, intFlag } from '@orch/store';
import { z } from 'zod';
import { threadText } from '../render.ts';
import { showThread } from '../threads.ts';
import { threadFlag, withInbox } from './shared.ts';

export const showInput = z.object({
  thread: idSchema,
  afterMessage: intFlag(0, Number.MAX_SAFE_INTEGER).optional(),
});

export const showCommand = defineCommand({
  name: 'show',
  summary: 'Show a thread and its messages',
  flags: {
    thread: threadFlag,
    'after-message': { type: 'string', describe: 'Only messages with an id greater than this' },
  },
  examples: ['--db ./coord.db show --thread th_123', '--db ./coord.db --json show --thread th_123 --after-message 41'],
  input: showInput,
  run: (ctx, input) => withInbox(ctx, (inbox) => showThread(inbox, { threadId: input.thread, afterMessage: input.afterMessage })),
  text: (r) => threadText(r.thread, r.messages),
});
