import { latestMessageIn } from '@orch/inbox';
import { readTransaction } from '@orch/store';
import { inboxTx, type Orch } from '../orch.ts';
import { listAttempts } from '../queries/attempts.ts';
import type { OrchDatabase } from '../schema.ts';
import { attemptView, taskView, type AttemptView, type TaskView } from '../views.ts';
import { readinessIn } from './readiness.ts';
import { reconcile } from './reconcile.ts';
import { requireRun } from './runs.ts';

export interface BlockedTask {
  task: TaskView;
  attempt: AttemptView;
  /** The pending question: what the worker asked, when and who. */
  question: { message_id: number; body: string; payload: Record<string, unknown> | null; asked_by: string; asked_at: string } | null;
}

export interface BlockedResult {
  run: string;
  tasks: BlockedTask[];
}

/** `orch blocked`: reconciles, then every blocked task with its pending question. @throws NotFoundError (3). */
export async function blocked(orch: Orch, input: { runId: string }): Promise<BlockedResult> {
  await reconcile(orch, input.runId);
  return readTransaction<OrchDatabase, BlockedResult>(orch.store, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const { tasks } = await readinessIn(trx, run.id);
    const attempts = await listAttempts(trx, { runId: run.id, states: ['blocked'] });
    const out: BlockedTask[] = [];
    for (const t of tasks.filter((x) => x.state === 'blocked')) {
      const a = attempts.find((x) => x.task_id === t.id);
      if (!a) continue;
      const q = await latestMessageIn(inboxTx(trx), a.thread_id, 'question');
      out.push({
        task: taskView(t),
        attempt: attemptView(a),
        question: q && { message_id: q.id, body: q.body, payload: q.payload, asked_by: q.author, asked_at: q.created_at },
      });
    }
    return { run: run.id, tasks: out };
  });
}
