import { isoTime, parseStoredJson } from '@orch/store';
import type { MessageRow } from './queries/messages.ts';
import type { ThreadRow } from './queries/threads.ts';
import { MAX_TASK_PAYLOAD_DEPTH, type MessageKind, type MessageRole, type ThreadState } from './schema.ts';

/** A thread as every command prints it. The lease token is never shown, only given to the claimer. */
export interface ThreadView {
  id: string;
  subject: string;
  assigned_to: string;
  created_by: string;
  state: ThreadState;
  claimed_by: string | null;
  claim_count: number;
  lease_expires_at: string | null;
  /** True when a claimed or blocked thread's lease has run out: anyone assigned may claim it again. */
  lease_expired: boolean;
  created_at: string;
  updated_at: string;
}

export interface MessageView {
  id: number;
  thread_id: string;
  author: string;
  /** Who wrote it: leader, worker, runner or person (set by the call that wrote it). */
  role: MessageRole;
  kind: MessageKind;
  body: string;
  /**
   * The payload object, or null. Stored text that cannot be given back safely (nested deeper than
   * the JSON depth limit, written before that limit existed) reads as `{unreadable_json: {reason,
   * bytes, raw}}` instead of failing the whole read.
   */
  payload: Record<string, unknown> | null;
  created_at: string;
}

export interface LeaseView {
  /** The fencing token every worker write must present. */
  token: string;
  expires_at: string;
  /** Lease length; heartbeat and progress extend it by this much. */
  seconds: number;
}

export function threadView(row: ThreadRow, now: number): ThreadView {
  const held = row.state === 'claimed' || row.state === 'blocked';
  return {
    id: row.id,
    subject: row.subject,
    assigned_to: row.assigned_to,
    created_by: row.created_by,
    state: row.state,
    claimed_by: row.claimed_by,
    claim_count: row.claim_count,
    lease_expires_at: held && row.lease_expires_at !== null ? isoTime(row.lease_expires_at) : null,
    lease_expired: held && row.lease_expires_at !== null && row.lease_expires_at <= now,
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
  };
}

export function messageView(row: MessageRow): MessageView {
  return {
    id: row.id,
    thread_id: row.thread_id,
    author: row.author,
    role: row.role,
    kind: row.kind,
    body: row.body,
    payload: row.payload === null ? null : payloadView(row.payload, row.kind === 'task' ? MAX_TASK_PAYLOAD_DEPTH : undefined),
    created_at: isoTime(row.created_at),
  };
}

function payloadView(text: string, maxDepth?: number): Record<string, unknown> {
  const value = parseStoredJson(text, maxDepth);
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  return { unreadable_json: { reason: 'not a JSON object', bytes: Buffer.byteLength(text, 'utf8'), raw: text } };
}
