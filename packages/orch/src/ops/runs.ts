import { ConflictError, NotFoundError, isoTime, readTransaction, writeTransaction } from '@orch/store';
import { emitIn } from '../events.ts';
import type { Orch, OrchEnv, Tx } from '../orch.ts';
import { lastEventSeq } from '../queries/events.ts';
import { getRun, insertRun, lastEventTimes, listRuns as queryRuns, taskCounts, type RunRow } from '../queries/runs.ts';
import { unmergedDoneTasks } from '../queries/tasks.ts';
import type { OrchDatabase, RunState } from '../schema.ts';
import { countsView, runView, type RunView, type StateCounts } from '../views.ts';

/** @throws NotFoundError (3) */
export async function requireRun(db: Tx, id: string): Promise<RunRow> {
  const run = await getRun(db, id);
  if (!run) throw new NotFoundError(`no run ${id} (see \`orch run list\`)`, { run: id });
  return run;
}

/** @throws ConflictError (4) when the run was cancelled. */
export function assertRunOpen(run: RunRow, action: string): void {
  if (run.state === 'cancelled') {
    throw new ConflictError(`cannot ${action}: run ${run.id} is cancelled`, { run: run.id, state: run.state });
  }
}

export interface InitRunInput {
  runId: string;
  goal: string;
  summary?: string | undefined;
}

export interface RunResult {
  run: RunView;
  counts: StateCounts;
  /** The run's newest event number: pass it as `wait --after-event` to wait for what comes next. */
  last_event: number;
  /** How many done tasks ended with a code attempt that was not merged (`orch merge`), and which. */
  unmerged: number;
  unmerged_tasks: string[];
}

/** `orch run init`: creates a run. @throws ConflictError (4) when the id is taken. */
export async function initRun(orch: Orch, input: InitRunInput): Promise<RunResult> {
  return writeTransaction<OrchDatabase, RunResult>(orch.store, async (trx) => {
    if (await getRun(trx, input.runId)) {
      throw new ConflictError(`run ${input.runId} already exists (see \`orch run show --run ${input.runId}\`)`, { run: input.runId });
    }
    const now = orch.clock.now();
    const run = await insertRun(trx, { id: input.runId, goal: input.goal, summary: input.summary ?? null, state: 'active', created_at: now, updated_at: now });
    const event = await emitIn(trx, orch, { runId: run.id, type: 'run_created', data: { goal: run.goal } });
    return { run: runView(run), counts: { total: 0 }, last_event: event.seq, unmerged: 0, unmerged_tasks: [] };
  });
}

/** `orch run show`: the run and how many of its tasks are in each state (no reconcile). @throws NotFoundError (3). */
export async function showRun(orch: Orch, input: { runId: string }): Promise<RunResult> {
  return readTransaction<OrchDatabase, RunResult>(orch.store, (trx) => runSummaryIn(trx, orch, input.runId));
}

export async function runSummaryIn(trx: Tx, _env: OrchEnv, runId: string): Promise<RunResult> {
  const run = await requireRun(trx, runId);
  const unmerged = await unmergedDoneTasks(trx, run.id);
  return {
    run: runView(run),
    counts: countsView(await taskCounts(trx, [run.id])),
    last_event: await lastEventSeq(trx, run.id),
    unmerged: unmerged.length,
    unmerged_tasks: unmerged,
  };
}

export interface ListRunsResult {
  /** `last_activity`: when the run's newest event was written, else when the run last changed (its updated_at). */
  runs: (RunView & { counts: StateCounts; last_activity: string })[];
}

/** `orch run list`: runs newest first with their task counts. */
export async function listRuns(orch: Orch, input: { state?: RunState | undefined; limit?: number | undefined }): Promise<ListRunsResult> {
  return readTransaction<OrchDatabase, ListRunsResult>(orch.store, async (trx) => {
    const runs = await queryRuns(trx, { ...(input.state !== undefined ? { state: input.state } : {}), limit: input.limit ?? 100 });
    const counts = await taskCounts(
      trx,
      runs.map((r) => r.id),
    );
    const latest = await lastEventTimes(
      trx,
      runs.map((r) => r.id),
    );
    return {
      runs: runs.map((r) => ({
        ...runView(r),
        counts: countsView(counts.filter((c) => c.run_id === r.id)),
        last_activity: isoTime(latest.get(r.id) ?? r.updated_at),
      })),
    };
  });
}
