import { ConflictError, ForbiddenError, LeaseLostError, isoTime, readNow, writeClaim, waitForChange, writeTransaction } from '@orch/store';
import type { Kysely } from 'kysely';
import type { Inbox } from './inbox.ts';
import { DEFAULT_MESSAGE_BYTES, claimPick, type ClaimPick } from './message-pages.ts';
import { insertMessage, messageSizesNow, messagesInRangeNow, type MessageRow } from './queries/messages.ts';
import { claimOne, extendLease, findClaimable, setThreadState, type ThreadRow } from './queries/threads.ts';
import type { InboxDatabase, MessageKind, MessageRole, ThreadState } from './schema.ts';
import { assertActing, assertLive, messageRow, requireThread, requireThreadNow } from './threads.ts';
import { messageView, threadView, type LeaseView, type MessageView, type ThreadView } from './views.ts';

type Db = Kysely<InboxDatabase>;

/** Lease length when none is given: 15 minutes. */
export const DEFAULT_LEASE_SECONDS = 900;
/** Longest lease (and longest wait) accepted: one day. */
export const MAX_LEASE_SECONDS = 86_400;

export interface ClaimInput {
  agent: string;
  /** Claim this thread rather than the oldest claimable one. */
  threadId?: string | undefined;
  /** Default DEFAULT_LEASE_SECONDS. */
  leaseSeconds?: number | undefined;
  /** Wait up to this long for something claimable. Default 0 (answer at once). */
  waitSeconds?: number | undefined;
  /** At most about this many bytes of message bodies and payloads in the answer. Default DEFAULT_MESSAGE_BYTES. */
  maxBytes?: number | undefined;
}

export type ClaimResult =
  | { claimed: true; thread: ThreadView; messages: MessageView[]; omitted: ClaimPick['omitted']; lease: LeaseView }
  | { claimed: false; agent: string; thread_id: string | null; reason: string };

/**
 * `inbox claim`: atomically claims the oldest open thread assigned to `agent` (or the given one)
 * and issues a new lease token. A thread whose lease ran out counts as open again (its claim count
 * goes up); so does a blocked thread released with its question pending (it stays blocked).
 * Nothing claimable is not an error: `{claimed: false}`.
 *
 * Returns the thread's first message (the task), its pending question if it is blocked, and its
 * most recent messages within `maxBytes`; `omitted` counts what was left out (page it with
 * `show`). Everything up to the newest message counts as delivered to the new lease.
 *
 * @throws NotFoundError (3) for an unknown `threadId`; ConflictError (4) when that thread is
 *   assigned to another agent or finished.
 */
export async function claim(inbox: Inbox, input: ClaimInput): Promise<ClaimResult> {
  if (inbox.actingAgent !== undefined && input.agent !== inbox.actingAgent) {
    throw new ForbiddenError(`this session acts only as ${inbox.actingAgent}; it cannot claim as ${input.agent}`, { agent: inbox.actingAgent });
  }
  const leaseMs = (input.leaseSeconds ?? DEFAULT_LEASE_SECONDS) * 1000;
  const maxBytes = input.maxBytes ?? DEFAULT_MESSAGE_BYTES;
  const attempt = () => claimNow(inbox, input.agent, input.threadId, leaseMs, maxBytes);
  const looksClaimable = () =>
    readNow(inbox.store, () =>
      findClaimable({
        agent: input.agent,
        now: inbox.clock.now(),
        ...(input.threadId !== undefined ? { threadId: input.threadId } : {}),
      }),
    );
  let won = await attempt();
  // On PostgreSQL claims run side by side, and each locks the oldest thread of every kind it could
  // take (open, released, lease run out) while it takes one of them: a claimer beside it may find
  // none free although one stays claimable once the other commits. Looked at again without locks,
  // and tried again a few times when something is there (on SQLite a failed claim saw everything).
  for (let tries = 1; !won && input.threadId === undefined && tries <= CLAIM_RACE_TRIES && (await looksClaimable()); tries++) {
    await new Promise((resolve) => setTimeout(resolve, 5 * tries));
    won = await attempt();
  }
  if (!won && (input.waitSeconds ?? 0) > 0) {
    // Poll with reads; take the write lock only once something looks claimable.
    won = await waitForChange(inbox.store, async () => ((await looksClaimable()) ? attempt() : undefined), {
      timeoutMs: (input.waitSeconds ?? 0) * 1000,
      clock: inbox.clock,
      signal: inbox.signal,
    });
  }
  if (won) return won;
  return notClaimed(inbox, input);
}

/** How often a claim that found nothing free, while something looked claimable, is tried again. */
const CLAIM_RACE_TRIES = 3;

// Synchronous (prepared queries in writeNow): a claim is the hot path of every worker loop. Only
// database work happens while the write lock is held; the views are built after the commit.
async function claimNow(inbox: Inbox, agent: string, threadId: string | undefined, leaseMs: number, maxBytes: number): Promise<ClaimResult | undefined> {
  const token = inbox.ids.next('ls');
  const won = await writeClaim(inbox.store, function* () {
    if (threadId !== undefined) {
      const thread = yield* requireThreadNow(threadId);
      assertActing(inbox, thread);
      assertAssigned(thread, agent);
      assertLive(thread, 'claim');
    }
    const now = inbox.clock.now();
    const row = yield* claimOne({ agent, token, now, leaseMs, ...(threadId !== undefined ? { threadId } : {}) });
    if (!row) return undefined;
    // Most claims send every message (they fit --max-bytes): one query, or none for a thread
    // without messages. Otherwise the pick (first, pending question, the newest that fit).
    if (row.message_count === 0) return { row, now, messages: [], omitted: null };
    if (row.message_bytes <= maxBytes) return { row, now, messages: yield* messagesInRangeNow(row.id, 0, Number.MAX_SAFE_INTEGER), omitted: null };
    const pick = claimPick(yield* messageSizesNow(row.id, 0), { maxBytes, blocked: row.state === 'blocked' });
    const messages: MessageRow[] = [];
    for (const id of pick.pinned) messages.push(...(yield* messagesInRangeNow(row.id, id - 1, id)));
    messages.push(...(yield* messagesInRangeNow(row.id, pick.recentFrom - 1, Number.MAX_SAFE_INTEGER)));
    return { row, now, messages, omitted: pick.omitted };
  });
  if (!won) return undefined;
  const { row, now, messages, omitted } = won;
  return {
    claimed: true as const,
    thread: threadView(row, now),
    messages: messages.map(messageView),
    omitted,
    lease: { token, expires_at: isoTime(now + leaseMs), seconds: leaseMs / 1000 },
  };
}

async function notClaimed(inbox: Inbox, input: ClaimInput): Promise<ClaimResult> {
  if (input.threadId === undefined) {
    return { claimed: false, agent: input.agent, thread_id: null, reason: `no open thread is assigned to ${input.agent}` };
  }
  const thread = await requireThread(inbox.store.db as Db, input.threadId);
  assertActing(inbox, thread);
  assertAssigned(thread, input.agent);
  assertLive(thread, 'claim');
  const until = thread.lease_expires_at === null ? '' : ` until ${isoTime(thread.lease_expires_at)}`;
  return {
    claimed: false,
    agent: input.agent,
    thread_id: thread.id,
    reason: `thread ${thread.id} is held by ${thread.claimed_by ?? 'another worker'}${until}`,
  };
}

function assertAssigned(thread: ThreadRow, agent: string): void {
  if (thread.assigned_to !== agent) {
    throw new ConflictError(`thread ${thread.id} is assigned to ${thread.assigned_to}, not ${agent}`, {
      thread_id: thread.id,
      assigned_to: thread.assigned_to,
    });
  }
}

/**
 * Checks that `token` is the live lease of `thread` at `now`.
 *
 * @throws LeaseLostError (5) when the thread was cancelled, released, re-claimed, or the lease
 *   expired; ConflictError (4) when the thread is already done or failed.
 */
export function assertLease(thread: ThreadRow, token: string, now: number): void {
  if (thread.state === 'cancelled') {
    throw new LeaseLostError(`thread ${thread.id} was cancelled; your lease is revoked, stop working on it`, {
      thread_id: thread.id,
      state: thread.state,
    });
  }
  if (thread.state === 'done' || thread.state === 'failed') {
    throw new ConflictError(`thread ${thread.id} is already ${thread.state}`, { thread_id: thread.id, state: thread.state });
  }
  if (thread.lease_token !== token) {
    throw new LeaseLostError(`lease token is not the current lease of thread ${thread.id} (it was released, re-claimed, or the token is wrong)`, {
      thread_id: thread.id,
      state: thread.state,
    });
  }
  if (thread.lease_expires_at === null || thread.lease_expires_at <= now) {
    throw new LeaseLostError(
      `lease on thread ${thread.id} expired at ${isoTime(thread.lease_expires_at ?? now)}; claim it again with \`inbox claim --thread ${thread.id}\``,
      { thread_id: thread.id, expired_at: isoTime(thread.lease_expires_at ?? now) },
    );
  }
}

/** Runs `fn` in a write transaction after checking the lease; `fn` sees the checked thread. */
async function underLease<T>(inbox: Inbox, threadId: string, token: string, fn: (trx: Db, thread: ThreadRow, now: number) => Promise<T>): Promise<T> {
  return writeTransaction<InboxDatabase, T>(inbox.store, async (trx) => {
    const thread = await requireThread(trx, threadId);
    assertActing(inbox, thread);
    const now = inbox.clock.now();
    assertLease(thread, token, now);
    return fn(trx, thread, now);
  });
}

export interface LeaseInput {
  threadId: string;
  lease: string;
}

export interface HeartbeatResult {
  thread: ThreadView;
  lease: LeaseView;
}

/**
 * `inbox heartbeat`: extends the lease to now + `leaseSeconds` (default: the length it was claimed with).
 *
 * @throws LeaseLostError (5), ConflictError (4), NotFoundError (3).
 */
export async function heartbeat(inbox: Inbox, input: LeaseInput & { leaseSeconds?: number | undefined }): Promise<HeartbeatResult> {
  return underLease(inbox, input.threadId, input.lease, async (trx, thread, now) => {
    const updated = await renewLease(trx, thread, input.lease, now, input.leaseSeconds);
    return { thread: threadView(updated, now), lease: leaseView(updated) };
  });
}

export interface PostInput extends LeaseInput {
  body: string;
  payload?: Record<string, unknown> | undefined;
  /** Who writes under the lease: the worker itself (default), or `inbox work` for its command. */
  role?: Extract<MessageRole, 'worker' | 'runner'> | undefined;
}

export interface PostResult {
  thread: ThreadView;
  message: MessageView;
  /** The extended lease (progress and ask keep the thread alive). Absent after result/fail. */
  lease?: LeaseView;
}

/** `inbox progress`: a progress note; also extends the lease. @throws LeaseLostError (5), ConflictError (4), NotFoundError (3). */
export async function progress(inbox: Inbox, input: PostInput): Promise<PostResult> {
  return post(inbox, input, 'progress', undefined);
}

/** `inbox ask`: a blocking question; the thread becomes blocked until the leader replies. @throws as progress. */
export async function ask(inbox: Inbox, input: PostInput): Promise<PostResult> {
  return post(inbox, input, 'question', 'blocked');
}

/** `inbox result`: the final result; the thread is done and the lease ends. @throws as progress. */
export async function postResult(inbox: Inbox, input: PostInput): Promise<PostResult> {
  return post(inbox, input, 'result', 'done');
}

/** `inbox fail`: the work failed; the thread is failed and the lease ends. @throws as progress. */
export async function postFailure(inbox: Inbox, input: PostInput): Promise<PostResult> {
  return post(inbox, input, 'failure', 'failed');
}

async function post(inbox: Inbox, input: PostInput, kind: MessageKind, nextState: ThreadState | undefined): Promise<PostResult> {
  return underLease(inbox, input.threadId, input.lease, async (trx, thread, now) => {
    const author = thread.claimed_by ?? thread.assigned_to;
    const message = await insertMessage(trx, messageRow(thread.id, author, input.role ?? 'worker', kind, input.body, input.payload, now));
    if (nextState === 'done' || nextState === 'failed') {
      const updated = await setThreadState(trx, { id: thread.id, state: nextState, now, endLease: true });
      return { thread: threadView(updated, now), message: messageView(message) };
    }
    let updated = await renewLease(trx, thread, input.lease, now, undefined);
    if (nextState !== undefined) updated = await setThreadState(trx, { id: thread.id, state: nextState, now });
    return { thread: threadView(updated, now), message: messageView(message), lease: leaseView(updated) };
  });
}

/**
 * `inbox release`: gives the thread back unfinished; its agent can claim it again. A claimed thread
 * is open again; a blocked one stays blocked with nobody holding it, so its question stays pending:
 * the leader can still answer it, and the next claimer sees it.
 *
 * @throws as progress.
 */
export async function release(inbox: Inbox, input: LeaseInput): Promise<{ thread: ThreadView }> {
  return underLease(inbox, input.threadId, input.lease, async (trx, thread, now) => {
    const state = thread.state === 'blocked' ? 'blocked' : 'open';
    const updated = await setThreadState(trx, { id: thread.id, state, now, endLease: true, forgetClaimer: true });
    return { thread: threadView(updated, now) };
  });
}

async function renewLease(trx: Db, thread: ThreadRow, token: string, now: number, leaseSeconds: number | undefined): Promise<ThreadRow> {
  const leaseMs = leaseSeconds !== undefined ? leaseSeconds * 1000 : (thread.lease_ms ?? DEFAULT_LEASE_SECONDS * 1000);
  const updated = await extendLease(trx, { id: thread.id, token, expiresAt: now + leaseMs, leaseMs, now });
  // assertLease ran in this same transaction, so the token still matches.
  return updated ?? thread;
}

function leaseView(thread: ThreadRow): LeaseView {
  return { token: thread.lease_token ?? '', expires_at: isoTime(thread.lease_expires_at ?? 0), seconds: (thread.lease_ms ?? 0) / 1000 };
}
