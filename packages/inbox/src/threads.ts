import {
  ConflictError,
  NotFoundError,
  ValidationError,
  readTransaction,
  writeTransaction,
  type Clock,
  type IdGenerator,
  type QueryTarget,
} from '@orch/store';
import type { Kysely } from 'kysely';
import type { Inbox } from './inbox.ts';
import { insertMessage, latestMessage, listMessages } from './queries/messages.ts';
import { getThread, getThreadNow, insertThread, listThreads as queryThreads, setThreadState, type ThreadRow } from './queries/threads.ts';
import { TERMINAL_STATES, type InboxDatabase, type MessageKind, type ThreadState } from './schema.ts';
import { messageView, threadView, type MessageView, type ThreadView } from './views.ts';

export type { ThreadRow };

type Db = Kysely<InboxDatabase>;
/** What in-transaction operations need besides the transaction. */
export type InboxEnv = { clock: Clock; ids: IdGenerator };

export interface OpenThreadInput {
  /** The new thread's id (default: a generated one); orch picks it first to name it in the task message. */
  id?: string | undefined;
  to: string;
  subject: string;
  from: string;
  body: string;
  payload?: Record<string, unknown> | undefined;
  /** Kind of the first message. Default `task`. */
  kind?: MessageKind;
}

export interface AppendMessageInput {
  threadId: string;
  from: string;
  body: string;
  payload?: Record<string, unknown> | undefined;
  kind: MessageKind;
  /** When set, the thread must be assigned to this agent. */
  to?: string | undefined;
}

export interface SendInput {
  /** Required when opening a thread; when appending, must match the thread's agent if given. */
  to?: string | undefined;
  /** Required when opening a thread; ignored when appending. */
  subject?: string | undefined;
  from: string;
  body: string;
  payload?: Record<string, unknown> | undefined;
  /** Append to this thread instead of opening a new one. */
  threadId?: string | undefined;
}

export interface SendResult {
  created: boolean;
  thread: ThreadView;
  message: MessageView;
}

/** Opens a new thread assigned to `to` with its first message, inside the caller's write transaction. */
export async function openThreadIn(db: Db, env: InboxEnv, input: OpenThreadInput): Promise<SendResult> {
  const now = env.clock.now();
  const thread = await insertThread(db, {
    id: input.id ?? env.ids.next('th'),
    subject: input.subject,
    assigned_to: input.to,
    created_by: input.from,
    state: 'open',
    claimed_by: null,
    lease_token: null,
    lease_expires_at: null,
    lease_ms: null,
    claim_count: 0,
    created_at: now,
    updated_at: now,
  });
  const message = await insertMessage(db, messageRow(thread.id, input.from, input.kind ?? 'task', input.body, input.payload, now));
  return { created: true, thread: threadView(thread, now), message: messageView(message) };
}

/**
 * Appends a message to a live thread inside the caller's write transaction. An `answer` to a
 * blocked thread unblocks it (back to claimed).
 *
 * @throws NotFoundError (3) for an unknown thread; ConflictError (4) for a finished thread or one
 *   assigned to someone other than `to`.
 */
export async function appendMessageIn(db: Db, env: InboxEnv, input: AppendMessageInput): Promise<SendResult> {
  const now = env.clock.now();
  let thread = await requireThread(db, input.threadId);
  assertLive(thread, `add a message to`);
  if (input.to !== undefined && input.to !== thread.assigned_to) {
    throw new ConflictError(`thread ${thread.id} is assigned to ${thread.assigned_to}, not ${input.to}`, {
      thread_id: thread.id,
      assigned_to: thread.assigned_to,
    });
  }
  const message = await insertMessage(db, messageRow(thread.id, input.from, input.kind, input.body, input.payload, now));
  if (input.kind === 'answer' && thread.state === 'blocked') {
    thread = await setThreadState(db, { id: thread.id, state: 'claimed', now });
  }
  return { created: false, thread: threadView(thread, now), message: messageView(message) };
}

/**
 * `inbox send`: without `threadId`, opens a thread assigned to `to` whose first message is a task;
 * with it, appends a note.
 *
 * @throws ValidationError (2) when opening without `to` or `subject`; NotFoundError (3),
 *   ConflictError (4) as for appendMessageIn.
 */
export async function send(inbox: Inbox, input: SendInput): Promise<SendResult> {
  return writeTransaction<InboxDatabase, SendResult>(inbox.store, (trx) => {
    if (input.threadId !== undefined) {
      return appendMessageIn(trx, inbox, {
        threadId: input.threadId,
        from: input.from,
        body: input.body,
        payload: input.payload,
        kind: 'note',
        to: input.to,
      });
    }
    if (input.to === undefined || input.subject === undefined) {
      throw new ValidationError('`to` and `subject` are required to open a thread (or give a thread id)');
    }
    return openThreadIn(trx, inbox, { to: input.to, subject: input.subject, from: input.from, body: input.body, payload: input.payload });
  });
}

export interface ListInput {
  agent?: string | undefined;
  state?: ThreadState | undefined;
  /** Default 100. */
  limit?: number | undefined;
}

export interface ListResult {
  threads: ThreadView[];
}

/** `inbox list`: threads newest first, filtered by assigned agent and/or state. */
export async function listThreads(inbox: Inbox, input: ListInput): Promise<ListResult> {
  const rows = await queryThreads(inbox.store.db as Db, {
    ...(input.agent !== undefined ? { agent: input.agent } : {}),
    ...(input.state !== undefined ? { state: input.state } : {}),
    limit: input.limit ?? 100,
  });
  const now = inbox.clock.now();
  return { threads: rows.map((r) => threadView(r, now)) };
}

export interface ShowResult {
  thread: ThreadView;
  messages: MessageView[];
}

/**
 * `inbox show`: the thread and its messages (only those after `afterMessage` when given).
 *
 * @throws NotFoundError (3) for an unknown thread.
 */
export async function showThread(inbox: Inbox, input: { threadId: string; afterMessage?: number | undefined }): Promise<ShowResult> {
  return readTransaction<InboxDatabase, ShowResult>(inbox.store, async (trx) => {
    const thread = await requireThread(trx, input.threadId);
    const messages = await listMessages(trx, thread.id, input.afterMessage ?? 0);
    return { thread: threadView(thread, inbox.clock.now()), messages: messages.map(messageView) };
  });
}

/** @throws NotFoundError (3) */
export async function requireThread(db: Db, id: string): Promise<ThreadRow> {
  const thread = await getThread(db, id);
  if (!thread) throw new NotFoundError(`no thread ${id}`, { thread_id: id });
  return thread;
}

/** requireThread, synchronously (inside writeNow/readNow). @throws NotFoundError (3) */
export function requireThreadNow(target: QueryTarget, id: string): ThreadRow {
  const thread = getThreadNow(target, id);
  if (!thread) throw new NotFoundError(`no thread ${id}`, { thread_id: id });
  return thread;
}

/** @throws ConflictError (4) when the thread is done, failed or cancelled. */
export function assertLive(thread: ThreadRow, action: string): void {
  if (TERMINAL_STATES.includes(thread.state)) {
    throw new ConflictError(`cannot ${action} thread ${thread.id}: it is ${thread.state}`, { thread_id: thread.id, state: thread.state });
  }
}

export function messageRow(
  threadId: string,
  author: string,
  kind: MessageKind,
  body: string,
  payload: Record<string, unknown> | undefined,
  now: number,
) {
  return { thread_id: threadId, author, kind, body, payload: payload === undefined ? null : JSON.stringify(payload), created_at: now };
}

export interface ThreadActivity {
  /** The thread as stored (lease times in ms), for callers folding its state into their own. */
  thread: ThreadRow;
  view: ThreadView;
  /** Messages after the given id, oldest first. */
  messages: MessageView[];
}

/**
 * What happened on a thread since message `afterMessage`: its current row and the newer messages.
 * Read-only; works inside or outside a transaction. Used by orch's reconcile.
 *
 * @throws NotFoundError (3) for an unknown thread.
 */
export async function threadActivityIn(db: Db, env: { clock: Clock }, threadId: string, afterMessage: number): Promise<ThreadActivity> {
  const thread = await requireThread(db, threadId);
  const messages = await listMessages(db, threadId, afterMessage);
  return { thread, view: threadView(thread, env.clock.now()), messages: messages.map(messageView) };
}

/** The newest message of a thread (optionally only of one kind), or null. */
export async function latestMessageIn(db: Db, threadId: string, kind?: MessageKind): Promise<MessageView | null> {
  const row = await latestMessage(db, threadId, kind);
  return row ? messageView(row) : null;
}
