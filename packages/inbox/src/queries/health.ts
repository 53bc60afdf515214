import type { ExpressionBuilder, Kysely } from 'kysely';
import type { InboxDatabase } from '../schema.ts';
import type { ThreadRow } from './threads.ts';

type Db = Kysely<InboxDatabase>;

/** Rows in each inbox table. */
export async function inboxCounts(db: Db): Promise<{ threads: number; messages: number }> {
  const t = await db
    .selectFrom('inbox_threads')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  const m = await db
    .selectFrom('inbox_messages')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return { threads: Number(t.n), messages: Number(m.n) };
}

// A blocked thread with no lease at all was released with its question pending: whole, not broken.
const incompleteLease = (eb: ExpressionBuilder<InboxDatabase, 'inbox_threads'>) =>
  eb.and([
    eb.or([
      eb('claimed_by', 'is', null),
      eb('lease_token', 'is', null),
      eb('lease_expires_at', 'is', null),
      eb('lease_ms', 'is', null),
      eb('claim_count', '<', 1),
    ]),
    eb.not(
      eb.and([
        eb('state', '=', 'blocked'),
        eb('claimed_by', 'is', null),
        eb('lease_token', 'is', null),
        eb('lease_expires_at', 'is', null),
        eb('lease_ms', 'is', null),
        eb('claim_count', '>=', 1),
      ]),
    ),
  ]);

/**
 * Claimed or blocked threads missing part of their lease (holder, token, expiry or length). A
 * blocked thread with none of them was released with its question pending, which is fine.
 */
export async function heldWithoutLease(db: Db): Promise<ThreadRow[]> {
  return db.selectFrom('inbox_threads').selectAll().where('state', 'in', ['claimed', 'blocked']).where(incompleteLease).orderBy('seq').execute();
}

/** Open or finished threads that still carry a lease token (a token that should open no door). */
export async function strayLeases(db: Db): Promise<ThreadRow[]> {
  return db
    .selectFrom('inbox_threads')
    .selectAll()
    .where('state', 'in', ['open', 'done', 'failed', 'cancelled'])
    .where((eb) => eb.or([eb('lease_token', 'is not', null), eb('lease_expires_at', 'is not', null)]))
    .orderBy('seq')
    .execute();
}

/** Held threads whose lease has run out by `now`: claimable again. */
export async function expiredLeases(db: Db, now: number): Promise<ThreadRow[]> {
  return db.selectFrom('inbox_threads').selectAll().where('state', 'in', ['claimed', 'blocked']).where('lease_expires_at', '<=', now).orderBy('seq').execute();
}

/** Threads without any message (every thread starts with its first message). */
export async function threadsWithoutMessages(db: Db): Promise<ThreadRow[]> {
  return db
    .selectFrom('inbox_threads as t')
    .selectAll('t')
    .where((eb) => eb.not(eb.exists(eb.selectFrom('inbox_messages as m').select('m.id').whereRef('m.thread_id', '=', 't.id'))))
    .orderBy('t.seq')
    .execute();
}

/**
 * Blocked threads whose last question-or-answer message is not a question: nothing to wait for.
 * (A claimed thread may end on an unanswered question: it was released and claimed again.)
 */
export async function blockedWithoutQuestion(db: Db): Promise<ThreadRow[]> {
  const blocked = await db.selectFrom('inbox_threads').selectAll().where('state', '=', 'blocked').orderBy('seq').execute();
  const out: ThreadRow[] = [];
  for (const thread of blocked) {
    const last = await db
      .selectFrom('inbox_messages')
      .select('kind')
      .where('thread_id', '=', thread.id)
      .where('kind', 'in', ['question', 'answer'])
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (last?.kind !== 'question') out.push(thread);
  }
  return out;
}

/** Gives a thread that nobody can hold back to its agent: open, with no lease. */
export async function reopenThread(db: Db, id: string, now: number): Promise<boolean> {
  const r = await db
    .updateTable('inbox_threads')
    .set({ state: 'open', claimed_by: null, lease_token: null, lease_expires_at: null, lease_ms: null, updated_at: now })
    .where('id', '=', id)
    .where('state', 'in', ['claimed', 'blocked'])
    .where(incompleteLease)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Drops a lease token left on an open or finished thread. */
export async function clearStrayLease(db: Db, id: string, now: number): Promise<boolean> {
  const r = await db
    .updateTable('inbox_threads')
    .set({ lease_token: null, lease_expires_at: null, lease_ms: null, updated_at: now })
    .where('id', '=', id)
    .where('state', 'in', ['open', 'done', 'failed', 'cancelled'])
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Which of `ids` name an existing thread. */
export async function existingThreadIds(db: Db, ids: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const rows = await db.selectFrom('inbox_threads').select('id').where('id', 'in', chunk).execute();
    for (const r of rows) found.add(r.id);
  }
  return found;
}

/**
 * A blocked thread with no question pending goes back to claimed (its lease is kept), or to open
 * when nobody holds it.
 */
export async function unblockThread(db: Db, id: string, now: number): Promise<boolean> {
  const r = await db
    .updateTable('inbox_threads')
    .set((eb) => ({
      state: eb
        .case()
        .when('lease_token', 'is', null)
        .then('open' as const)
        .else('claimed' as const)
        .end(),
      updated_at: now,
    }))
    .where('id', '=', id)
    .where('state', '=', 'blocked')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}
