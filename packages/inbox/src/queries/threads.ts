import { isPostgresDb, preparedQuery, type Step } from '@orch/store';
import { sql, type ExpressionBuilder, type Insertable, type Kysely, type Selectable } from 'kysely';
import type { InboxDatabase, ThreadState } from '../schema.ts';

export type ThreadRow = Selectable<InboxDatabase['inbox_threads']>;
type Db = Kysely<InboxDatabase>;

export async function insertThread(db: Db, row: Insertable<InboxDatabase['inbox_threads']>): Promise<ThreadRow> {
  return db.insertInto('inbox_threads').values(row).returningAll().executeTakeFirstOrThrow();
}

const threadById = preparedQuery((db: Db, p: { id: string }) => db.selectFrom('inbox_threads').selectAll().where('id', '=', p.id));

export async function getThread(db: Db, id: string): Promise<ThreadRow | undefined> {
  return (await threadById.execute(db, { id }))[0];
}

/** getThread, as a step (inside writeNow/readNow). */
export function* getThreadNow(id: string): Step<ThreadRow | undefined> {
  return yield* threadById.row({ id });
}

/** Threads newest first, optionally for one agent and/or in one state. */
export async function listThreads(db: Db, filter: { agent?: string; state?: ThreadState; limit: number }): Promise<ThreadRow[]> {
  let q = db.selectFrom('inbox_threads').selectAll();
  if (filter.agent !== undefined) q = q.where('assigned_to', '=', filter.agent);
  if (filter.state !== undefined) q = q.where('state', '=', filter.state);
  return q.orderBy('seq', 'desc').limit(filter.limit).execute();
}

/**
 * Open; blocked with nobody holding it (released with its question pending); or held under a
 * lease that has run out. A blocked thread stays blocked for its next claimer, who sees the
 * pending question.
 */
function claimable(now: number) {
  return (eb: ExpressionBuilder<InboxDatabase, 'inbox_threads'>) =>
    eb.or([
      eb('state', '=', 'open'),
      eb.and([eb('state', '=', 'blocked'), eb('lease_token', 'is', null)]),
      eb.and([eb('state', 'in', ['claimed', 'blocked']), eb('lease_expires_at', '<=', now)]),
    ]);
}

// The `seq` of the oldest thread `agent` could claim now, from indexed lookups, one per part of
// `claimable`: the oldest open thread (by agent, state, seq), the oldest released blocked thread
// (the same index; an agent has few blocked threads) and the oldest held thread whose lease ran
// out (a partial index by agent and lease expiry), so the cost does not grow with the number of
// threads the agent already holds.
function oldestClaimableSeq(db: Db, p: { agent: string; now: number }) {
  const open = db
    .selectFrom('inbox_threads')
    .select((eb) => eb.fn.min('seq').as('seq'))
    .where('assigned_to', '=', p.agent)
    .where('state', '=', 'open');
  const released = db
    .selectFrom('inbox_threads')
    .select((eb) => eb.fn.min('seq').as('seq'))
    .where('assigned_to', '=', p.agent)
    .where(sql<boolean>`state = 'blocked'`)
    .where('lease_token', 'is', null);
  const expired = db
    .selectFrom('inbox_threads')
    .select((eb) => eb.fn.min('seq').as('seq'))
    .where('assigned_to', '=', p.agent)
    // Written as literals, not bound values: only then can SQLite see the partial index applies.
    .where(sql<boolean>`state in ('claimed', 'blocked')`)
    .where('lease_expires_at', '<=', p.now);
  return db.selectFrom(open.unionAll(released).unionAll(expired).as('candidates')).select((eb) => eb.fn.min('seq').as('seq'));
}

const oldestClaimable = preparedQuery((db: Db, p: { agent: string; now: number }) =>
  db.selectFrom('inbox_threads').selectAll().where('seq', '=', oldestClaimableSeq(db, p)),
);
const givenClaimable = preparedQuery((db: Db, p: { agent: string; now: number; id: string }) =>
  db.selectFrom('inbox_threads').selectAll().where('id', '=', p.id).where('assigned_to', '=', p.agent).where(claimable(p.now)),
);

/** The oldest thread `agent` could claim now (or the given one, if it is claimable). */
export function* findClaimable(args: { agent: string; threadId?: string; now: number }): Step<ThreadRow | undefined> {
  const { agent, now, threadId } = args;
  return threadId === undefined ? yield* oldestClaimable.row({ agent, now }) : yield* givenClaimable.row({ agent, now, id: threadId });
}

type ClaimParams = { agent: string; token: string; now: number; expiresAt: number; leaseMs: number };

/**
 * The claim's UPDATE of a claimable row. `ofAgent: false` leaves out the row's agent, for a caller
 * whose row can only be one of the agent's (a thread's agent never changes after it is opened).
 */
function claimUpdate(db: Db, p: ClaimParams, ofAgent = true) {
  const update = db.updateTable('inbox_threads').set((eb) => ({
    state: eb
      .case()
      .when('state', '=', 'blocked')
      .then('blocked' as ThreadState)
      .else('claimed' as ThreadState)
      .end(),
    claimed_by: p.agent,
    lease_token: p.token,
    lease_expires_at: p.expiresAt,
    lease_ms: p.leaseMs,
    claim_count: eb('claim_count', '+', 1),
    // The claim gives its holder every message so far (the newest always among them).
    delivered_message_id: sql<number | null>`(select max(m.id) from inbox_messages m where m.thread_id = inbox_threads.id)`,
    updated_at: p.now,
  }));
  return (ofAgent ? update.where('assigned_to', '=', p.agent) : update).where(claimable(p.now));
}

// On PostgreSQL claimers run side by side (writeClaim in the store): the oldest claimable row is
// picked and locked with FOR UPDATE SKIP LOCKED, so two claimers never wait for or take the same
// thread. As in oldestClaimableSeq, each part of `claimable` is its own indexed lookup (one
// `ORDER BY seq LIMIT 1` can't use an index for the three parts at once, and would step over every
// thread the agent already holds), and the oldest of the (up to three) locked rows is taken; the
// others stay claimable for the next claimer once this transaction ends. On SQLite one writer runs
// at a time and the pick is oldestClaimableSeq. The UPDATE's WHERE re-checks claimability either way.
function lockedClaimableSeq(db: Db, p: { agent: string; now: number }) {
  const oldest = (where: (q: ReturnType<typeof agentThreads>) => ReturnType<typeof agentThreads>) =>
    where(agentThreads(db, p.agent)).orderBy('seq').limit(1).forUpdate().skipLocked();
  return sql<number>`least(${oldest((q) => q.where('state', '=', 'open'))}, ${oldest((q) =>
    q.where('state', '=', 'blocked').where('lease_token', 'is', null),
  )}, ${oldest((q) => q.where(sql<boolean>`state in ('claimed', 'blocked')`).where('lease_expires_at', '<=', p.now))})`;
}

function agentThreads(db: Db, agent: string) {
  return db.selectFrom('inbox_threads').select('seq').where('assigned_to', '=', agent);
}

/**
 * A claimed thread, with how many messages it holds and their size in bytes (as messageSizesNow
 * counts them): a claim that must send them all (most do) reads them in one more query, and one of
 * a thread without messages in none.
 */
export type ClaimedRow = ThreadRow & { message_count: number; message_bytes: number };

function claimReturning(q: ReturnType<typeof claimUpdate>) {
  return q
    .returningAll()
    .returning([
      sql<number>`(select count(*) from inbox_messages m where m.thread_id = inbox_threads.id)`.as('message_count'),
      sql<number>`(select coalesce(sum(octet_length(m.body) + coalesce(octet_length(m.payload), 0)), 0) from inbox_messages m where m.thread_id = inbox_threads.id)`.as(
        'message_bytes',
      ),
    ]);
}

const claimOldest = preparedQuery((db: Db, p: ClaimParams) =>
  claimReturning(
    isPostgresDb(db)
      ? // The locked row is one of the agent's: found by its primary key (with the agent in its
        // WHERE too, PostgreSQL walks the agent's (agent, state, seq) index entries to find the seq).
        claimUpdate(db, p, false).where('seq', '=', lockedClaimableSeq(db, p))
      : claimUpdate(db, p).where('seq', '=', oldestClaimableSeq(db, p)),
  ),
);
const claimGiven = preparedQuery((db: Db, p: ClaimParams & { id: string }) => claimReturning(claimUpdate(db, p).where('id', '=', p.id)));

/**
 * Claims the oldest claimable thread of `agent` (or the given one). Callers run it inside a write
 * (BEGIN IMMEDIATE) transaction (synchronous: writeNow); the claim is ONE statement that changes
 * at most one row and checks claimability in its WHERE, so two claimers can never both win.
 */
export function* claimOne(args: { agent: string; threadId?: string; token: string; now: number; leaseMs: number }): Step<ClaimedRow | undefined> {
  const { agent, token, now, leaseMs, threadId } = args;
  const p = { agent, token, now, expiresAt: now + leaseMs, leaseMs };
  return threadId === undefined ? yield* claimOldest.row(p) : yield* claimGiven.row({ ...p, id: threadId });
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

const markDeliveredQuery = preparedQuery((db: Db, p: { id: string; token: string; throughId: number }) =>
  db
    .updateTable('inbox_threads')
    // The larger of the two, written so both engines read it (SQLite's max(a, b) is PostgreSQL's greatest).
    .set({ delivered_message_id: sql<number>`case when coalesce(delivered_message_id, 0) > ${p.throughId} then delivered_message_id else ${p.throughId} end` })
    .where('id', '=', p.id)
    .where('lease_token', '=', p.token),
);

/**
 * Records that the holder of `token` has been given the messages through `throughId` (the mark
 * only moves forward). A step (inside writeNow). Changes nothing once the token is stale.
 */
export function* markDeliveredNow(args: { id: string; token: string; throughId: number }): Step<void> {
  yield* markDeliveredQuery.exec(args);
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
