// Attempts whose records disagree with their task or their thread: what to say, and the repairs
// (each in its own write transaction) that close or cancel them.
import { problem, writeTransaction } from '@orch/store';
import { cancelAttemptIn } from '../ops/cancel.ts';
import { emitIn } from '../events.ts';
import type { Orch, Tx } from '../orch.ts';
import { getAttempt, listAttempts, updateAttempt, type AttemptRow } from '../queries/attempts.ts';
import { setTaskState, type TaskRow } from '../queries/tasks.ts';
import { LIVE_ATTEMPT_STATES, type OrchDatabase } from '../schema.ts';
import type { Finding } from './finding.ts';

/**
 * An attempt whose thread no longer exists. A finished one only lost its history (a warning); a
 * live one can never be claimed, fold or end, so the repair closes it: the task's latest attempt
 * becomes failed with a task_failed event (and so does the task, which can then be retried); an
 * older one is cancelled as superseded.
 */
export function missingThreadFinding(orch: Orch, a: AttemptRow, latest: AttemptRow | undefined): Finding {
  const live = LIVE_ATTEMPT_STATES.includes(a.state);
  const p = problem({
    run: a.run_id,
    kind: 'attempt_thread_missing',
    severity: live ? 'error' : 'warning',
    task: a.task_id,
    attempt: a.id,
    thread: a.thread_id,
    message: `attempt ${a.id} (task ${a.task_id} #${a.number}, ${a.state}) names thread ${a.thread_id}, which does not exist`,
    repair: live ? 'close the attempt as failed (nobody can work on it), so the task can be retried' : null,
  });
  if (!live) return { problem: p };
  return { problem: p, fix: () => writeTransaction<OrchDatabase, boolean>(orch.store, (trx) => closeOrphanedAttemptIn(trx, orch, a.id, latest?.id === a.id)) };
}

async function closeOrphanedAttemptIn(trx: Tx, orch: Orch, attemptId: string, isLatest: boolean): Promise<boolean> {
  const a = await getAttempt(trx, attemptId);
  if (!a || !LIVE_ATTEMPT_STATES.includes(a.state)) return false;
  const reason = `thread ${a.thread_id} no longer exists; orch doctor closed attempt ${a.number}`;
  // A newer attempt replaced it: cancelled, as any superseded attempt is.
  if (!isLatest) {
    await cancelAttemptIn(trx, orch, a, reason);
    return true;
  }
  const now = orch.clock.now();
  await updateAttempt(trx, a.id, { state: 'failed', updated_at: now, ended_at: now });
  await setTaskState(trx, { runId: a.run_id, id: a.task_id, state: 'failed', now });
  await emitIn(trx, orch, {
    runId: a.run_id,
    taskId: a.task_id,
    attemptId: a.id,
    type: 'task_failed',
    taskState: 'failed',
    data: { thread_id: a.thread_id, reason, thread_missing: true },
  });
  return true;
}

/**
 * Live attempts of a task other than its newest attempt (several live at once, or one left live
 * after a newer one replaced it): their workers could still write. The repair cancels them,
 * fencing those workers out; the task follows its newest attempt, which is left as it is.
 */
export function staleLiveAttemptFinding(orch: Orch, t: TaskRow, own: AttemptRow[]): Finding | undefined {
  const newest = own.at(-1);
  const live = own.filter((a) => LIVE_ATTEMPT_STATES.includes(a.state));
  const stale = live.filter((a) => a !== newest);
  if (stale.length === 0) return undefined;
  const list = (xs: AttemptRow[]) => xs.map((a) => `#${a.number} ${a.state}`).join(', ');
  const p = problem({
    run: t.run_id,
    kind: live.length > 1 ? 'several_live_attempts' : 'superseded_live_attempt',
    severity: 'error',
    task: t.id,
    message:
      live.length > 1
        ? `task ${t.id} has ${live.length} live attempts (${list(live)})`
        : `task ${t.id}'s attempt ${list(stale)} is still live although attempt #${newest?.number ?? '?'} replaced it`,
    repair: `cancel the older live attempt(s) ${stale.map((a) => `#${a.number}`).join(', ')}, fencing their workers out`,
  });
  const fix = () =>
    writeTransaction<OrchDatabase, boolean>(orch.store, async (trx) => {
      const now = await listAttempts(trx, { runId: t.run_id, taskId: t.id });
      const latest = now.at(-1);
      const left = now.filter((a) => a !== latest && LIVE_ATTEMPT_STATES.includes(a.state));
      for (const a of left) await cancelAttemptIn(trx, orch, a, `superseded by attempt ${latest?.number ?? '?'} (orch doctor --repair)`);
      return true; // none is left live (another repair may have closed some already)
    });
  return { problem: p, fix };
}

/** Why a task's state cannot follow from its latest attempt, or undefined when it can. */
export function taskAttemptMismatch(t: TaskRow, latest: AttemptRow | undefined): string | undefined {
  if (!latest) return t.state === 'pending' || t.state === 'cancelled' ? undefined : `task ${t.id} is ${t.state} but was never dispatched`;
  if (LIVE_ATTEMPT_STATES.includes(latest.state) || latest.state === 'cancelled') {
    const expected = latest.state;
    return t.state === expected ? undefined : `task ${t.id} is ${t.state} but its latest attempt #${latest.number} is ${latest.state}`;
  }
  return t.state === latest.state || t.state === 'cancelled'
    ? undefined
    : `task ${t.id} is ${t.state} but its latest attempt #${latest.number} is ${latest.state}`;
}
