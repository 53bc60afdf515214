import { checkFile, existingThreadIds, finishReport, inboxCounts, inboxFindings, initHint, type InboxDatabase } from '@orch/inbox';
import {
  AppError,
  assertSchemaCurrent,
  migrate,
  NotFoundError,
  openStore,
  problem,
  randomIds,
  readTransaction,
  systemClock,
  writeTransaction,
  type Clock,
  type DoctorReport,
  type Problem,
} from '@orch/store';
import fs from 'node:fs';
import path from 'node:path';
import { settleRunIn } from './events.ts';
import { branchesUnder, deleteBranch, listWorktrees, repoRoot, unmergedCommits, GitFailure, removeEmptyParents } from './git.ts';
import { DEFAULT_WORKSPACE_ROOT } from './launch.ts';
import { markerAlive, markerPath, readMarker, removeDeadMarker } from './marker.ts';
import { orchMigrations } from './migrations.ts';
import { inboxTx, type Orch } from './orch.ts';
import { listAttempts, type AttemptRow } from './queries/attempts.ts';
import { allRunIds, eventSeqSpan, latestTaskStateEvents } from './queries/health.ts';
import { getRun } from './queries/runs.ts';
import { listTasks, type TaskRow } from './queries/tasks.ts';
import { reconcile, unfoldedIn } from './reconcile.ts';
import { LIVE_ATTEMPT_STATES, type OrchDatabase } from './schema.ts';
import { cleanOrphans, ownedPath, workspacePlaces } from './workspace.ts';

export interface OrchDoctorInput {
  path: string;
  /** Only this run (default: every run). */
  runId?: string | undefined;
  /** Fix what is safe to fix. */
  repair?: boolean | undefined;
  /** Also look for orphaned worktrees in this repository (besides those the run's attempts name). */
  repoPath?: string | undefined;
  clock?: Clock;
  nativeBinding?: string | undefined;
}

/** A problem and, when one is safe, its repair (which takes its own transaction or runs git). */
interface Finding {
  problem: Problem;
  fix?: () => Promise<boolean>;
}

/**
 * `orch doctor`: everything `inbox doctor` checks, then for each run (or the one given): event
 * numbers 1..N without gaps, at most one live attempt per task, every attempt's thread exists,
 * each task's state agrees with its latest attempt and with its latest event, the run's state
 * agrees with its tasks, leases that ran out on live attempts, code-mode
 * worktrees that are gone, and worktrees, directories and branches under the run's workspace
 * roots that no attempt owns. With `repair`, fixes only what is safe: reconciles, settles a run
 * whose tasks are all finished, removes orphaned worktrees at least a minute old that hold no work
 * (as `cleanup --all-completed` does), empty orphaned directories, and orphaned branches with no
 * commit of their own. Never touches a worktree or branch that holds work.
 *
 * @throws DatabaseUnavailableError (6) for a file that is missing, not SQLite or not initialised;
 *   NotFoundError (3) for an unknown run; ValidationError (2) for a --repo-path outside any repository.
 */
export async function orchDoctor(input: OrchDoctorInput): Promise<DoctorReport> {
  const clock = input.clock ?? systemClock;
  const repair = input.repair === true;
  const repo = input.repoPath === undefined ? undefined : await repoRoot(input.repoPath);
  const store = openStore({ path: input.path, create: false, initHint: initHint(input.path), ...(input.nativeBinding ? { nativeBinding: input.nativeBinding } : {}) });
  const orch: Orch = { store, clock, ids: randomIds, close: () => store.close() };
  try {
    const base = await checkFile(store, repair, clock);
    if (base.stop) return base.report;
    const findings: Finding[] = (await inboxFindings(store, clock)).map((f) => {
      const fix = f.fix;
      return fix ? { problem: f.problem, fix: () => writeTransaction<InboxDatabase, boolean>(store, (trx) => fix(trx, clock.now())) } : { problem: f.problem };
    });
    const counts: Record<string, number> = { ...(await readTransaction<InboxDatabase, Record<string, number>>(store, (trx) => inboxCounts(trx))) };
    const schema = await orchSchema(orch, repair, findings);
    if (schema === 'missing' && input.runId !== undefined) throw new NotFoundError(`no run ${input.runId} (the database has no runs yet)`, { run: input.runId });
    // An outdated orch schema is reported above; its runs are checked once --repair has upgraded it.
    const runIds = schema !== 'current' ? [] : input.runId !== undefined ? [input.runId] : await readTransaction<OrchDatabase, string[]>(store, (trx) => allRunIds(trx));
    Object.assign(counts, { runs: 0, tasks: 0, attempts: 0, events: 0 });
    for (const runId of runIds) {
      const checked = await runFindings(orch, runId, findings);
      counts.runs = (counts.runs ?? 0) + 1;
      counts.tasks = (counts.tasks ?? 0) + checked.tasks;
      counts.attempts = (counts.attempts ?? 0) + checked.attempts.length;
      counts.events = (counts.events ?? 0) + checked.events;
      findings.push(...(await worktreeFindings(orch, runId, checked.attempts, repo, repair)));
    }
    if (repair) {
      for (const f of findings) if (f.fix && !f.problem.repaired) f.problem.repaired = await f.fix();
    }
    return finishReport(base.report, counts, findings.map((f) => f.problem));
  } finally {
    await store.close();
  }
}

/** Whether the orch tables are current (or were upgraded by `repair`), missing, or outdated. */
async function orchSchema(orch: Orch, repair: boolean, findings: Finding[]): Promise<'current' | 'missing' | 'outdated'> {
  try {
    // Outdated orch tables are upgraded by this very command, so that is the hint to give.
    await assertSchemaCurrent(orch.store, orchMigrations, `orch --db ${orch.store.path} doctor --repair`);
    return 'current';
  } catch (err) {
    if (err instanceof AppError && err.code === 'DB_NOT_INITIALISED') return 'missing';
    if (!(err instanceof AppError && err.code === 'DB_OUTDATED')) throw err;
    const p = problem({ kind: 'schema_outdated', severity: 'error', message: err.message, repair: 'apply the missing orch migrations' });
    findings.push({ problem: p });
    if (!repair) return 'outdated';
    await migrate(orch.store, orchMigrations, orch.clock);
    p.repaired = true;
    return 'current';
  }
}

/** The database checks of one run, read in one snapshot. */
async function runFindings(orch: Orch, runId: string, out: Finding[]): Promise<{ tasks: number; attempts: AttemptRow[]; events: number }> {
  return readTransaction<OrchDatabase, { tasks: number; attempts: AttemptRow[]; events: number }>(orch.store, async (trx) => {
    const run = await getRun(trx, runId);
    if (!run) throw new NotFoundError(`no run ${runId}`, { run: runId });
    const tasks = await listTasks(trx, runId);
    const attempts = await listAttempts(trx, { runId });
    const span = await eventSeqSpan(trx, runId);
    const add = (p: Omit<Problem, 'repaired' | 'run'>, fix?: () => Promise<boolean>) =>
      out.push({ problem: problem({ run: runId, ...p }), ...(fix ? { fix } : {}) });

    if (span.count !== span.max || (span.count > 0 && span.min !== 1)) {
      add({ kind: 'event_gap', severity: 'error', message: `run ${runId} has ${span.count} events numbered ${span.min}..${span.max}: the log has gaps or duplicates`, repair: null });
    }
    const byTask = new Map<string, AttemptRow[]>();
    for (const a of attempts) byTask.set(a.task_id, [...(byTask.get(a.task_id) ?? []), a]);
    const threads = await existingThreadIds(inboxTx(trx), attempts.map((a) => a.thread_id));
    for (const a of attempts) {
      if (!threads.has(a.thread_id)) {
        add({ kind: 'attempt_thread_missing', severity: 'error', task: a.task_id, attempt: a.id, thread: a.thread_id, message: `attempt ${a.id} (task ${a.task_id} #${a.number}) names thread ${a.thread_id}, which does not exist`, repair: null });
      }
    }
    const events = await latestTaskStateEvents(trx, runId);
    for (const t of tasks) {
      const own = byTask.get(t.id) ?? [];
      const live = own.filter((a) => LIVE_ATTEMPT_STATES.includes(a.state));
      if (live.length > 1) {
        add({ kind: 'several_live_attempts', severity: 'error', task: t.id, message: `task ${t.id} has ${live.length} live attempts (${live.map((a) => `#${a.number} ${a.state}`).join(', ')})`, repair: null });
      }
      const mismatch = taskAttemptMismatch(t, own.at(-1));
      if (mismatch) add({ kind: 'task_state_mismatch', severity: 'error', task: t.id, ...(own.at(-1) ? { attempt: own.at(-1)?.id } : {}), message: mismatch, repair: null });
      const e = events.get(t.id);
      const said = e ? (JSON.parse(e.data) as { task_state: string }).task_state : undefined;
      if (said !== t.state) {
        add({
          kind: 'task_event_mismatch',
          severity: 'error',
          task: t.id,
          message: e ? `task ${t.id} is ${t.state} but its latest event (#${e.seq} ${e.type}) says ${said}` : `task ${t.id} is ${t.state} but no event reports its state`,
          repair: null,
        });
      }
    }
    const finished = tasks.length > 0 && tasks.every((t) => t.state === 'done' || t.state === 'cancelled');
    if (run.state === 'done' && !finished) {
      add({ kind: 'run_state_mismatch', severity: 'error', message: `run ${runId} is done but not every task is done or cancelled`, repair: null });
    }
    let reconciled: Promise<unknown> | undefined;
    const reconcileOnce = async () => {
      reconciled ??= reconcile(orch, runId);
      await reconciled;
      return true;
    };
    // Activity not folded in yet is normal (status, wait and reconcile fold it); a lease that ran out is worth saying.
    // Folding needs every live attempt's thread: with one missing (reported above) this check is skipped.
    const unfolded = attempts.every((a) => threads.has(a.thread_id)) ? await unfoldedIn(trx, orch, runId) : [];
    for (const u of unfolded.filter((x) => x.events.includes('attempt_expired'))) {
      const a = u.attempt;
      add(
        {
          kind: 'attempt_lease_expired',
          severity: 'warning',
          task: a.task_id,
          attempt: a.id,
          thread: a.thread_id,
          message: `the worker's lease on attempt ${a.id} (task ${a.task_id} #${a.number}) ran out; reconciling marks it expired and fences the worker out, then \`orch retry\` starts it again`,
          repair: 'reconcile the run',
        },
        reconcileOnce,
      );
    }
    if (run.state === 'active' && finished) {
      add({ kind: 'run_not_settled', severity: 'warning', message: `every task of run ${runId} is finished but the run is still active`, repair: 'mark the run done' }, async () => {
        await writeTransaction<OrchDatabase, void>(orch.store, (w) => settleRunIn(w, orch, runId));
        return true;
      });
    }
    for (const a of attempts) {
      if (a.execution_mode !== 'code' || a.worktree_path === null || a.worktree_removed_at !== null || fs.existsSync(a.worktree_path)) continue;
      const isLive = LIVE_ATTEMPT_STATES.includes(a.state);
      add({
        kind: 'worktree_missing',
        severity: isLive ? 'error' : 'warning',
        task: a.task_id,
        attempt: a.id,
        path: a.worktree_path,
        message: isLive
          ? `the worktree of live attempt ${a.id} (task ${a.task_id} #${a.number}) at ${a.worktree_path} is gone: its worker has nowhere to work; \`orch reassign\` gives the task a fresh one`
          : `the worktree of attempt ${a.id} (task ${a.task_id} #${a.number}) at ${a.worktree_path} is gone; \`orch cleanup --run ${runId} --attempt ${a.id}\` records it`,
        repair: null,
      });
    }
    return { tasks: tasks.length, attempts, events: span.count };
  });
}

/** Why a task's state cannot follow from its latest attempt, or undefined when it can. */
function taskAttemptMismatch(t: TaskRow, latest: AttemptRow | undefined): string | undefined {
  if (!latest) return t.state === 'pending' || t.state === 'cancelled' ? undefined : `task ${t.id} is ${t.state} but was never dispatched`;
  if (LIVE_ATTEMPT_STATES.includes(latest.state) || latest.state === 'cancelled') {
    const expected = latest.state;
    return t.state === expected ? undefined : `task ${t.id} is ${t.state} but its latest attempt #${latest.number} is ${latest.state}`;
  }
  return t.state === latest.state || t.state === 'cancelled' ? undefined : `task ${t.id} is ${t.state} but its latest attempt #${latest.number} is ${latest.state}`;
}

/** Orphaned worktrees, directories and branches of one run (git, outside any transaction). */
async function worktreeFindings(orch: Orch, runId: string, attempts: AttemptRow[], extraRepo: string | undefined, repair: boolean): Promise<Finding[]> {
  const places = new Map<string, string>();
  const real = (p: string) => (fs.existsSync(p) ? fs.realpathSync(p) : p);
  for (const [root, r] of workspacePlaces(attempts)) places.set(real(root), r);
  for (const r of new Set([...places.values(), ...(extraRepo ? [extraRepo] : [])])) {
    const root = real(path.resolve(r, DEFAULT_WORKSPACE_ROOT));
    if (!places.has(root)) places.set(root, r);
  }
  const out: Finding[] = [];
  const add = (p: Omit<Problem, 'repaired' | 'run'>, repaired = false) => out.push({ problem: { ...problem({ run: runId, ...p }), repaired } });
  try {
    for (const o of await cleanOrphans(orch, runId, places, { dryRun: !repair, force: false })) {
      const why = o.removed ? '' : ` (${o.note})`;
      add(
        {
          kind: 'orphan_worktree',
          severity: 'warning',
          path: o.path,
          ...(o.branch ? { branch: o.branch } : {}),
          message: `worktree ${o.path}${o.branch ? ` (branch ${o.branch})` : ''} belongs to no attempt, probably left by an interrupted dispatch${why}`,
          repair: o.removed ? 'remove the worktree and its branch (they hold no work)' : null,
        },
        repair && o.removed,
      );
    }
    const owned = new Set(attempts.flatMap((a) => (a.branch ? [a.branch] : [])));
    /** A live dispatch is making the worktree at `dir` right now: not an orphan. */
    const beingMade = (dir: string) => {
      const m = readMarker(markerPath(dir));
      return m !== undefined && markerAlive(m);
    };
    const branchesSeen = new Set<string>();
    for (const [root, r] of places) {
      const worktrees = await listWorktrees(r);
      const registered = new Set(worktrees.map((w) => w.path));
      const checkedOut = new Set(worktrees.flatMap((w) => (w.branch ? [w.branch] : [])));
      for (const dir of attemptDirs(path.join(root, runId))) {
        if (registered.has(dir) || beingMade(dir) || (await ownedPath(orch, dir))) continue;
        const empty = entries(dir).length === 0;
        let repaired = false;
        if (repair && empty) {
          try {
            fs.rmdirSync(dir);
            removeEmptyParents(path.dirname(dir), root);
            repaired = true;
          } catch {
            // Gone already, or no longer empty: left as it is.
          }
        }
        add(
          {
            kind: 'orphan_directory',
            severity: 'warning',
            path: dir,
            message: `${dir} is neither a git worktree nor any attempt's${empty ? ' (empty)' : '; it holds files: look at them, then remove it by hand'}`,
            repair: empty ? 'remove the empty directory' : null,
          },
          repaired,
        );
      }
      for (const file of markerFiles(path.join(root, runId))) {
        const m = readMarker(file);
        if (!m || markerAlive(m)) continue;
        const dir = file.slice(0, -'.dispatch'.length);
        // A worktree no attempt owns is reported above, and removing it removes its marker.
        if (registered.has(dir) && !(await ownedPath(orch, dir))) continue;
        const repaired = repair && removeDeadMarker(m);
        add(
          {
            kind: 'stale_marker',
            severity: 'warning',
            path: file,
            message: `${file} marks a worktree as being made by a dispatch that is no longer running${Number.isNaN(m.pid) ? '' : ` (pid ${m.pid})`}`,
            repair: 'remove the marker',
          },
          repaired,
        );
      }
      if (branchesSeen.has(r)) continue;
      branchesSeen.add(r);
      for (const branch of await branchesUnder(r, `orch/${runId}`)) {
        if (owned.has(branch) || checkedOut.has(branch)) continue;
        // `worktree add -b` makes the branch before the worktree: a live dispatch may be at that point.
        const rel = branch.slice('orch/'.length).split('/');
        if ([...places].some(([root2, r2]) => r2 === r && beingMade(path.join(root2, ...rel)))) continue;
        const unmerged = await unmergedCommits(r, branch);
        let repaired = false;
        if (repair && unmerged.length === 0 && !(await branchOwned(orch, runId, branch))) {
          await deleteBranch(r, branch);
          repaired = true;
        }
        add(
          {
            kind: 'orphan_branch',
            severity: 'warning',
            branch,
            path: r,
            message:
              `branch ${branch} in ${r} belongs to no attempt` +
              (unmerged.length > 0 ? ` and has ${unmerged.length} commit(s) on no other branch: look at them, then \`git branch -D ${branch}\`` : ''),
            repair: unmerged.length === 0 ? 'delete the branch (its commits are on other branches)' : null,
          },
          repaired,
        );
      }
    }
  } catch (err) {
    if (!(err instanceof GitFailure)) throw err;
    add({ kind: 'git_failed', severity: 'warning', message: `could not look for orphaned worktrees of run ${runId}: ${err.message}`, repair: null });
  }
  return out;
}

/** A directory's entries; none when it cannot be read (gone meanwhile, say). */
function entries(d: string): fs.Dirent[] {
  try {
    return fs.readdirSync(d, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** `<run dir>/<task>/<n>` directories that exist. */
function attemptDirs(runDir: string): string[] {
  const dirs = (d: string) => entries(d).filter((e) => e.isDirectory()).map((e) => path.join(d, e.name));
  return dirs(runDir).flatMap(dirs);
}

/** `<run dir>/<task>/<n>.dispatch` marker files. */
function markerFiles(runDir: string): string[] {
  return entries(runDir)
    .filter((e) => e.isDirectory())
    .flatMap((t) => entries(path.join(runDir, t.name)).filter((e) => e.isFile() && e.name.endsWith('.dispatch')).map((e) => path.join(runDir, t.name, e.name)));
}

/** Read fresh: whether an attempt of the run records `branch` (a dispatch may have just done so). */
async function branchOwned(orch: Orch, runId: string, branch: string): Promise<boolean> {
  const attempts = await readTransaction<OrchDatabase, AttemptRow[]>(orch.store, (trx) => listAttempts(trx, { runId }));
  return attempts.some((a) => a.branch === branch);
}
