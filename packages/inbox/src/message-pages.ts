import type { MessageSize } from './queries/messages.ts';

/**
 * Bytes of message bodies and payloads one `claim`, `show` or `wait` returns by default (8 MiB).
 * A thread may hold far more (no limit on messages per thread); what does not fit is paged with
 * `show --after-message`. Documented in docs/guide.md (Limits).
 */
export const DEFAULT_MESSAGE_BYTES = 8 * 1024 * 1024;
/** Largest `--max-bytes` accepted (64 MiB). */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** A run of messages, oldest first, that fits a budget. */
export interface Page {
  /** How many of the sized messages are in the page (a prefix). */
  count: number;
  /** Id of the last message in the page, or undefined when it is empty. */
  throughId: number | undefined;
  /** Whether messages after the page were left out. */
  more: boolean;
}

/**
 * The longest prefix of `sizes` within `maxBytes` and `limit`, but never empty when there is a
 * message: one message larger than the budget is still returned on its own, so paging always
 * moves forward.
 */
export function firstPage(sizes: readonly MessageSize[], options: { maxBytes: number; limit?: number | undefined }): Page {
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  let bytes = 0;
  let count = 0;
  for (const m of sizes) {
    if (count >= limit) break;
    if (count > 0 && bytes + m.bytes > options.maxBytes) break;
    bytes += m.bytes;
    count += 1;
  }
  return { count, throughId: count > 0 ? sizes[count - 1]?.id : undefined, more: count < sizes.length };
}

/** What a claim hands its holder out of a thread's messages. */
export interface ClaimPick {
  /** Ids of messages returned that come before the recent run (the task, a pending question). */
  pinned: number[];
  /** Id of the oldest message of the recent run (every message from it on is returned). */
  recentFrom: number;
  /** Messages left out: how many, and the ids they lie between (page them with `show`). */
  omitted: { count: number; first_id: number; last_id: number } | null;
}

/**
 * The messages a claim returns: the first (the task) and, on a blocked thread, the pending
 * question, always; then the most recent messages, newest first, as long as they fit `maxBytes`
 * (the newest always does). Everything else is counted as omitted.
 */
export function claimPick(sizes: readonly MessageSize[], options: { maxBytes: number; blocked: boolean }): ClaimPick {
  const first = sizes[0];
  if (first === undefined) return { pinned: [], recentFrom: 1, omitted: null };
  let question: MessageSize | undefined;
  if (options.blocked) for (const m of sizes) if (m.kind === 'question') question = m;
  const pinnedSizes = [first, ...(question && question.id !== first.id ? [question] : [])];
  const isPinned = (m: MessageSize) => pinnedSizes.some((p) => p.id === m.id);
  let bytes = pinnedSizes.reduce((n, m) => n + m.bytes, 0);
  let start = sizes.length - 1;
  const newest = sizes[start] as MessageSize;
  if (!isPinned(newest)) bytes += newest.bytes;
  while (start > 0) {
    const prev = sizes[start - 1] as MessageSize;
    if (!isPinned(prev)) {
      if (bytes + prev.bytes > options.maxBytes) break;
      bytes += prev.bytes;
    }
    start -= 1;
  }
  const recentFrom = (sizes[start] as MessageSize).id;
  const pinned = pinnedSizes.filter((p) => p.id < recentFrom).map((p) => p.id);
  const left = sizes.slice(0, start).filter((m) => !pinned.includes(m.id));
  const omitted = left.length === 0 ? null : { count: left.length, first_id: (left[0] as MessageSize).id, last_id: (left.at(-1) as MessageSize).id };
  return { pinned, recentFrom, omitted };
}
