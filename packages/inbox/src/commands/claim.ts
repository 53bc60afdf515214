import { LONG_LIVED_RECONNECT_MS, defineCommand, idSchema, intFlag } from '@orch/store';
import { z } from 'zod';
import { claim, DEFAULT_LEASE_SECONDS, MAX_LEASE_SECONDS } from '../leases.ts';
import { threadText } from '../render.ts';
import { maxBytesField, maxBytesFlag, withInbox } from './shared.ts';

export const claimInput = z.object({
  agent: idSchema,
  thread: idSchema.optional(),
  leaseSeconds: intFlag(1, MAX_LEASE_SECONDS).optional(),
  waitSeconds: intFlag(0, MAX_LEASE_SECONDS).optional(),
  maxBytes: maxBytesField,
});

export const command = defineCommand({
  name: 'claim',
  summary: 'Claim the oldest open thread assigned to an agent (or a given one) and get a lease',
  description:
    'Atomically claims one thread: two workers can never both win it. Returns the thread, its messages ' +
    'and a lease {token, expires_at}; pass the token as --lease to every later write. The messages are the task (the first ' +
    'message), the pending question if the thread is blocked, and the most recent ones within --max-bytes; "omitted" ' +
    'says how many were left out in between (read them with `show --after-message`). Each claim issues a new ' +
    `token. Leases last ${DEFAULT_LEASE_SECONDS} s (15 minutes) unless --lease-seconds says otherwise; ` +
    'heartbeat, progress and ask extend them. A thread whose lease ran out can be claimed again. ' +
    'Nothing claimable is not an error: exit 0 with {"claimed": false}.',
  flags: {
    agent: { type: 'string', describe: 'Claim as this agent (threads assigned to it)', required: true },
    thread: { type: 'string', describe: 'Claim this thread rather than the oldest open one' },
    'lease-seconds': { type: 'string', describe: `Lease length, 1-${MAX_LEASE_SECONDS} (default ${DEFAULT_LEASE_SECONDS})` },
    'wait-seconds': { type: 'string', describe: 'Wait up to this long for a claimable thread (default 0)' },
    'max-bytes': maxBytesFlag,
  },
  examples: [
    '--db ./coord.db --json claim --agent qa-worker',
    '--db ./coord.db --json claim --agent qa-worker --thread th_123 --lease-seconds 1800',
    '--db ./coord.db --json claim --agent qa-worker --wait-seconds 60',
  ],
  input: claimInput,
  run: (ctx, input) =>
    withInbox(
      ctx,
      (inbox) =>
        claim(inbox, {
          agent: input.agent,
          threadId: input.thread,
          leaseSeconds: input.leaseSeconds,
          waitSeconds: input.waitSeconds,
          maxBytes: input.maxBytes,
        }),
      // A waiting claim outlives a PostgreSQL server restart, like `wait` (see LONG_LIVED_RECONNECT_MS).
      input.waitSeconds ? { reconnectMs: LONG_LIVED_RECONNECT_MS } : {},
    ),
  text: (r) =>
    r.claimed
      ? `claimed thread ${r.thread.id}\nlease token ${r.lease.token} (expires ${r.lease.expires_at})\n\n${threadText(r.thread, r.messages)}` +
        (r.omitted
          ? `\n\n(${r.omitted.count} earlier message(s) between #${r.omitted.first_id} and #${r.omitted.last_id} not shown: inbox show --thread ${r.thread.id} --after-message ${r.omitted.first_id - 1})`
          : '')
      : `nothing claimed: ${r.reason}`,
});
