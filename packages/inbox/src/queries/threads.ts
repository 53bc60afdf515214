import { sql, type ExpressionBuilder, type Insertable, type Kysely, type Selectable } from 'kysely';
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

/**
 * The `seq` of the oldest thread `agent` could claim now (or of the given one, if claimable).
 * Two indexed lookups, one per half of `claimable`: the oldest open thread (by agent, state, seq)
 * and the oldest held thread whose lease ran out (a partial index by agent and lease expiry), so
 * the cost does not grow with the number of threads the agent already holds.
 */
async function claimableSeq(db: Db, args: { agent: string; threadId?: string; now: number }): Promise<number | undefined> {
  let open = db.selectFrom('inbox_threads').select('seq').where('assigned_to', '=', args.agent).where('state', '=', 'open');
  let expired = db
    .selectFrom('inbox_threads')
    .select((eb) => eb.fn.min('seq').as('seq'))
    .where('assigned_to', '=', args.agent)
    // Written as literals, not bound values: only then can SQLite see the partial index applies.
    .where(sql<boolean>`state in ('claimed', 'blocked')`)
    .where('lease_expires_at', '<=', args.now);
  if (args.threadId !== undefined) {
    open = open.where('id', '=', args.threadId);
    expired = expired.where('id', '=', args.threadId);
  }
  const a = await open.orderBy('seq').limit(1).executeTakeFirst();
  const b = await expired.executeTakeFirst();
  const seqs = [a?.seq, b?.seq === null || b?.seq === undefined ? undefined : Number(b.seq)].filter((x): x is number => x !== undefined);
  return seqs.length === 0 ? undefined : Math.min(...seqs);
}

/** The oldest thread `agent` could claim now (or the given one, if it is claimable). */
export async function findClaimable(
  db: Db,
  args: { agent: string; threadId?: string; now: number },
): Promise<ThreadRow | undefined> {
  const seq = await claimableSeq(db, args);
  if (seq === undefined) return undefined;
  return db.selectFrom('inbox_threads').selectAll().where('seq', '=', seq).executeTakeFirst();
}

/**
 * Claims the oldest claimable thread of `agent` (or the given one). Callers run it inside a write
 * (BEGIN IMMEDIATE) transaction; the claim itself is ONE statement that changes at most one row
 * and re-checks claimability in its WHERE, so two claimers can never both win.
 */
export async function claimOne(
  db: Db,
  args: { agent: string; threadId?: string; token: string; now: number; leaseMs: number },
): Promise<ThreadRow | undefined> {
  const seq = await claimableSeq(db, args);
  if (seq === undefined) return undefined;
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
    .where('seq', '=', seq)
    .where('assigned_to', '=', args.agent)
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
