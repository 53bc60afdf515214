import { readNow, waitForChange, writeNow, type Step } from '@orch/store';
import type { Inbox } from './inbox.ts';
import { assertLease, heartbeat } from './leases.ts';
import { DEFAULT_MESSAGE_BYTES, firstPage } from './message-pages.ts';
import { lastMessageIdNow, messageSizesNow, messagesInRangeNow, type Side } from './queries/messages.ts';
import { getThreadNow, markDeliveredNow } from './queries/threads.ts';
import { TERMINAL_STATES } from './schema.ts';
import { assertActing, requireThreadNow } from './threads.ts';
import { messageView, threadView, type MessageView, type ThreadView } from './views.ts';

export interface WaitInput {
  threadId: string;
  /**
   * Only messages with a larger id count. Default: for the worker side, after what the current
   * lease was already given (by claim, and by earlier waits and shows with it); for the leader
   * side, after the leader side's last message on the thread.
   */
  afterMessage?: number | undefined;
  /**
   * Which side waits, when there is no `lease`: `worker` waits for what the leader side (roles
   * leader and person) writes, `leader` for what the worker side (roles worker and runner) writes.
   * Default: from `agent`, else `worker`.
   */
  as?: WaitSide | undefined;
  /** Who is waiting, when neither `lease` nor `as` says: anyone but the thread's agent waits as the leader. */
  agent?: string | undefined;
  timeoutSeconds: number;
  /**
   * The waiter's lease. With it, the wait is the lease holder's (the worker side): the lease is
   * checked at once and whenever the thread changes (LeaseLostError when it is lost, e.g. the
   * thread was cancelled) and kept alive, and what the wait returns counts as given to the lease.
   */
  lease?: string | undefined;
  /** At most about this many bytes of bodies and payloads (at least one message). Default DEFAULT_MESSAGE_BYTES. */
  maxBytes?: number | undefined;
}

/** The side of a thread a waiter is on. */
export type WaitSide = 'worker' | 'leader';

export interface WaitResult {
  timed_out: boolean;
  thread: ThreadView;
  /** New messages from the other side, oldest first (empty on timeout or when the thread ended). */
  messages: MessageView[];
  /** Whether more new messages were left out (over `maxBytes`): wait again to get them. */
  more: boolean;
  /** Pass as `--after-message` to continue from here. */
  last_message_id: number;
}

/**
 * `inbox wait`: blocks until the other side writes on the thread (e.g. the answer to a question),
 * the thread ends (done, failed, cancelled), or the timeout passes. Who wrote what is the role each
 * message was recorded with, never an author name. An answer that arrived before the call returns
 * at once. Cheap: polls `PRAGMA data_version`, not the tables.
 *
 * @throws NotFoundError (3); with `lease`, LeaseLostError (5) when the lease is not (or stops
 *   being) live, including when the thread is cancelled, and ConflictError (4) once it is done or
 *   failed.
 */
export async function waitForMessages(inbox: Inbox, input: WaitInput): Promise<WaitResult> {
  const lease = input.lease;
  const maxBytes = input.maxBytes ?? DEFAULT_MESSAGE_BYTES;
  let leaseMs = 0;
  let lastBeat = inbox.clock.monotonicMs();
  if (lease !== undefined) {
    const beat = await heartbeat(inbox, { threadId: input.threadId, lease });
    leaseMs = beat.lease.seconds * 1000;
  }
  const { cursor, side } = await readNow(inbox.store, function* () {
    const thread = yield* requireThreadNow(input.threadId);
    assertActing(inbox, thread);
    const waiter: WaitSide =
      lease !== undefined ? 'worker' : (input.as ?? (input.agent !== undefined && input.agent !== thread.assigned_to ? 'leader' : 'worker'));
    // A waiter reads what the other side wrote.
    const side: Side = waiter === 'worker' ? 'leader' : 'worker';
    if (input.afterMessage !== undefined) return { cursor: input.afterMessage, side };
    // Never claimed: after the worker side's last message, or (if it wrote none) the newest one.
    if (waiter === 'worker')
      return { cursor: thread.delivered_message_id ?? ((yield* lastMessageIdNow(thread.id, 'worker')) || (yield* lastMessageIdNow(thread.id))), side };
    return { cursor: yield* lastMessageIdNow(thread.id, 'leader'), side };
  });
  const check = async (): Promise<WaitResult | undefined> => {
    const found = await readNow(inbox.store, function* (): Step<WaitResult | undefined> {
      const thread = yield* requireThreadNow(input.threadId);
      const now = inbox.clock.now();
      if (lease !== undefined) assertLease(thread, lease, now);
      const sizes = yield* messageSizesNow(thread.id, cursor, side);
      if (sizes.length === 0 && !TERMINAL_STATES.includes(thread.state)) return undefined;
      const page = firstPage(sizes, { maxBytes });
      const rows = page.throughId === undefined ? [] : yield* messagesInRangeNow(thread.id, cursor, page.throughId, side);
      return { timed_out: false, thread: threadView(thread, now), messages: rows.map(messageView), more: page.more, last_message_id: page.throughId ?? cursor };
    });
    if (!found && lease !== undefined && inbox.clock.monotonicMs() - lastBeat >= leaseMs / 3) {
      await heartbeat(inbox, { threadId: input.threadId, lease });
      lastBeat = inbox.clock.monotonicMs();
    }
    return found;
  };
  const result = await waitForChange(inbox.store, check, {
    timeoutMs: input.timeoutSeconds * 1000,
    clock: inbox.clock,
    signal: inbox.signal,
    ...(leaseMs > 0 ? { recheckMs: Math.max(10, Math.min(1000, leaseMs / 3)) } : {}),
  });
  if (result) {
    // A caller that gave up receives nothing: what it was not given is not marked as given.
    if (lease !== undefined && result.messages.length > 0 && !inbox.signal?.aborted)
      await markDelivered(inbox, input.threadId, lease, cursor, result.last_message_id);
    return result;
  }
  const thread = await readNow(inbox.store, () => requireThreadNow(input.threadId));
  return { timed_out: true, thread: threadView(thread, inbox.clock.now()), messages: [], more: false, last_message_id: cursor };
}

// What this wait returned counts as given to the lease holder when it continues what the holder
// had already been given (a wait from a later --after-message would leave a gap).
async function markDelivered(inbox: Inbox, threadId: string, lease: string, from: number, through: number): Promise<void> {
  await writeNow(inbox.store, function* () {
    const thread = yield* getThreadNow(threadId);
    if (thread?.lease_token === lease && from <= (thread.delivered_message_id ?? 0))
      yield* markDeliveredNow({ id: threadId, token: lease, throughId: through });
  });
}
