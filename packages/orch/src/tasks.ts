import { latestMessageIn, type MessageView, type ThreadView } from '@orch/inbox';
import { ConflictError, NotFoundError, ValidationError, readTransaction, writeTransaction } from '@orch/store';
import { emitIn, settleRunIn } from './events.ts';
import { inboxTx, threadOrNull, type Orch, type Tx } from './orch.ts';
import { listAttempts } from './queries/attempts.ts';
import {
  dependencyStates,
  getTask,
  hasLiveAttempt,
  insertDependency,
  insertTask,
  listDependencies,
  listDependents,
  listReadyTaskEdges,
  listTasks,
  type DependencyRow,
  type TaskRow,
} from './queries/tasks.ts';
import { reconcile, reconcileThen } from './reconcile.ts';
import { assertRunOpen, requireRun } from './runs.ts';
import { LIVE_ATTEMPT_STATES, type OrchDatabase } from './schema.ts';
import { attemptView, taskView, type AttemptView, type TaskView } from './views.ts';

/** @throws NotFoundError (3) */
export async function requireTask(db: Tx, runId: string, taskId: string): Promise<TaskRow> {
  const task = await getTask(db, runId, taskId);
  if (!task) throw new NotFoundError(`no task ${taskId} in run ${runId}`, { run: runId, task: taskId });
  return task;
}

export interface AddTaskInput {
  runId: string;
  taskId: string;
  title: string;
  summary?: string | undefined;
  defaultTo?: string | undefined;
  acceptance?: unknown;
  /** Higher is dispatched first; default 0. */
  priority?: number | undefined;
}

export interface AddTaskResult {
  task: TaskView;
  event: number;
}

/**
 * `orch task add`. Adding a task to a done run reopens it.
 *
 * @throws NotFoundError (3) for an unknown run; ConflictError (4) when the task id is taken or the
 *   run is cancelled.
 */
export async function addTask(orch: Orch, input: AddTaskInput): Promise<AddTaskResult> {
  return writeTransaction<OrchDatabase, AddTaskResult>(orch.store, async (trx) => {
    const run = await requireRun(trx, input.runId);
    assertRunOpen(run, `add task ${input.taskId}`);
    if (await getTask(trx, run.id, input.taskId)) {
      throw new ConflictError(`task ${input.taskId} already exists in run ${run.id}`, { run: run.id, task: input.taskId });
    }
    const now = orch.clock.now();
    const task = await insertTask(trx, {
      run_id: run.id,
      id: input.taskId,
      title: input.title,
      summary: input.summary ?? null,
      default_to: input.defaultTo ?? null,
      acceptance: input.acceptance === undefined ? null : JSON.stringify(input.acceptance),
      priority: input.priority ?? 0,
      state: 'pending',
      created_at: now,
      updated_at: now,
    });
    const event = await emitIn(trx, orch, { runId: run.id, taskId: task.id, type: 'task_added', taskState: 'pending', data: { title: task.title } });
    await settleRunIn(trx, orch, run.id);
    return { task: taskView(task), event: event.seq };
  });
}

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
function adjacency(edges: DependencyRow[]): Map<string, string[]> {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    const list = next.get(e.task_id);
    if (list) list.push(e.depends_on);
    else next.set(e.task_id, [e.depends_on]);
  }
  return next;
}

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

export interface TaskAttemptDetail extends AttemptView {
  /** Null when the attempt's thread no longer exists (damage doctor reports). */
  thread: ThreadView | null;
  latest_message: MessageView | null;
}

export interface ShowTaskResult {
  task: TaskView & Readiness & { dependents: string[] };
  attempts: TaskAttemptDetail[];
}

/** `orch task show`: reconciles, then the task, its dependencies and every attempt with its thread's latest message. @throws NotFoundError (3). */
export async function showTask(orch: Orch, input: { runId: string; taskId: string }): Promise<ShowTaskResult> {
  // An unknown task is refused inside the reconcile's transaction, so the failed call writes nothing.
  return reconcileThen(orch, input.runId, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const task = await requireTask(trx, run.id, input.taskId);
    const attempts = await listAttempts(trx, { runId: run.id, taskId: task.id });
    const details: TaskAttemptDetail[] = [];
    for (const a of attempts) {
      const thread = await threadOrNull(trx, a.thread_id, orch.clock.now());
      details.push({ ...attemptView(a), thread, latest_message: thread === null ? null : await latestMessageIn(inboxTx(trx), a.thread_id) });
    }
    const ready = await taskReadinessIn(trx, task);
    return {
      task: { ...taskView(task), ...ready, dependents: await listDependents(trx, run.id, task.id) },
      attempts: details,
    };
  });
}
