import { LONG_LIVED_RECONNECT_MS, defineCommand, idSchema, intFlag } from '@orch/store';
import { z } from 'zod';
import { MAX_LEASE_SECONDS } from '../leases.ts';
import { messagesText } from '../render.ts';
import { waitForMessages } from '../waiting.ts';
import { maxBytesField, maxBytesFlag, threadFlag, withInbox } from './shared.ts';

/** How long `inbox wait` waits when no --timeout-seconds is given. */
export const DEFAULT_WAIT_SECONDS = 300;

export const waitInput = z
  .object({
    thread: idSchema,
    afterMessage: intFlag(0, Number.MAX_SAFE_INTEGER).optional(),
    agent: idSchema.optional(),
    as: z.enum(['worker', 'leader'], { error: 'must be worker or leader' }).optional(),
    timeoutSeconds: intFlag(0, MAX_LEASE_SECONDS).default(DEFAULT_WAIT_SECONDS),
    lease: idSchema.optional(),
    maxBytes: maxBytesField,
  })
  .superRefine((v, ctx) => {
    if (v.lease !== undefined && v.as === 'leader') {
      ctx.addIssue({ code: 'custom', path: ['as'], message: 'a lease holder waits as the worker side; drop --as leader or --lease' });
    }
  });

export const command = defineCommand({
  name: 'wait',
  summary: 'Block until the other side writes on the thread (e.g. the answer to your question)',
  description:
    'Returns the new messages from the other side, or {"timed_out": true} with exit 0 when the timeout passes. ' +
    'Who wrote a message is the role it was recorded with (leader, worker, runner, person), never its author name. ' +
    'With --lease you wait as the worker holding that lease: you get what the leader side wrote that your lease has not ' +
    'been given yet (claim, earlier waits and `show --lease` give messages), so an answer that arrived before you called ' +
    'wait returns at once, even after you posted progress since. The lease is checked at once and whenever the thread ' +
    'changes, and kept alive while waiting: if the thread is cancelled or the lease lost, wait exits 5 (stop working; ' +
    "`show` has the leader's note), and 4 once the thread is done or failed. " +
    'Without --lease, --as says which side you wait as (default: the leader side when --agent names someone other than ' +
    "the thread's agent, else the worker side). The leader side gets what the worker side (worker, runner) wrote after " +
    "the leader side's last message; either side's wait without --lease also returns when the thread ends (done, failed, " +
    'cancelled). ' +
    '--after-message N overrides where "new" starts. Pass last_message_id from the output as --after-message to continue; ' +
    '"more": true means messages over --max-bytes were left for the next wait.',
  flags: {
    thread: threadFlag,
    'after-message': { type: 'string', describe: 'Only messages with an id greater than this (default: see above)' },
    agent: { type: 'string', describe: "Who is waiting, without --lease or --as: anyone but the thread's agent waits as the leader side" },
    as: { type: 'string', describe: "Without --lease: wait as the worker side (for the leader's messages) or the leader side (for the worker's)" },
    'timeout-seconds': { type: 'string', describe: `Give up after this long (default ${DEFAULT_WAIT_SECONDS}, max ${MAX_LEASE_SECONDS})` },
    lease: { type: 'string', describe: 'Your lease token: wait as its holder and keep it alive while waiting' },
    'max-bytes': maxBytesFlag,
  },
  examples: [
    '--db ./coord.db --json wait --thread th_123 --lease ls_abc --timeout-seconds 900',
    '--db ./coord.db --json wait --thread th_123 --as leader --after-message 41',
  ],
  input: waitInput,
  run: (ctx, input) =>
    withInbox(
      ctx,
      (inbox) =>
        waitForMessages(inbox, {
          threadId: input.thread,
          afterMessage: input.afterMessage,
          agent: input.agent,
          as: input.as,
          timeoutSeconds: input.timeoutSeconds,
          lease: input.lease,
          maxBytes: input.maxBytes,
        }),
      // A wait outlives a PostgreSQL server restart (see LONG_LIVED_RECONNECT_MS).
      { reconnectMs: LONG_LIVED_RECONNECT_MS },
    ),
  text: (r) => {
    if (r.timed_out) return `timed out; nothing new on thread ${r.thread.id} after message #${r.last_message_id}`;
    if (r.messages.length === 0) return `thread ${r.thread.id} is ${r.thread.state}`;
    return messagesText(r.messages) + (r.more ? `\n\n(more new messages: wait again with --after-message ${r.last_message_id})` : '');
  },
});
