import { readTransaction } from '@orch/store';
import type { Orch, Tx } from '../orch.ts';
import { listAttempts } from '../queries/attempts.ts';
import { dependencyStates, hasLiveAttempt, listDependencies, listReadyTaskEdges, listTasks, type DependencyRow, type TaskRow } from '../queries/tasks.ts';
import { LIVE_ATTEMPT_STATES, type OrchDatabase } from '../schema.ts';
import { taskView, type TaskView } from '../views.ts';
import { adjacency } from './dependencies.ts';
import { reconcile } from './reconcile.ts';
import { requireRun } from './runs.ts';

/** A task's place in the graph: what it depends on and whether it can be dispatched now. */
export interface Readiness {
  depends_on: string[];
  /** Dependencies that are not done yet. */
  waiting_on: string[];
  ready: boolean;
}

/**
 * Ready = every dependency done, the task not done or cancelled, and no live attempt. Pure; the
 * caller supplies a consistent snapshot.
 */
export function readiness(tasks: TaskRow[], edges: DependencyRow[], liveTasks: Set<string>): Map<string, Readiness> {
  const state = new Map(tasks.map((t) => [t.id, t.state]));
  const deps = adjacency(edges);
  const out = new Map<string, Readiness>();
  for (const t of tasks) {
    const dependsOn = deps.get(t.id) ?? [];
    const waitingOn = dependsOn.filter((d) => state.get(d) !== 'done');
    const ready = waitingOn.length === 0 && t.state !== 'done' && t.state !== 'cancelled' && !liveTasks.has(t.id);
    out.set(t.id, { depends_on: dependsOn, waiting_on: waitingOn, ready });
  }
  return out;
}

/** Readiness of every task of a run, read in the caller's transaction. */
export async function readinessIn(trx: Tx, runId: string): Promise<{ tasks: TaskRow[]; readiness: Map<string, Readiness> }> {
  const tasks = await listTasks(trx, runId);
  const edges = await listDependencies(trx, runId);
  const live = await listAttempts(trx, { runId, states: LIVE_ATTEMPT_STATES });
  return { tasks, readiness: readiness(tasks, edges, new Set(live.map((a) => a.task_id))) };
}

/** Readiness of one task, read in the caller's transaction (a few index searches, whatever the run's size). */
export async function taskReadinessIn(trx: Tx, task: TaskRow): Promise<Readiness> {
  const deps = await dependencyStates(trx, task.run_id, task.id);
  const waitingOn = deps.filter((d) => d.state !== 'done').map((d) => d.depends_on);
  const live = await hasLiveAttempt(trx, task.run_id, task.id);
  const ready = waitingOn.length === 0 && task.state !== 'done' && task.state !== 'cancelled' && !live;
  return { depends_on: deps.map((d) => d.depends_on), waiting_on: waitingOn, ready };
}

export interface ReadyTask extends TaskView {
  depends_on: string[];
  /** Attempts made so far (a failed or expired task is ready again, for a retry). */
  attempts: number;
}

export interface ReadyResult {
  run: string;
  tasks: ReadyTask[];
}

/** `orch ready`: reconciles, then lists dispatchable tasks, highest priority first, then oldest. @throws NotFoundError (3). */
export async function readyTasks(orch: Orch, input: { runId: string }): Promise<ReadyResult> {
  await reconcile(orch, input.runId);
  return readTransaction<OrchDatabase, ReadyResult>(orch.store, async (trx) => {
    const run = await requireRun(trx, input.runId);
    // Computed in SQL: only ready tasks are read, however large the run.
    const ready: ReadyTask[] = [];
    let last: ReadyTask | undefined;
    for (const row of await listReadyTaskEdges(trx, run.id)) {
      if (last?.id !== row.id) {
        const { depends_on: _, attempts, ...task } = row;
        last = { ...taskView(task), depends_on: [], attempts: Number(attempts) };
        ready.push(last);
      }
      if (row.depends_on !== null) last.depends_on.push(row.depends_on);
    }
    return { run: run.id, tasks: ready };
  });
}
