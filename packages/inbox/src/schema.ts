import { MAX_JSON_DEPTH, MAX_TEXT_BYTES } from '@orch/store';
import type { Generated } from 'kysely';

export const THREAD_STATES = ['open', 'claimed', 'blocked', 'done', 'failed', 'cancelled'] as const;
export type ThreadState = (typeof THREAD_STATES)[number];

/** States a thread never leaves. */
export const TERMINAL_STATES: readonly ThreadState[] = ['done', 'failed', 'cancelled'];

export const MESSAGE_KINDS = ['task', 'progress', 'question', 'answer', 'result', 'failure', 'note'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

/**
 * Who wrote a message, set by the library call that wrote it (never read from a free-text author
 * name): `leader` (orch, `inbox send`/`reply`), `worker` (a lease holder's progress, ask, result,
 * fail), `runner` (what `inbox work` posts under the lease it holds for its command), `person`.
 */
export const MESSAGE_ROLES = ['leader', 'worker', 'runner', 'person'] as const;
export type MessageRole = (typeof MESSAGE_ROLES)[number];

/** Roles that write under a lease: the worker side of a thread. */
export const WORKER_ROLES: readonly MessageRole[] = ['worker', 'runner'];

/** Mirrors the inbox tables exactly. Times are milliseconds since the epoch. */
export interface InboxDatabase {
  inbox_threads: InboxThreadsTable;
  inbox_messages: InboxMessagesTable;
}

export interface InboxThreadsTable {
  /** Insertion order; "oldest" and "newest" mean this. */
  seq: Generated<number>;
  id: string;
  subject: string;
  assigned_to: string;
  created_by: string;
  state: ThreadState;
  claimed_by: string | null;
  /** The current fencing token; null when nobody holds the thread. */
  lease_token: string | null;
  lease_expires_at: number | null;
  /** Length of the current lease, reused by heartbeat and progress when they extend it. */
  lease_ms: number | null;
  claim_count: number;
  /**
   * The newest message id given to the current lease holder (by claim, and by wait and show with
   * its lease): a wait with the lease returns what others wrote after it. Null when never claimed.
   */
  delivered_message_id: number | null;
  created_at: number;
  updated_at: number;
}

export interface InboxMessagesTable {
  /** Global and increasing: `--after-message N` is a cursor over it. */
  id: Generated<number>;
  thread_id: string;
  author: string;
  role: MessageRole;
  kind: MessageKind;
  body: string;
  /** JSON text of an object, or null. */
  payload: string | null;
  created_at: number;
}

/**
 * Limits of a task message's payload (the one that opens a thread). orch fills it with the
 * attempt's facts and its rendered brief, which quotes the leader's body (up to MAX_TEXT_BYTES)
 * and the task's acceptance JSON (up to MAX_TEXT_BYTES and MAX_JSON_DEPTH, here a few levels
 * down): so anything `task add` and `dispatch` accept fits. Documented in docs/guide.md (Limits).
 */
export const MAX_TASK_PAYLOAD_BYTES = 8 * MAX_TEXT_BYTES;
export const MAX_TASK_PAYLOAD_DEPTH = MAX_JSON_DEPTH + 8;
