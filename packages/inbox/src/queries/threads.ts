import type { ExpressionBuilder, Insertable, Kysely, Selectable } from 'kysely';
import type { InboxDatabase, ThreadState } from '../schema.ts';

export type ThreadRow = Selectable<InboxDatabase['inbox_threads']>;
type Db = Kysely<InboxDatabase>;

export async function insertThread(db: Db, row: Insertable<InboxDatabase['inbox_threads']>): Promise<ThreadRow> {
  return db.insertInto('inbox_threads').values(row).returningAll().executeTakeFirstOrThrow();
}

export async function getThread(db: Db, id: string): Promise<ThreadRow | undefined> {
  return db.selectFrom('inbox_threads').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Threads newest first, optionally for one agent and/or in one state. */
export async function listThreads(
  db: Db,
  filter: { agent?: string; state?: ThreadState; limit: number },
): Promise<ThreadRow[]> {
  let q = db.selectFrom('inbox_threads').selectAll();
  if (filter.agent !== undefined) q = q.where('assigned_to', '=', filter.agent);
  if (filter.state !== undefined) q = q.where('state', '=', filter.state);
  return q.orderBy('seq', 'desc').limit(filter.limit).execute();
}

/** Open, or held under a lease that has run out (a blocked thread keeps its pending question). */
function claimable(now: number) {
  return (eb: ExpressionBuilder<InboxDatabase, 'inbox_threads'>) =>
    eb.or([
      eb('state', '=', 'open'),
      eb.and([eb('state', 'in', ['claimed', 'blocked']), eb('lease_expires_at', '<=', now)]),
    ]);
}

/** The oldest thread `agent` could claim now (or the given one, if it is claimable). */
export async function findClaimable(
  db: Db,
  args: { agent: string; threadId?: string; now: number },
): Promise<ThreadRow | undefined> {
  let q = db.selectFrom('inbox_threads').selectAll().where('assigned_to', '=', args.agent).where(claimable(args.now));
  if (args.threadId !== undefined) q = q.where('id', '=', args.threadId);
  return q.orderBy('seq').limit(1).executeTakeFirst();
}

/**
 * Claims the oldest claimable thread of `agent` (or the given one) in ONE statement that changes
 * at most one row and re-checks claimability in its WHERE, so two claimers can never both win.
 */
export async function claimOne(
  db: Db,
  args: { agent: string; threadId?: string; token: string; now: number; leaseMs: number },
): Promise<ThreadRow | undefined> {
  return db
    .updateTable('inbox_threads')
    .set((eb) => ({
      state: eb.case().when('state', '=', 'blocked').then('blocked' as ThreadState).else('claimed' as ThreadState).end(),
      claimed_by: args.agent,
      lease_token: args.token,
      lease_expires_at: args.now + args.leaseMs,
      lease_ms: args.leaseMs,
      claim_count: eb('claim_count', '+', 1),
      updated_at: args.now,
    }))
    .where('seq', '=', (eb) => {
      let q = eb.selectFrom('inbox_threads').select('seq').where('assigned_to', '=', args.agent).where(claimable(args.now));
      if (args.threadId !== undefined) q = q.where('id', '=', args.threadId);
      return q.orderBy('seq').limit(1);
    })
    .where(claimable(args.now))
    .returningAll()
    .executeTakeFirst();
}

/** Moves the lease's expiry (and optionally its length) for the holder of `token`. */
export async function extendLease(
  db: Db,
  args: { id: string; token: string; expiresAt: number; leaseMs: number; now: number },
): Promise<ThreadRow | undefined> {
  return db
    .updateTable('inbox_threads')
    .set({ lease_expires_at: args.expiresAt, lease_ms: args.leaseMs, updated_at: args.now })
    .where('id', '=', args.id)
    .where('lease_token', '=', args.token)
    .returningAll()
    .executeTakeFirst();
}

/** Sets a thread's state; `endLease` drops the lease (and, with `forget`, who held it). */
export async function setThreadState(
  db: Db,
  args: { id: string; state: ThreadState; now: number; endLease?: boolean; forgetClaimer?: boolean },
): Promise<ThreadRow> {
  return db
    .updateTable('inbox_threads')
    .set({
      state: args.state,
      updated_at: args.now,
      ...(args.endLease ? { lease_token: null, lease_expires_at: null, lease_ms: null } : {}),
      ...(args.forgetClaimer ? { claimed_by: null } : {}),
    })
    .where('id', '=', args.id)
    .returningAll()
    .executeTakeFirstOrThrow();
}
