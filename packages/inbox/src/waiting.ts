import { readTransaction, waitForChange } from '@orch/store';
import type { Kysely } from 'kysely';
import type { Inbox } from './inbox.ts';
import { heartbeat } from './leases.ts';
import { lastMessageId, lastMessageIdBy, messagesFromOthers } from './queries/messages.ts';
import { TERMINAL_STATES, type InboxDatabase } from './schema.ts';
import { requireThread } from './threads.ts';
import { messageView, threadView, type MessageView, type ThreadView } from './views.ts';

type Db = Kysely<InboxDatabase>;

export interface WaitInput {
  threadId: string;
  /**
   * Only messages with a larger id count. Default: the caller's own last message on the thread,
   * or, if the caller never wrote there, the thread's newest message when the wait starts.
   */
  afterMessage?: number | undefined;
  /** Who is waiting; their own messages never wake them. Default: the claimer, else the assignee. */
  agent?: string | undefined;
  timeoutSeconds: number;
  /** When given, the lease is checked at once and kept alive while waiting. */
  lease?: string | undefined;
}

export interface WaitResult {
  timed_out: boolean;
  thread: ThreadView;
  /** New messages from others, oldest first (empty on timeout or when the thread ended). */
  messages: MessageView[];
  /** Pass as `--after-message` to continue from here. */
  last_message_id: number;
}

/**
 * `inbox wait`: blocks until someone other than the caller writes on the thread (e.g. the answer
 * to a question), the thread ends (done, failed, cancelled), or the timeout passes. An answer that
 * arrived before the call returns at once. Cheap: polls `PRAGMA data_version`, not the tables.
 *
 * @throws NotFoundError (3); LeaseLostError (5) when `lease` is given and is not (or stops being) live.
 */
export async function waitForMessages(inbox: Inbox, input: WaitInput): Promise<WaitResult> {
  const start = await readTransaction<InboxDatabase, { caller: string; cursor: number }>(inbox.store, async (trx) => {
    const thread = await requireThread(trx, input.threadId);
    const caller = input.agent ?? thread.claimed_by ?? thread.assigned_to;
    if (input.afterMessage !== undefined) return { caller, cursor: input.afterMessage };
    // A caller who never wrote here has seen everything so far (claim returns all messages).
    const own = await lastMessageIdBy(trx, thread.id, caller);
    return { caller, cursor: own > 0 ? own : await lastMessageId(trx, thread.id) };
  });
  let leaseMs = 0;
  let lastBeat = inbox.clock.monotonicMs();
  if (input.lease !== undefined) {
    const beat = await heartbeat(inbox, { threadId: input.threadId, lease: input.lease });
    leaseMs = beat.lease.seconds * 1000;
  }
  const check = async (): Promise<WaitResult | undefined> => {
    const found = await readTransaction<InboxDatabase, WaitResult | undefined>(inbox.store, async (trx: Db) => {
      const thread = await requireThread(trx, input.threadId);
      const rows = await messagesFromOthers(trx, thread.id, start.cursor, start.caller);
      if (rows.length === 0 && !TERMINAL_STATES.includes(thread.state)) return undefined;
      return {
        timed_out: false,
        thread: threadView(thread, inbox.clock.now()),
        messages: rows.map(messageView),
        last_message_id: rows.at(-1)?.id ?? start.cursor,
      };
    });
    if (!found && input.lease !== undefined && inbox.clock.monotonicMs() - lastBeat >= leaseMs / 3) {
      await heartbeat(inbox, { threadId: input.threadId, lease: input.lease });
      lastBeat = inbox.clock.monotonicMs();
    }
    return found;
  };
  const result = await waitForChange(inbox.store, check, {
    timeoutMs: input.timeoutSeconds * 1000,
    clock: inbox.clock,
    ...(leaseMs > 0 ? { recheckMs: Math.max(10, Math.min(1000, leaseMs / 3)) } : {}),
  });
  if (result) return result;
  const thread = await requireThread(inbox.store.db as Db, input.threadId);
  return { timed_out: true, thread: threadView(thread, inbox.clock.now()), messages: [], last_message_id: start.cursor };
}
