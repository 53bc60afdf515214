import { preparedQuery, type Step } from '@orch/store';
import { sql, type Insertable, type Kysely, type Selectable } from 'kysely';
import type { InboxDatabase, MessageKind } from '../schema.ts';

export type MessageRow = Selectable<InboxDatabase['inbox_messages']>;
type Db = Kysely<InboxDatabase>;

export async function insertMessage(db: Db, row: Insertable<InboxDatabase['inbox_messages']>): Promise<MessageRow> {
  return db.insertInto('inbox_messages').values(row).returningAll().executeTakeFirstOrThrow();
}

const messagesAfter = preparedQuery((db: Db, p: { threadId: string; afterId: number }) =>
  db.selectFrom('inbox_messages').selectAll().where('thread_id', '=', p.threadId).where('id', '>', p.afterId).orderBy('id'),
);

/** A thread's messages in order, optionally only those after message `afterId`. */
export async function listMessages(db: Db, threadId: string, afterId = 0): Promise<MessageRow[]> {
  return messagesAfter.execute(db, { threadId, afterId });
}

/** listMessages, as a step (inside writeNow/readNow). */
export function* listMessagesNow(threadId: string, afterId = 0): Step<MessageRow[]> {
  return yield* messagesAfter.rows({ threadId, afterId });
}

/** The first message of a thread (the task that opened it), or undefined for an unknown thread. */
export async function firstMessage(db: Db, threadId: string): Promise<MessageRow | undefined> {
  return db.selectFrom('inbox_messages').selectAll().where('thread_id', '=', threadId).orderBy('id').limit(1).executeTakeFirst();
}

/** A message's id, kind and size (bytes of UTF-8 of its body and payload), without loading either. */
export interface MessageSize {
  id: number;
  kind: MessageKind;
  bytes: number;
}

/**
 * Which messages a reader wants: all of them, those of the worker side (roles worker and runner:
 * what the leader waits for), or those of the leader side (every other role: what a lease holder
 * waits for). Written as literals so each side is its own prepared statement.
 */
export type Side = 'all' | 'worker' | 'leader';

const sideFilter = {
  all: sql<boolean>`1 = 1`,
  worker: sql<boolean>`role in ('worker', 'runner')`,
  leader: sql<boolean>`role not in ('worker', 'runner')`,
};

function bySide<Q>(make: (side: Side) => Q): Record<Side, Q> {
  return { all: make('all'), worker: make('worker'), leader: make('leader') };
}

// octet_length reads the stored length, not the text: sizing a thread of large messages is cheap.
const sizesAfter = bySide((side) =>
  preparedQuery((db: Db, p: { threadId: string; afterId: number }) =>
    db
      .selectFrom('inbox_messages')
      .select(['id', 'kind'])
      .select(sql<number>`octet_length(body) + coalesce(octet_length(payload), 0)`.as('bytes'))
      .where('thread_id', '=', p.threadId)
      .where('id', '>', p.afterId)
      .where(sideFilter[side])
      .orderBy('id'),
  ),
);

/** Sizes of the thread's messages after `afterId` (of one side, or all), oldest first. A step. */
export function* messageSizesNow(threadId: string, afterId: number, side: Side = 'all'): Step<MessageSize[]> {
  return yield* sizesAfter[side].rows({ threadId, afterId });
}

const messagesInRange = bySide((side) =>
  preparedQuery((db: Db, p: { threadId: string; afterId: number; throughId: number }) =>
    db
      .selectFrom('inbox_messages')
      .selectAll()
      .where('thread_id', '=', p.threadId)
      .where('id', '>', p.afterId)
      .where('id', '<=', p.throughId)
      .where(sideFilter[side])
      .orderBy('id'),
  ),
);

/** The thread's messages (of one side, or all) with `afterId < id <= throughId`, oldest first. A step. */
export function* messagesInRangeNow(threadId: string, afterId: number, throughId: number, side: Side = 'all'): Step<MessageRow[]> {
  return yield* messagesInRange[side].rows({ threadId, afterId, throughId });
}

const lastIdOfSide = bySide((side) =>
  preparedQuery((db: Db, p: { threadId: string }) =>
    db
      .selectFrom('inbox_messages')
      .select((eb) => eb.fn.max('id').as('id'))
      .where('thread_id', '=', p.threadId)
      .where(sideFilter[side]),
  ),
);

/** Id of the newest message of the thread (of one side, or all), or 0. A step. */
export function* lastMessageIdNow(threadId: string, side: Side = 'all'): Step<number> {
  return Number((yield* lastIdOfSide[side].row({ threadId }))?.id ?? 0);
}

/** Id of the newest message of the thread, or 0. */
export async function lastMessageId(db: Db, threadId: string): Promise<number> {
  const row = await db
    .selectFrom('inbox_messages')
    .select((eb) => eb.fn.max('id').as('id'))
    .where('thread_id', '=', threadId)
    .executeTakeFirst();
  return Number(row?.id ?? 0);
}

/** The newest message of a thread, optionally only of one kind. */
export async function latestMessage(db: Db, threadId: string, kind?: MessageRow['kind']): Promise<MessageRow | undefined> {
  let q = db.selectFrom('inbox_messages').selectAll().where('thread_id', '=', threadId);
  if (kind !== undefined) q = q.where('kind', '=', kind);
  return q.orderBy('id', 'desc').limit(1).executeTakeFirst();
}
