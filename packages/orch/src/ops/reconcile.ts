import { cancelThreadIn, existingThreadIds, threadActivityIn, type MessageKind, type ThreadActivity } from '@orch/inbox';
import { isoTime, readTransaction, writeTransaction } from '@orch/store';
import { emitIn, settleRunIn } from '../events.ts';
import { inboxTx, type Orch, type OrchEnv, type Tx } from '../orch.ts';
import { listAttempts, updateAttempt, type AttemptRow } from '../queries/attempts.ts';
import { setTaskState } from '../queries/tasks.ts';
import { requireRun } from './runs.ts';
import { LIVE_ATTEMPT_STATES, type AttemptState, type EventType, type OrchDatabase } from '../schema.ts';

/** What folding one attempt's thread activity would change. */
interface Fold {
  attempt: AttemptRow;
  state: AttemptState;
  claimsSeen: number;
  lastMessageId: number;
  result: string | null;
  events: { type: EventType; state: AttemptState; data: Record<string, unknown> }[];
  /** The lease ran out: the thread is cancelled so the old worker is fenced out. */
  expireThread: boolean;
}

export interface ReconcileResult {
  run: string;
  /** Events this call wrote (0 when everything was already folded in). */
  events_written: number;
}

/**
 * Folds worker activity on the run's live attempts (claims, progress, questions, answers,
 * results, failures, releases, expired leases) into attempts, tasks and events. Idempotent: each
 * attempt keeps a cursor (last message and claim count folded in). Reads first and takes the
 * write lock only when there is something to fold.
 *
 * @throws NotFoundError (3) for an unknown run.
 */
export async function reconcile(orch: Orch, runId: string): Promise<ReconcileResult> {
  const pending = await readTransaction<OrchDatabase, Fold[]>(orch.store, async (trx) => {
    await requireRun(trx, runId);
    return planIn(trx, orch, runId);
  });
  if (pending.length === 0) return { run: runId, events_written: 0 };
  return writeTransaction<OrchDatabase, ReconcileResult>(orch.store, async (trx) => ({
    run: runId,
    events_written: await reconcileIn(trx, orch, runId),
  }));
}

/**
 * Runs `fn` on the run as reconcile leaves it, and commits the reconcile writes only if `fn`
 * succeeds: a command that looks something up or checks a state after reconciling, and refuses,
 * writes nothing (rule 12). With nothing to fold in, `fn` runs in a read transaction (no write lock).
 * `fn` must not await anything but the database (it may run inside a write transaction).
 *
 * @throws NotFoundError (3) for an unknown run; whatever `fn` throws.
 */
export async function reconcileThen<T>(orch: Orch, runId: string, fn: (trx: Tx) => Promise<T>): Promise<T> {
  const quiet = await quietRead(orch, runId, fn);
  if (quiet) return quiet.value;
  return writeTransaction<OrchDatabase, T>(orch.store, async (trx) => {
    await reconcileIn(trx, orch, runId);
    return fn(trx);
  });
}

/**
 * Runs `fn` on the run as reconcile would leave it, and never commits: the reconcile writes are
 * rolled back whatever `fn` does. For commands that must decide before work outside the database
 * (git) and record afterwards in a transaction of their own, which reconciles again: a refusal
 * at any step then leaves the database as it was.
 *
 * @throws NotFoundError (3) for an unknown run; whatever `fn` throws.
 */
export async function reconciledView<T>(orch: Orch, runId: string, fn: (trx: Tx) => Promise<T>): Promise<T> {
  const quiet = await quietRead(orch, runId, fn);
  if (quiet) return quiet.value;
  return writeOrRollBack<T>(orch, async (trx, rollBack) => {
    await reconcileIn(trx, orch, runId);
    return rollBack(await fn(trx));
  });
}

/**
 * A write transaction that `fn` may end with `rollBack(value)`: then nothing it wrote is kept and
 * `value` is returned. For deciding in the state reconcile would leave, without keeping it.
 */
export async function writeOrRollBack<T>(orch: Orch, fn: (trx: Tx, rollBack: (value: T) => never) => Promise<T>): Promise<T> {
  try {
    return await writeTransaction<OrchDatabase, T>(orch.store, (trx) =>
      fn(trx, (value) => {
        throw new RolledBack(value);
      }),
    );
  } catch (err) {
    if (err instanceof RolledBack) return err.value as T;
    throw err;
  }
}

/** Carries a value out of a write transaction that must roll back. */
class RolledBack extends Error {
  constructor(readonly value: unknown) {
    super('rolled back on purpose');
  }
}

/** `fn` in a read transaction when there is nothing to fold in; undefined otherwise. */
async function quietRead<T>(orch: Orch, runId: string, fn: (trx: Tx) => Promise<T>): Promise<{ value: T } | undefined> {
  return readTransaction<OrchDatabase, { value: T } | undefined>(orch.store, async (trx) => {
    await requireRun(trx, runId);
    if ((await planIn(trx, orch, runId)).length > 0) return undefined;
    return { value: await fn(trx) };
  });
}

/** Reconcile inside the caller's write transaction; returns the number of events written. */
export async function reconcileIn(trx: Tx, env: OrchEnv, runId: string): Promise<number> {
  const folds = await planIn(trx, env, runId);
  let written = 0;
  const now = env.clock.now();
  for (const f of folds) {
    const a = f.attempt;
    for (const e of f.events) {
      await emitIn(trx, env, { runId, taskId: a.task_id, attemptId: a.id, type: e.type, taskState: e.state, data: e.data });
      written += 1;
    }
    if (f.expireThread) {
      await cancelThreadIn(inboxTx(trx), env, {
        threadId: a.thread_id,
        by: 'orch',
        reason: `The lease ran out, so attempt ${a.number} of task ${a.task_id} expired; the leader may retry it.`,
      });
    }
    const ended = !LIVE_ATTEMPT_STATES.includes(f.state);
    await updateAttempt(trx, a.id, {
      state: f.state,
      claims_seen: f.claimsSeen,
      last_message_id: f.lastMessageId,
      result: f.result,
      updated_at: now,
      ...(ended ? { ended_at: now } : {}),
    });
    if (f.state !== a.state) await setTaskState(trx, { runId, id: a.task_id, state: f.state, now });
  }
  if (folds.some((f) => f.state === 'done')) await settleRunIn(trx, env, runId);
  return written;
}

/** Read-only: the live attempts whose thread has activity not folded in yet, and the state folding would give them. */
export async function unfoldedIn(trx: Tx, env: OrchEnv, runId: string): Promise<{ attempt: AttemptRow; state: AttemptState; events: EventType[] }[]> {
  return (await planIn(trx, env, runId)).map((f) => ({ attempt: f.attempt, state: f.state, events: f.events.map((e) => e.type) }));
}

async function planIn(trx: Tx, env: OrchEnv, runId: string): Promise<Fold[]> {
  const live = await listAttempts(trx, { runId, states: LIVE_ATTEMPT_STATES });
  // An attempt whose thread was deleted (damage) has nothing to fold: it is left as it is, so the
  // rest of the run stays manageable; `status` shows it, `cancel` closes it, and doctor reports it.
  const threads = await existingThreadIds(
    inboxTx(trx),
    live.map((a) => a.thread_id),
  );
  const folds: Fold[] = [];
  for (const attempt of live) {
    if (!threads.has(attempt.thread_id)) continue;
    const activity = await threadActivityIn(inboxTx(trx), env, attempt.thread_id, attempt.last_message_id);
    const fold = foldAttempt(attempt, activity);
    if (fold.events.length > 0 || fold.state !== attempt.state || fold.lastMessageId !== attempt.last_message_id || fold.claimsSeen !== attempt.claims_seen) {
      folds.push(fold);
    }
  }
  return folds;
}

/** Pure: the attempt's new state and the events that explain it, from its thread's activity. */
function foldAttempt(attempt: AttemptRow, activity: ThreadActivity): Fold {
  const { thread, view, messages } = activity;
  const f: Fold = {
    attempt,
    state: attempt.state,
    claimsSeen: attempt.claims_seen,
    lastMessageId: attempt.last_message_id,
    result: attempt.result,
    events: [],
    expireThread: false,
  };
  const push = (type: EventType, data: Record<string, unknown>) => f.events.push({ type, state: f.state, data });
  const thread_id = thread.id;
  const claim = { thread_id, claimed_by: thread.claimed_by, claim_count: thread.claim_count };
  const claimed = thread.claim_count > attempt.claims_seen;
  f.claimsSeen = thread.claim_count;

  // Claims leave no message, so their place among the messages is inferred. Normally the claim
  // came first. But a thread that is claimed (not blocked) although its messages end on an
  // unanswered question was released and claimed again after that question: the question is
  // dropped, and the release and new claim come last.
  const reclaimedAfterQuestion = claimed && thread.state === 'claimed' && foldMessages(f.state, messages) === 'blocked';
  if (claimed && !reclaimedAfterQuestion) {
    if (f.state === 'running' || f.state === 'blocked') {
      // Held before, claimed again since: the thread was released (or its lease ran out) in between.
      const wasBlocked = f.state === 'blocked';
      f.state = 'dispatched';
      push('task_released', { thread_id, reason: 'released, or its lease ran out, and claimed again' });
      f.state = wasBlocked && thread.state === 'blocked' ? 'blocked' : 'running';
    } else if (f.state === 'dispatched') {
      f.state = 'running';
    }
    push('task_claimed', claim);
  }
  for (const m of messages) {
    f.lastMessageId = m.id;
    if (!LIVE_ATTEMPT_STATES.includes(f.state)) continue;
    const next = messageState(f.state, m.kind);
    if (next === undefined) continue; // task and note messages carry no state change.
    f.state = next.state;
    if (m.kind === 'result' || m.kind === 'failure') f.result = JSON.stringify({ body: m.body, payload: m.payload });
    push(next.event, { thread_id, message_id: m.id, author: m.author, body: m.body, payload: m.payload });
  }
  if (reclaimedAfterQuestion && f.state === 'blocked') {
    f.state = 'dispatched';
    push('task_released', { thread_id, reason: 'released with its question unanswered' });
    f.state = 'running';
    push('task_claimed', claim);
  }
  if (!LIVE_ATTEMPT_STATES.includes(f.state)) return f;
  if (thread.state === 'open' && f.state !== 'dispatched') {
    f.state = 'dispatched';
    push('task_released', { thread_id });
  } else if (thread.state === 'cancelled' || thread.state === 'done' || thread.state === 'failed') {
    // Ended outside orch without a result or failure message (manual repair): treat as failed.
    f.state = 'failed';
    push('task_failed', { thread_id, reason: `thread ${thread_id} was ${thread.state} outside orch` });
  } else if (view.lease_expired) {
    f.state = 'expired';
    f.expireThread = true;
    push('attempt_expired', {
      thread_id,
      claimed_by: thread.claimed_by,
      expired_at: thread.lease_expires_at === null ? null : isoTime(thread.lease_expires_at),
    });
  }
  return f;
}

/** The attempt state after a worker message of `kind`, and the event it is logged as. */
function messageState(state: AttemptState, kind: MessageKind): { state: AttemptState; event: EventType } | undefined {
  switch (kind) {
    case 'progress':
      return { state: state === 'dispatched' ? 'running' : state, event: 'task_progress' };
    case 'question':
      return { state: 'blocked', event: 'task_blocked' };
    case 'answer':
      return { state: state === 'blocked' ? 'running' : state, event: 'task_answered' };
    case 'result':
      return { state: 'done', event: 'task_done' };
    case 'failure':
      return { state: 'failed', event: 'task_failed' };
    default:
      return undefined;
  }
}

/** The state `messages` would leave a live attempt in, starting from `state`. */
function foldMessages(state: AttemptState, messages: { kind: MessageKind }[]): AttemptState {
  let s = state;
  for (const m of messages) {
    if (!LIVE_ATTEMPT_STATES.includes(s)) break;
    s = messageState(s, m.kind)?.state ?? s;
  }
  return s;
}
