import { defineCommand, idSchema, intFlag } from '@orch/store';
import { z } from 'zod';
import { threadText } from '../render.ts';
import { showThread } from '../threads.ts';
import { maxBytesField, maxBytesFlag, threadFlag, withInbox } from './shared.ts';

export const showInput = z.object({
  thread: idSchema,
  afterMessage: intFlag(0, Number.MAX_SAFE_INTEGER).optional(),
  limit: intFlag(1, 10_000).optional(),
  maxBytes: maxBytesField,
  lease: idSchema.optional(),
});

export const command = defineCommand({
  name: 'show',
  summary: 'Show a thread and its messages (a page at a time)',
  description:
    'Returns the thread and its messages oldest first, after --after-message, at most --limit of them and about --max-bytes ' +
    'of bodies and payloads (default 8 MiB; one message is always returned). "more": true means later messages were left ' +
    'out: pass "last_message_id" as --after-message for the next page. A lease holder may pass --lease: the lease is ' +
    'checked (exit 5 if lost), and what the page returns counts as given to it, so its next `wait` starts after it.',
  flags: {
    thread: threadFlag,
    'after-message': { type: 'string', describe: 'Only messages with an id greater than this (default 0)' },
    limit: { type: 'string', describe: 'At most this many messages, 1-10000 (default: as many as fit --max-bytes)' },
    'max-bytes': maxBytesFlag,
    lease: { type: 'string', describe: 'Your lease token, if you hold the thread: what this returns counts as delivered to you' },
  },
  examples: [
    '--db ./coord.db show --thread th_123',
    '--db ./coord.db --json show --thread th_123 --after-message 41',
    '--db ./coord.db --json show --thread th_123 --after-message 41 --limit 50',
  ],
  input: showInput,
  run: (ctx, input) =>
    withInbox(ctx, (inbox) =>
      showThread(inbox, { threadId: input.thread, afterMessage: input.afterMessage, limit: input.limit, maxBytes: input.maxBytes, lease: input.lease }),
    ),
  text: (r) =>
    threadText(r.thread, r.messages) + (r.more ? `\n\n(more messages follow: inbox show --thread ${r.thread.id} --after-message ${r.last_message_id})` : ''),
});
