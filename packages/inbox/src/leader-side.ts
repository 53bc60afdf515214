// The leader side's writes on a thread a worker may hold: answering it (reply) and cancelling it,
// which revokes the worker's lease.
import { writeTransaction } from '@orch/store';
import type { Kysely } from 'kysely';
import type { Inbox } from './inbox.ts';
import { insertMessage } from './queries/messages.ts';
import { setThreadState } from './queries/threads.ts';
import type { InboxDatabase } from './schema.ts';
import { appendMessageIn, assertActing, assertLive, messageRow, requireThread, type InboxEnv, type LeaderSideRole, type SendResult } from './threads.ts';
import { threadView, type ThreadView } from './views.ts';

type Db = Kysely<InboxDatabase>;

export interface ReplyInput {
  threadId: string;
  from: string;
  body: string;
  payload?: Record<string, unknown> | undefined;
  /** Who writes it. Default `leader`. */
  role?: LeaderSideRole | undefined;
}

/**
 * `inbox reply`: the leader's answer to the worker; a blocked thread goes back to claimed (or to
 * open, when it was released with the question pending).
 *
 * @throws NotFoundError (3); ConflictError (4) when the thread is finished; ForbiddenError (4) when
 *   the inbox acts as one agent (Inbox.actingAgent) and the thread is not assigned to it.
 */
export async function reply(inbox: Inbox, input: ReplyInput): Promise<SendResult> {
  return writeTransaction<InboxDatabase, SendResult>(inbox.store, async (trx) => {
    if (inbox.actingAgent !== undefined) assertActing(inbox, await requireThread(trx, input.threadId));
    return appendMessageIn(trx, inbox, {
      threadId: input.threadId,
      from: input.from,
      body: input.body,
      payload: input.payload,
      kind: 'answer',
      role: input.role,
    });
  });
}

/**
 * Cancels a thread inside the caller's write transaction: its lease is revoked, so the worker's
 * later writes fail with LeaseLostError. Cancelling a cancelled thread changes nothing.
 *
 * @throws NotFoundError (3); ConflictError (4) when the thread is done or failed.
 */
export async function cancelThreadIn(
  db: Db,
  env: InboxEnv,
  input: { threadId: string; by: string; reason?: string | undefined; role?: LeaderSideRole | undefined },
): Promise<ThreadView> {
  const now = env.clock.now();
  const thread = await requireThread(db, input.threadId);
  if (thread.state === 'cancelled') return threadView(thread, now);
  assertLive(thread, 'cancel');
  if (input.reason !== undefined) await insertMessage(db, messageRow(thread.id, input.by, input.role ?? 'leader', 'note', input.reason, undefined, now));
  return threadView(await setThreadState(db, { id: thread.id, state: 'cancelled', now, endLease: true }), now);
}
