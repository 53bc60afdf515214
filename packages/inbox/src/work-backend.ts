// `inbox work`: what the runner needs of the database, as one interface: the inbox library on a
// file or a PostgreSQL server (here), or the HTTP API of `orch serve` (work-remote.ts).
import { commitMark, readNow } from '@orch/store';
import type { Inbox } from './inbox.ts';
import { claim, heartbeat, postFailure, postResult, progress, release, type ClaimResult, type LeaseInput, type PostInput } from './leases.ts';
import { requireThreadNow, showThread } from './threads.ts';
import type { ThreadView } from './views.ts';

/** The runner's database operations. Errors are the library's (LeaseLostError, ConflictError, ...). */
export interface WorkBackend {
  /** Wall time for the times a handled thread reports; monotonic time for the runner's deadlines. */
  readonly clock: { now(): number; monotonicMs(): number };
  /** Changes when something was committed: the loop looks for work again then (and once a second anyway). */
  commitMark(): number;
  claim(input: { agent: string; leaseSeconds: number }): Promise<ClaimResult>;
  heartbeat(input: LeaseInput): Promise<unknown>;
  progress(input: PostInput): Promise<unknown>;
  postResult(input: PostInput): Promise<unknown>;
  postFailure(input: PostInput): Promise<unknown>;
  release(input: LeaseInput): Promise<unknown>;
  showThread(input: { threadId: string }): Promise<{ thread: ThreadView }>;
  /** Whether this claim of the thread is gone: claimed again, cancelled, released, or its lease ran out. */
  claimLost(threadId: string, lease: string, claimNumber: number): Promise<boolean>;
}

/** The runner's operations on an open inbox (a SQLite file or a PostgreSQL database). */
export function localBackend(inbox: Inbox): WorkBackend {
  return {
    clock: inbox.clock,
    commitMark: () => commitMark(inbox.store),
    claim: (input) => claim(inbox, input),
    heartbeat: (input) => heartbeat(inbox, input),
    progress: (input) => progress(inbox, input),
    postResult: (input) => postResult(inbox, input),
    postFailure: (input) => postFailure(inbox, input),
    release: (input) => release(inbox, input),
    showThread: (input) => showThread(inbox, input),
    // One indexed read of the thread row, judged by the store's clock.
    claimLost: async (threadId, lease, claimNumber) => {
      const row = await readNow(inbox.store, () => requireThreadNow(threadId));
      if (row.claim_count !== claimNumber || row.state === 'cancelled' || row.state === 'open') return true;
      if (row.state === 'done' || row.state === 'failed') return false; // the command posted it itself
      return row.lease_token !== lease || row.lease_expires_at === null || row.lease_expires_at <= inbox.clock.now();
    },
  };
}
