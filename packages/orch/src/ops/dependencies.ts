import { ConflictError, ValidationError, writeTransaction } from '@orch/store';
import { emitIn } from '../events.ts';
import type { Orch } from '../orch.ts';
import { insertDependency, listDependencies, type DependencyRow } from '../queries/tasks.ts';
import type { OrchDatabase } from '../schema.ts';
import { assertRunOpen, requireRun } from './runs.ts';
import { requireTask } from './tasks.ts';

export interface AddDependencyInput {
  runId: string;
  taskId: string;
  dependsOn: string;
}

export interface AddDependencyResult {
  run: string;
  task: string;
  depends_on: string;
  /** False when the edge already existed (nothing changed). */
  created: boolean;
  /** Everything the task now depends on directly. */
  dependencies: string[];
}

/**
 * `orch dep add`: `taskId` cannot be dispatched until `dependsOn` is done. Idempotent.
 *
 * @throws NotFoundError (3) for an unknown run or task; ValidationError (2) for a self-dependency;
 *   ConflictError (4) for an edge that would close a cycle (the cycle is in the message and details).
 */
export async function addDependency(orch: Orch, input: AddDependencyInput): Promise<AddDependencyResult> {
  if (input.taskId === input.dependsOn) {
    throw new ValidationError(`task ${input.taskId} cannot depend on itself`, [{ path: '--depends-on', message: 'must differ from --task' }]);
  }
  return writeTransaction<OrchDatabase, AddDependencyResult>(orch.store, async (trx) => {
    const run = await requireRun(trx, input.runId);
    assertRunOpen(run, 'add a dependency');
    await requireTask(trx, run.id, input.taskId);
    await requireTask(trx, run.id, input.dependsOn);
    const edges = await listDependencies(trx, run.id);
    const cycle = findPath(edges, input.dependsOn, input.taskId);
    if (cycle) {
      const loop = [input.taskId, ...cycle];
      throw new ConflictError(`adding ${input.taskId} -> ${input.dependsOn} would close a cycle: ${loop.join(' -> ')}`, {
        run: run.id,
        cycle: loop,
      });
    }
    const now = orch.clock.now();
    const created = await insertDependency(trx, { run_id: run.id, task_id: input.taskId, depends_on: input.dependsOn, created_at: now });
    if (created) {
      await emitIn(trx, orch, { runId: run.id, taskId: input.taskId, type: 'dependency_added', data: { depends_on: input.dependsOn } });
    }
    const dependencies = [...edges.filter((e) => e.task_id === input.taskId).map((e) => e.depends_on), ...(created ? [input.dependsOn] : [])];
    return { run: run.id, task: input.taskId, depends_on: input.dependsOn, created, dependencies };
  });
}

/**
 * A path from `from` to `to` along "depends on" edges (both ends included), if one exists. A
 * breadth-first search with an explicit queue, so a chain of any length cannot overflow the stack;
 * the path found is a shortest one.
 */
function findPath(edges: DependencyRow[], from: string, to: string): string[] | undefined {
  const next = adjacency(edges);
  const parent = new Map<string, string | null>([[from, null]]);
  const queue = [from];
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head] as string;
    if (node === to) {
      const path: string[] = [];
      for (let n: string | null = node; n !== null; n = parent.get(n) ?? null) path.push(n);
      return path.reverse();
    }
    for (const n of next.get(node) ?? []) {
      if (parent.has(n)) continue;
      parent.set(n, node);
      queue.push(n);
    }
  }
  return undefined;
}

/** task -> the tasks it depends on, in edge order. */
export function adjacency(edges: DependencyRow[]): Map<string, string[]> {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    const list = next.get(e.task_id);
    if (list) list.push(e.depends_on);
    else next.set(e.task_id, [e.depends_on]);
  }
  return next;
}
