import {
  ConflictError,
  ForbiddenError,
  MAX_JSON_DEPTH,
  MAX_TEXT_BYTES,
  NotFoundError,
  ValidationError,
  jsonValueDepth,
  readNow,
  writeNow,
  writeTransaction,
  type Clock,
  type IdGenerator,
  type Step,
} from '@orch/store';
import type { Kysely } from 'kysely';
import type { Inbox } from './inbox.ts';
import { assertLease } from './leases.ts';
import { DEFAULT_MESSAGE_BYTES, firstPage } from './message-pages.ts';
import { insertMessage, latestMessage, listMessages, messageSizesNow, messagesInRangeNow } from './queries/messages.ts';
import { getThread, getThreadNow, insertThread, markDeliveredNow, listThreads as queryThreads, setThreadState, type ThreadRow } from './queries/threads.ts';
import {
  MAX_TASK_PAYLOAD_BYTES,
  MAX_TASK_PAYLOAD_DEPTH,
  TERMINAL_STATES,
  type InboxDatabase,
  type MessageKind,
  type MessageRole,
  type ThreadState,
} from './schema.ts';
import { messageView, threadView, type MessageView, type ThreadView } from './views.ts';

export type { ThreadRow };

type Db = Kysely<InboxDatabase>;
/** What in-transaction operations need besides the transaction. */
export type InboxEnv = { clock: Clock; ids: IdGenerator };

/** Roles that write without a lease (the leader's side of a thread). */
export type LeaderSideRole = Extract<MessageRole, 'leader' | 'person'>;

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
  /** Who writes it. Default `leader`. */
  role?: LeaderSideRole | undefined;
}

export interface AppendMessageInput {
  threadId: string;
  from: string;
  body: string;
  payload?: Record<string, unknown> | undefined;
  kind: MessageKind;
  /** When set, the thread must be assigned to this agent. */
  to?: string | undefined;
  /** Who writes it. Default `leader`. */
  role?: LeaderSideRole | undefined;
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
  /** Who writes it. Default `leader`. */
  role?: LeaderSideRole | undefined;
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
    delivered_message_id: null,
    created_at: now,
    updated_at: now,
  });
  const message = await insertMessage(db, messageRow(thread.id, input.from, input.role ?? 'leader', input.kind ?? 'task', input.body, input.payload, now));
  return { created: true, thread: threadView(thread, now), message: messageView(message) };
}

/**
 * Appends a message to a live thread inside the caller's write transaction. An `answer` to a
 * blocked thread unblocks it: back to claimed, or to open when nobody holds it (it was released
 * with its question pending).
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
  const message = await insertMessage(db, messageRow(thread.id, input.from, input.role ?? 'leader', input.kind, input.body, input.payload, now));
  if (input.kind === 'answer' && thread.state === 'blocked') {
    thread = await setThreadState(db, { id: thread.id, state: thread.lease_token === null ? 'open' : 'claimed', now });
  }
  return { created: false, thread: threadView(thread, now), message: messageView(message) };
}

/**
 * `inbox send`: without `threadId`, opens a thread assigned to `to` whose first message is a task;
 * with it, appends a note.
 *
 * @throws ValidationError (2) when opening without `to` or `subject`; NotFoundError (3),
 *   ConflictError (4) as for appendMessageIn; ForbiddenError (4) when the inbox acts as one agent
 *   (Inbox.actingAgent) and the thread, or `to`, is another agent's.
 */
export async function send(inbox: Inbox, input: SendInput): Promise<SendResult> {
  return writeTransaction<InboxDatabase, SendResult>(inbox.store, async (trx) => {
    if (input.threadId !== undefined) {
      if (inbox.actingAgent !== undefined) assertActing(inbox, await requireThread(trx, input.threadId));
      return appendMessageIn(trx, inbox, {
        threadId: input.threadId,
        from: input.from,
        body: input.body,
        payload: input.payload,
        kind: 'note',
        to: input.to,
        role: input.role,
      });
    }
    if (input.to === undefined || input.subject === undefined) {
      throw new ValidationError('`to` and `subject` are required to open a thread (or give a thread id)');
    }
    if (inbox.actingAgent !== undefined && input.to !== inbox.actingAgent) {
      throw new ForbiddenError(`this session acts only as ${inbox.actingAgent}; it cannot open a thread for ${input.to}`, { agent: inbox.actingAgent });
    }
    return openThreadIn(trx, inbox, { to: input.to, subject: input.subject, from: input.from, body: input.body, payload: input.payload, role: input.role });
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

/**
 * `inbox list`: threads newest first, filtered by assigned agent and/or state. An inbox limited to
 * one agent (Inbox.actingAgent) lists that agent's threads only.
 *
 * @throws ForbiddenError (4) when such an inbox asks for another agent's threads.
 */
export async function listThreads(inbox: Inbox, input: ListInput): Promise<ListResult> {
  const acting = inbox.actingAgent;
  if (acting !== undefined && input.agent !== undefined && input.agent !== acting) {
    throw new ForbiddenError(`this session acts only as ${acting}; it cannot list the threads of ${input.agent}`, { agent: acting });
  }
  const agent = acting ?? input.agent;
  const rows = await queryThreads(inbox.store.db as Db, {
    ...(agent !== undefined ? { agent } : {}),
    ...(input.state !== undefined ? { state: input.state } : {}),
    limit: input.limit ?? 100,
  });
  const now = inbox.clock.now();
  return { threads: rows.map((r) => threadView(r, now)) };
}

export interface ShowInput {
  threadId: string;
  /** Only messages with a larger id. Default 0 (from the start). */
  afterMessage?: number | undefined;
  /** At most this many messages. Default: as many as fit `maxBytes`. */
  limit?: number | undefined;
  /** At most about this many bytes of bodies and payloads (at least one message). Default DEFAULT_MESSAGE_BYTES. */
  maxBytes?: number | undefined;
  /**
   * The caller's lease: checked (exit 5 when lost), and what the page gives it counts as delivered,
   * so its next `wait` starts after it.
   */
  lease?: string | undefined;
}

export interface ShowResult {
  thread: ThreadView;
  /** Oldest first, after `afterMessage`, up to `limit` and `maxBytes`. */
  messages: MessageView[];
  /** Whether later messages were left out: pass `last_message_id` as `--after-message` for the next page. */
  more: boolean;
  /** Id of the last message returned (or `afterMessage` when none was). */
  last_message_id: number;
}

/**
 * `inbox show`: the thread and a page of its messages, oldest first after `afterMessage`, bounded
 * by `limit` and `maxBytes` so that no thread makes the answer too large to print.
 *
 * @throws NotFoundError (3) for an unknown thread; with `lease`, LeaseLostError (5) or
 *   ConflictError (4) as for heartbeat.
 */
export async function showThread(inbox: Inbox, input: ShowInput): Promise<ShowResult> {
  const after = input.afterMessage ?? 0;
  const page = function* (thread: ThreadRow, now: number): Step<ShowResult> {
    const sizes = yield* messageSizesNow(thread.id, after);
    const p = firstPage(sizes, { maxBytes: input.maxBytes ?? DEFAULT_MESSAGE_BYTES, limit: input.limit });
    const rows = p.throughId === undefined ? [] : yield* messagesInRangeNow(thread.id, after, p.throughId);
    return { thread: threadView(thread, now), messages: rows.map(messageView), more: p.more, last_message_id: p.throughId ?? after };
  };
  const lease = input.lease;
  if (lease === undefined) {
    return readNow(inbox.store, function* () {
      const thread = yield* requireThreadNow(input.threadId);
      assertActing(inbox, thread);
      return yield* page(thread, inbox.clock.now());
    });
  }
  return writeNow(inbox.store, function* () {
    const thread = yield* requireThreadNow(input.threadId);
    assertActing(inbox, thread);
    const now = inbox.clock.now();
    assertLease(thread, lease, now);
    const shown = yield* page(thread, now);
    // A page that starts where the holder's delivered messages end (or before) extends them.
    if (after <= (thread.delivered_message_id ?? 0)) yield* markDeliveredNow({ id: thread.id, token: lease, throughId: shown.last_message_id });
    return shown;
  });
}

/** @throws NotFoundError (3) */
export async function requireThread(db: Db, id: string): Promise<ThreadRow> {
  const thread = await getThread(db, id);
  if (!thread) throw new NotFoundError(`no thread ${id}`, { thread_id: id });
  return thread;
}

/** requireThread as a step (inside writeNow/readNow). @throws NotFoundError (3) */
export function* requireThreadNow(id: string): Step<ThreadRow> {
  const thread = yield* getThreadNow(id);
  if (!thread) throw new NotFoundError(`no thread ${id}`, { thread_id: id });
  return thread;
}

/**
 * Checks that an inbox limited to one agent (Inbox.actingAgent) may touch `thread`: it must be
 * assigned to that agent. The message does not say whom it is assigned to.
 *
 * @throws ForbiddenError (4)
 */
export function assertActing(inbox: { actingAgent?: string | undefined }, thread: ThreadRow): void {
  const agent = inbox.actingAgent;
  if (agent !== undefined && thread.assigned_to !== agent) {
    throw new ForbiddenError(`thread ${thread.id} is not assigned to ${agent}, and this session acts only as ${agent}`, {
      thread_id: thread.id,
      agent,
    });
  }
}

/** @throws ConflictError (4) when the thread is done, failed or cancelled. */
export function assertLive(thread: ThreadRow, action: string): void {
  if (TERMINAL_STATES.includes(thread.state)) {
    throw new ConflictError(`cannot ${action} thread ${thread.id}: it is ${thread.state}`, { thread_id: thread.id, state: thread.state });
  }
}

/**
 * A message row to insert. The payload is checked as the CLI checks `--payload-json` (so a caller
 * of the library cannot store what a later read could not give back).
 *
 * @throws ValidationError (2) for a payload nested deeper than MAX_JSON_DEPTH or larger than
 *   MAX_TEXT_BYTES (for a task message: MAX_TASK_PAYLOAD_DEPTH and MAX_TASK_PAYLOAD_BYTES).
 */
export function messageRow(
  threadId: string,
  author: string,
  role: MessageRole,
  kind: MessageKind,
  body: string,
  payload: Record<string, unknown> | undefined,
  now: number,
) {
  return { thread_id: threadId, author, role, kind, body, payload: payload === undefined ? null : payloadText(kind, payload), created_at: now };
}

function payloadText(kind: MessageKind, payload: Record<string, unknown>): string {
  const maxDepth = kind === 'task' ? MAX_TASK_PAYLOAD_DEPTH : MAX_JSON_DEPTH;
  const maxBytes = kind === 'task' ? MAX_TASK_PAYLOAD_BYTES : MAX_TEXT_BYTES;
  if (jsonValueDepth(payload, maxDepth) > maxDepth) {
    const message = `must nest at most ${maxDepth} levels of arrays and objects`;
    throw new ValidationError(`payload: ${message}`, [{ path: 'payload', message }]);
  }
  const text = JSON.stringify(payload);
  if (Buffer.byteLength(text, 'utf8') > maxBytes) {
    const message = `must be at most ${maxBytes} bytes`;
    throw new ValidationError(`payload: ${message}`, [{ path: 'payload', message }]);
  }
  return text;
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
