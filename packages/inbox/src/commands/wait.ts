import { defineCommand, idSchema, intFlag } from '@orch/store';
import { z } from 'zod';
import { MAX_LEASE_SECONDS } from '../leases.ts';
import { messagesText } from '../render.ts';
import { waitForMessages } from '../waiting.ts';
import { threadFlag, withInbox } from './shared.ts';

/** How long `inbox wait` waits when no --timeout-seconds is given. */
export const DEFAULT_WAIT_SECONDS = 300;

export const waitInput = z.object({
  thread: idSchema,
  afterMessage: intFlag(0, Number.MAX_SAFE_INTEGER).optional(),
  agent: idSchema.optional(),
  timeoutSeconds: intFlag(0, MAX_LEASE_SECONDS).default(DEFAULT_WAIT_SECONDS),
  lease: idSchema.optional(),
});

export const waitCommand = defineCommand({
  name: 'wait',
  summary: 'Block until someone else writes on the thread (e.g. the answer to your question)',
  description:
    'Returns the new messages from others, or {"timed_out": true} with exit 0 when the timeout passes. ' +
    'Without --after-message, "new" means after your own last message on the thread, so an answer that ' +
    'arrived before you called wait returns at once (if you never wrote on the thread, "new" means after its newest ' +
    'message when wait starts). Also returns when the thread ends (done, failed, cancelled). ' +
    'With --lease, checks the lease first (exit 5 if lost) and keeps it alive while waiting. ' +
    'Pass last_message_id from the output as --after-message to continue. A worker that posted something after ' +
    'asking should pass --after-message <the question\'s message id>; a leader passes --agent <its name>.',
  flags: {
    thread: threadFlag,
    'after-message': { type: 'string', describe: 'Only messages with an id greater than this' },
    agent: { type: 'string', describe: 'Who is waiting (default: the claimer, else the assignee)' },
    'timeout-seconds': { type: 'string', describe: `Give up after this long (default ${DEFAULT_WAIT_SECONDS}, max ${MAX_LEASE_SECONDS})` },
    lease: { type: 'string', describe: 'Your lease token: keep it alive while waiting' },
  },
  examples: [
    '--db ./coord.db --json wait --thread th_123 --lease ls_abc --timeout-seconds 900',
    '--db ./coord.db --json wait --thread th_123 --agent leader --after-message 41',
  ],
  input: waitInput,
  run: (ctx, input) =>
    withInbox(ctx, (inbox) =>
      waitForMessages(inbox, {
        threadId: input.thread,
        afterMessage: input.afterMessage,
        agent: input.agent,
        timeoutSeconds: input.timeoutSeconds,
        lease: input.lease,
      }),
    ),
  text: (r) => {
    if (r.timed_out) return `timed out; nothing new on thread ${r.thread.id} after message #${r.last_message_id}`;
    const ended = r.messages.length === 0 ? `thread ${r.thread.id} is ${r.thread.state}` : messagesText(r.messages);
    return ended;
  },
});
