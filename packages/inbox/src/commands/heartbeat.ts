import { defineCommand, idSchema, intFlag } from '@orch/store';
import { z } from 'zod';
import { heartbeat, MAX_LEASE_SECONDS } from '../leases.ts';
import { leaseFlag, threadFlag, withInbox } from './shared.ts';

export const heartbeatInput = z.object({
  thread: idSchema,
  lease: idSchema,
  leaseSeconds: intFlag(1, MAX_LEASE_SECONDS).optional(),
});

export const command = defineCommand({
  name: 'heartbeat',
  summary: 'Extend your lease on a thread',
  description:
    'Sets the lease to expire --lease-seconds from now (default: the length it was claimed with). A stale, foreign or expired token changes nothing and exits 5 (on a done or failed thread: 4).',
  flags: {
    thread: threadFlag,
    lease: leaseFlag,
    'lease-seconds': { type: 'string', describe: `New lease length, 1-${MAX_LEASE_SECONDS} (default: as claimed)` },
  },
  examples: ['--db ./coord.db --json heartbeat --thread th_123 --lease ls_abc'],
  input: heartbeatInput,
  run: (ctx, input) => withInbox(ctx, (inbox) => heartbeat(inbox, { threadId: input.thread, lease: input.lease, leaseSeconds: input.leaseSeconds })),
  text: (r) => `lease on thread ${r.thread.id} extended until ${r.lease.expires_at}`,
});
