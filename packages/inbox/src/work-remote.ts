// `inbox work --db https://...`: the runner's database operations as calls of `orch serve`'s API
// (the same commands a worker runs: claim, heartbeat, progress, result, fail, release, show), each
// with an idempotency key of its own reused on its retries. A server outage does not end the
// runner: claims are tried again a second later, heartbeats at their next beat, and what must not
// be lost (the first progress, the outcome, the release) is retried for as long as the lease lasts.
import { AppError, ExitCode, callRemote, newIdempotencyKey, systemClock, type RemoteTarget } from '@orch/store';
import type { ClaimResult, LeaseInput, PostInput } from './leases.ts';
import type { ThreadView } from './views.ts';
import type { WorkBackend } from './work-backend.ts';

/** What the commands need to call the server as the runner does: its token (ORCH_TOKEN, never printed), and ORCH_INSECURE_HTTP if it was allowed. */
export function remoteEnv(target: RemoteTarget): Record<string, string> {
  return { ...(target.token !== undefined ? { ORCH_TOKEN: target.token } : {}), ...(target.insecureHttp ? { ORCH_INSECURE_HTTP: '1' } : {}) };
}

export interface RemoteWorkOptions {
  /** Lease length the runner claims with: writes that must land are retried this long. */
  leaseSeconds: number;
  log?: ((line: string) => void) | undefined;
}

/**
 * The runner's operations over HTTP. Messages the runner posts are recorded with the role the
 * server gives the caller (a worker's), as `inbox progress` / `result` / `fail` record them.
 */
export function remoteBackend(target: RemoteTarget, options: RemoteWorkOptions): WorkBackend {
  const log = options.log ?? (() => undefined);
  const longSeconds = Math.max(target.retrySeconds, options.leaseSeconds);
  const call = <T>(name: string, input: Record<string, unknown>, retrySeconds = target.retrySeconds): Promise<T> =>
    callRemote(target, 'inbox', name, input, undefined, { idempotencyKey: newIdempotencyKey(), retrySeconds }).then((r) => r.result as T);
  const post = (name: string, input: PostInput) =>
    call(
      name,
      {
        thread: input.threadId,
        lease: input.lease,
        // The CLI refuses an empty body; the runner's own texts never are, a result file may be.
        body: input.body.trim() === '' ? '(empty)' : input.body,
        ...(input.payload !== undefined ? { payloadJson: JSON.stringify(input.payload) } : {}),
      },
      longSeconds,
    );
  let outage = false;
  const watching = new Set<string>();
  return {
    clock: systemClock,
    // No commit mark over HTTP: the loop asks the server for work once a second.
    commitMark: () => 0,
    claim: async (input) => {
      try {
        const claimed = await call<ClaimResult>('claim', { agent: input.agent, leaseSeconds: String(input.leaseSeconds) });
        if (outage) log(`the server at ${target.display} answers again`);
        outage = false;
        return claimed;
      } catch (err) {
        if (!(err instanceof AppError) || err.exitCode !== ExitCode.unavailable) throw err;
        if (!outage) log(`${err.message}; claiming again in a second (running commands go on)`);
        outage = true;
        return { claimed: false, agent: input.agent, thread_id: null, reason: err.message };
      }
    },
    heartbeat: (input: LeaseInput) => call('heartbeat', { thread: input.threadId, lease: input.lease }),
    progress: (input) => post('progress', input),
    postResult: (input) => post('result', input),
    postFailure: (input) => post('fail', input),
    release: (input) => call('release', { thread: input.threadId, lease: input.lease }, longSeconds),
    showThread: (input) => call<{ thread: ThreadView }>('show', { thread: input.threadId, afterMessage: String(Number.MAX_SAFE_INTEGER) }, longSeconds),
    claimLost: async (threadId, _lease, claimNumber) => {
      // One look at a time per thread: during an outage a look retries while the next second comes.
      if (watching.has(threadId)) return false;
      watching.add(threadId);
      try {
        const { thread } = await call<{ thread: ThreadView }>('show', { thread: threadId, afterMessage: String(Number.MAX_SAFE_INTEGER) });
        if (thread.claim_count !== claimNumber || thread.state === 'cancelled' || thread.state === 'open') return true;
        if (thread.state === 'done' || thread.state === 'failed') return false;
        return thread.lease_expired;
      } finally {
        watching.delete(threadId);
      }
    },
  };
}
