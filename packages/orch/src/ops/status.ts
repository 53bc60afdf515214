import fs from 'node:fs';
import { latestMessageIn, type MessageView, type ThreadView } from '@orch/inbox';
import { readTransaction } from '@orch/store';
import { inboxTx, threadOrNull, type Orch } from '../orch.ts';
import { listAttempts, type AttemptRow } from '../queries/attempts.ts';
import type { OrchDatabase } from '../schema.ts';
import { attemptView, taskView, type AttemptView, type TaskView } from '../views.ts';
import { readinessIn, type Readiness } from './readiness.ts';
import { reconcile } from './reconcile.ts';
import { runSummaryIn, type RunResult } from './runs.ts';

export interface StatusTask extends TaskView, Readiness {
  attempts: number;
  /**
   * `worktree_exists`: code mode only (null otherwise); false means the worktree is gone (removed
   * by cleanup, or by hand). `thread` is null when the attempt's thread no longer exists (damage
   * doctor reports).
   */
  latest_attempt: (AttemptView & { thread: ThreadView | null; worktree_exists: boolean | null }) | null;
  latest_message: MessageView | null;
}

export interface StatusResult extends RunResult {
  tasks: StatusTask[];
}

/**
 * `orch status`: reconciles, then the run, task counts, every task with its state, readiness,
 * latest attempt (and its thread) and latest message, and the run's last event number.
 *
 * @throws NotFoundError (3).
 */
export async function status(orch: Orch, input: { runId: string }): Promise<StatusResult> {
  await reconcile(orch, input.runId);
  return readTransaction<OrchDatabase, StatusResult>(orch.store, async (trx) => {
    const summary = await runSummaryIn(trx, orch, input.runId);
    const { tasks, readiness } = await readinessIn(trx, input.runId);
    const attempts = await listAttempts(trx, { runId: input.runId });
    const latest = new Map<string, AttemptRow>();
    const tried = new Map<string, number>();
    for (const a of attempts) {
      latest.set(a.task_id, a);
      tried.set(a.task_id, (tried.get(a.task_id) ?? 0) + 1);
    }
    const out: StatusTask[] = [];
    for (const t of tasks) {
      const a = latest.get(t.id);
      let latestAttempt: StatusTask['latest_attempt'] = null;
      let latestMessage: MessageView | null = null;
      if (a) {
        const thread = await threadOrNull(trx, a.thread_id, orch.clock.now());
        const exists = a.worktree_path === null ? null : a.worktree_removed_at === null && fs.existsSync(a.worktree_path);
        latestAttempt = { ...attemptView(a), thread, worktree_exists: exists };
        latestMessage = thread === null ? null : await latestMessageIn(inboxTx(trx), a.thread_id);
      }
      out.push({
        ...taskView(t),
        ...(readiness.get(t.id) ?? { depends_on: [], waiting_on: [], ready: false }),
        attempts: tried.get(t.id) ?? 0,
        latest_attempt: latestAttempt,
        latest_message: latestMessage,
      });
    }
    return { ...summary, tasks: out };
  });
}
