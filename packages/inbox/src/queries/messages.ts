import { preparedQuery, type QueryTarget } from '@orch/store';
import type { Insertable, Kysely, Selectable } from 'kysely';
import type { InboxDatabase } from '../schema.ts';

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

/** listMessages, synchronously (inside writeNow/readNow). */
export function listMessagesNow(target: QueryTarget, threadId: string, afterId = 0): MessageRow[] {
  return messagesAfter.all(target, { threadId, afterId });
}

/** The first message of a thread (the task that opened it), or undefined for an unknown thread. */
export async function firstMessage(db: Db, threadId: string): Promise<MessageRow | undefined> {
  return db.selectFrom('inbox_messages').selectAll().where('thread_id', '=', threadId).orderBy('id').limit(1).executeTakeFirst();
}

/** Messages after `afterId` written by anyone but `author`. */
export async function messagesFromOthers(db: Db, threadId: string, afterId: number, author: string): Promise<MessageRow[]> {
  return db
    .selectFrom('inbox_messages')
    .selectAll()
    .where('thread_id', '=', threadId)
    .where('id', '>', afterId)
    .where('author', '!=', author)
    .orderBy('id')
    .execute();
}

/** Id of the last message `author` wrote on the thread, or 0. */
export async function lastMessageIdBy(db: Db, threadId: string, author: string): Promise<number> {
  const row = await db
    .selectFrom('inbox_messages')
    .select((eb) => eb.fn.max('id').as('id'))
    .where('thread_id', '=', threadId)
    .where('author', '=', author)
    .executeTakeFirst();
  return Number(row?.id ?? 0);
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
