import { defineCommand, idSchema, intFlag } from '@orch/store';
import { z } from 'zod';
import { claim, DEFAULT_LEASE_SECONDS, MAX_LEASE_SECONDS } from '../leases.ts';
import { threadText } from '../render.ts';
import { withInbox } from './shared.ts';

export const claimInput = z.object({
  agent: idSchema,
  thread: idSchema.optional(),
  leaseSeconds: intFlag(1, MAX_LEASE_SECONDS).optional(),
  waitSeconds: intFlag(0, MAX_LEASE_SECONDS).optional(),
});

export const claimCommand = defineCommand({
  name: 'claim',
  summary: 'Claim the oldest open thread assigned to an agent (or a given one) and get a lease',
  description:
    'Atomically claims one thread: two workers can never both win it. Returns the thread, all its messages ' +
    'and a lease {token, expires_at}; pass the token as --lease to every later write. Each claim issues a new ' +
    `token. Leases last ${DEFAULT_LEASE_SECONDS} s (15 minutes) unless --lease-seconds says otherwise; ` +
    'heartbeat, progress and ask extend them. A thread whose lease ran out can be claimed again. ' +
    'Nothing claimable is not an error: exit 0 with {"claimed": false}.',
  flags: {
    agent: { type: 'string', describe: 'Claim as this agent (threads assigned to it)', required: true },
    thread: { type: 'string', describe: 'Claim this thread rather than the oldest open one' },
    'lease-seconds': { type: 'string', describe: `Lease length, 1-${MAX_LEASE_SECONDS} (default ${DEFAULT_LEASE_SECONDS})` },
    'wait-seconds': { type: 'string', describe: 'Wait up to this long for a claimable thread (default 0)' },
  },
  examples: [
    '--db ./coord.db --json claim --agent qa-worker',
    '--db ./coord.db --json claim --agent qa-worker --thread th_123 --lease-seconds 1800',
    '--db ./coord.db --json claim --agent qa-worker --wait-seconds 60',
  ],
  input: claimInput,
  run: (ctx, input) =>
    withInbox(ctx, (inbox) =>
      claim(inbox, { agent: input.agent, threadId: input.thread, leaseSeconds: input.leaseSeconds, waitSeconds: input.waitSeconds }),
    ),
  text: (r) =>
    r.claimed
      ? `claimed thread ${r.thread.id}\nlease token ${r.lease.token} (expires ${r.lease.expires_at})\n\n${threadText(r.thread, r.messages)}`
      : `nothing claimed: ${r.reason}`,
});
