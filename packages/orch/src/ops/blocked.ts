import { latestMessageIn } from '@orch/inbox';
import { readTransaction } from '@orch/store';
import { inboxTx, type Orch } from '../orch.ts';
import { listAttempts } from '../queries/attempts.ts';
import { activeRunIdsWithLiveAttempts } from '../queries/runs.ts';
import type { OrchDatabase } from '../schema.ts';
import { attemptView, taskView, type AttemptView, type TaskView } from '../views.ts';
import { readinessIn } from './readiness.ts';
import { reconcile } from './reconcile.ts';
import { requireRun } from './runs.ts';

export interface BlockedTask {
  /** The task's run (the list across runs mixes them). */
  run: string;
  task: TaskView;
  attempt: AttemptView;
  /** The pending question: what the worker asked, when and who. */
  question: { message_id: number; body: string; payload: Record<string, unknown> | null; asked_by: string; asked_at: string } | null;
}

export interface BlockedResult {
  /** The run asked about; null for the list across every run that is not done or cancelled. */
  run: string | null;
  /** How many tasks are blocked (with `countOnly`, the only figure: `tasks` is then empty). */
  count: number;
  tasks: BlockedTask[];
}

/**
 * `orch blocked`: reconciles, then every blocked task with its pending question, of one run
 * (`runId`) or of every active run (runs that are neither done nor cancelled), oldest run first.
 *
 * @throws NotFoundError (3) for a `runId` that names no run.
 */
export async function blocked(orch: Orch, input: { runId?: string | undefined; countOnly?: boolean }): Promise<BlockedResult> {
  const countOnly = input.countOnly === true;
  if (input.runId !== undefined) return answer(input.runId, await blockedIn(orch, input.runId, countOnly), countOnly);
  // Only a run with a live attempt can have a blocked task, now or once reconciled: the others
  // (most runs of a long-used database) cost nothing, not two transactions each.
  const runs = await readTransaction<OrchDatabase, string[]>(orch.store, (trx) => activeRunIdsWithLiveAttempts(trx));
  const tasks: BlockedTask[] = [];
  for (const run of runs) tasks.push(...(await blockedIn(orch, run, countOnly)));
  return answer(null, tasks, countOnly);
}

function answer(run: string | null, tasks: BlockedTask[], countOnly: boolean): BlockedResult {
  return { run, count: tasks.length, tasks: countOnly ? [] : tasks };
}

/**
 * One run's blocked tasks, reconciled first; with `countOnly` their questions are not read (a
 * badge's count should not fetch every question's body and payload). @throws NotFoundError (3).
 */
async function blockedIn(orch: Orch, runId: string, countOnly = false): Promise<BlockedTask[]> {
  await reconcile(orch, runId);
  return readTransaction<OrchDatabase, BlockedTask[]>(orch.store, async (trx) => {
    const run = await requireRun(trx, runId);
    const { tasks } = await readinessIn(trx, run.id);
    const attempts = await listAttempts(trx, { runId: run.id, states: ['blocked'] });
    const out: BlockedTask[] = [];
    for (const t of tasks.filter((x) => x.state === 'blocked')) {
      const a = attempts.find((x) => x.task_id === t.id);
      if (!a) continue;
      const q = countOnly ? null : await latestMessageIn(inboxTx(trx), a.thread_id, 'question');
      out.push({
        run: run.id,
        task: taskView(t),
        attempt: attemptView(a),
        question: q && { message_id: q.id, body: q.body, payload: q.payload, asked_by: q.author, asked_at: q.created_at },
      });
    }
    return out;
  });
}
