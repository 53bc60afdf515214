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
import { cancelAttemptIn } from './attempts.ts';
import { emitIn, settleRunIn } from './events.ts';
import { branchOwners } from './branch-owner.ts';
import { removeEmptyParents } from './dirs.ts';
import { branchesUnder, deleteBranch, listWorktrees, repoRoot, unmergedCommits, GitFailure } from './git.ts';
import { clearDeadGitLocks } from './leftovers.ts';
import { DEFAULT_WORKSPACE_ROOT } from './launch.ts';
import { markerAlive, markerPath, readMarker, removeDeadMarker } from './marker.ts';
import { orchMigrations } from './migrations.ts';
import { inboxTx, type Orch, type Tx } from './orch.ts';
import { getAttempt, listAttempts, updateAttempt, type AttemptRow } from './queries/attempts.ts';
import { allRunIds, eventSeqSpan, latestTaskStateEvents } from './queries/health.ts';
import { getRun } from './queries/runs.ts';
import { listTasks, setTaskState, type TaskRow } from './queries/tasks.ts';
import { reconcile, unfoldedIn } from './reconcile.ts';
import { LIVE_ATTEMPT_STATES, type OrchDatabase } from './schema.ts';
import { databaseId, ownership } from './owner.ts';
import { ORPHAN_MIN_AGE_MS, cleanOrphans, ownedPath, reportPath, workspacePlaces } from './workspace.ts';

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
  const store = openStore({ path: input.path, create: false, allowHardLinks: true, initHint: initHint(input.path), ...(input.nativeBinding ? { nativeBinding: input.nativeBinding } : {}) });
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
    for (const a of attempts) if (!threads.has(a.thread_id)) out.push(missingThreadFinding(orch, a, byTask.get(a.task_id)?.at(-1)));
    const events = await latestTaskStateEvents(trx, runId);
    for (const t of tasks) {
      const own = byTask.get(t.id) ?? [];
      const stale = staleLiveAttemptFinding(orch, t, own);
      if (stale) out.push(stale);
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
    // (An attempt whose thread is missing has nothing to fold; it is reported above.)
    const unfolded = await unfoldedIn(trx, orch, runId);
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
    // Last, so its repair runs after the run's other repairs and sees what is left.
    if (run.state === 'active' && finished) out.push(settleFinding(orch, runId, out));
    return { tasks: tasks.length, attempts, events: span.count };
  });
}

/**
 * A run whose tasks are all finished but which is still active. The repair marks it done, but only
 * once nothing else about the run is still wrong: it runs after the run's other repairs and
 * refuses (saying so) while any error of the run is left, since settling a damaged run would hide
 * the damage behind `done`.
 */
function settleFinding(orch: Orch, runId: string, all: Finding[]): Finding {
  const p = problem({ run: runId, kind: 'run_not_settled', severity: 'warning', message: `every task of run ${runId} is finished but the run is still active`, repair: 'mark the run done' });
  const fix = async (): Promise<boolean> => {
    const left = all.filter((f) => f.problem.run === runId && f.problem.severity === 'error' && !f.problem.repaired);
    if (left.length > 0) {
      p.repair = null;
      p.message += `; not marked done while ${left.length} error(s) of the run remain (${[...new Set(left.map((f) => f.problem.kind))].join(', ')})`;
      return false;
    }
    await writeTransaction<OrchDatabase, void>(orch.store, (w) => settleRunIn(w, orch, runId));
    return true;
  };
  return { problem: p, fix };
}

/**
 * An attempt whose thread no longer exists. A finished one only lost its history (a warning); a
 * live one can never be claimed, fold or end, so the repair closes it: the task's latest attempt
 * becomes failed with a task_failed event (and so does the task, which can then be retried); an
 * older one is cancelled as superseded.
 */
function missingThreadFinding(orch: Orch, a: AttemptRow, latest: AttemptRow | undefined): Finding {
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
function staleLiveAttemptFinding(orch: Orch, t: TaskRow, own: AttemptRow[]): Finding | undefined {
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
    const me = await databaseId(orch);
    for (const o of await cleanOrphans(orch, runId, places, { dryRun: !repair, force: false })) {
      const why = o.would_remove ? '' : ` (${o.note})`;
      add(
        {
          kind: 'orphan_worktree',
          severity: 'warning',
          path: o.path,
          ...(o.branch ? { branch: o.branch } : {}),
          message: `worktree ${o.path}${o.branch ? ` (branch ${o.branch})` : ''} belongs to no attempt, probably left by an interrupted dispatch${why}`,
          repair: o.would_remove ? 'remove the worktree and its branch (they hold no work)' : null,
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
        if (repaired) removeEmptyParents(path.dirname(file), root);
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
      const owners = await branchOwners(r);
      for (const branch of await branchesUnder(r, `orch/${runId}`)) {
        if (owned.has(branch) || checkedOut.has(branch)) continue;
        const whose = ownership(owners, branch, me);
        // Another database's branch (same run id, same repository) is not this run's orphan.
        if (whose.kind === 'foreign') continue;
        // `worktree add -b` makes the branch before the worktree: a live dispatch may be at that point.
        const rel = branch.slice('orch/'.length).split('/');
        if ([...places].some(([root2, r2]) => r2 === r && beingMade(path.join(root2, ...rel)))) continue;
        // The branch of a worktree at its place whose HEAD was detached goes (or stays) with that worktree.
        if ([...places].some(([root2, r2]) => r2 === r && registered.has(path.join(root2, ...rel)))) continue;
        const unmerged = await unmergedCommits(r, branch);
        const removable = unmerged.length === 0 && whose.kind === 'mine';
        let repaired = false;
        if (repair && removable && !(await branchOwned(orch, runId, branch))) {
          await clearDeadGitLocks(r, branch);
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
              (unmerged.length > 0 ? ` and has ${unmerged.length} commit(s) on no other branch: look at them, then \`git branch -D ${branch}\`` : '') +
              (whose.kind === 'unmarked' ? '; it carries no orch owner mark (made before orch recorded owners, or by hand), so it may be another database\'s: left alone' : ''),
            repair: removable ? 'delete the branch (its commits are on other branches)' : null,
          },
          repaired,
        );
      }
    }
    for (const [root] of places) out.push(...leftoverFindings(orch, runId, root, attempts, repair));
  } catch (err) {
    if (!(err instanceof GitFailure)) throw err;
    add({ kind: 'git_failed', severity: 'warning', message: `could not look for orphaned worktrees of run ${runId}: ${err.message}`, repair: null });
  }
  return out;
}

/**
 * What orch's conventions leave under `<root>/<run>/` once worktrees are gone: report files
 * (`<n>.report.md`) beside no worktree, and empty task (or run) folders. `repair` removes a report
 * whose attempt's worktree cleanup recorded as removed (what cleanup itself would remove), and
 * folders that have been empty for at least a minute (a dispatch makes its folder just before
 * its marker).
 */
function leftoverFindings(orch: Orch, runId: string, root: string, attempts: AttemptRow[], repair: boolean): Finding[] {
  const out: Finding[] = [];
  const runDir = path.join(root, runId);
  const add = (p: Omit<Problem, 'repaired' | 'run'>, repaired: boolean) => out.push({ problem: { ...problem({ run: runId, ...p }), repaired } });
  const byWorktree = new Map(attempts.flatMap((a) => (a.worktree_path ? [[a.worktree_path, a] as const] : [])));
  for (const t of entries(runDir).filter((e) => e.isDirectory())) {
    const taskDir = path.join(runDir, t.name);
    for (const f of entries(taskDir).filter((e) => !e.isDirectory() && e.name.endsWith('.report.md'))) {
      const file = path.join(taskDir, f.name);
      const worktree = file.slice(0, -'.report.md'.length);
      if (reportPath(worktree) !== file || fs.existsSync(worktree)) continue;
      const a = byWorktree.get(worktree);
      const cleaned = a !== undefined && a.worktree_removed_at !== null;
      let repaired = false;
      if (repair && cleaned) {
        fs.rmSync(file, { force: true });
        removeEmptyParents(taskDir, root);
        repaired = true;
      }
      add(
        {
          kind: 'leftover_file',
          severity: 'warning',
          path: file,
          message: a
            ? `${file} is the report of attempt ${a.id} (task ${a.task_id} #${a.number}), whose worktree is gone${cleaned ? '' : `; \`orch cleanup --run ${runId} --attempt ${a.id}\` removes it`}`
            : `${file} is a report beside no worktree and no attempt's: look at it, then remove it by hand`,
          repair: cleaned ? 'remove the report file (cleanup removes it with its worktree)' : null,
        },
        repaired,
      );
    }
  }
  // A task folder holding a live attempt's missing worktree is reported as that (worktree_missing).
  const holding = new Set(attempts.flatMap((a) => (a.worktree_path && a.worktree_removed_at === null ? [path.dirname(a.worktree_path)] : [])));
  for (const dir of [...entries(runDir).filter((e) => e.isDirectory()).map((e) => path.join(runDir, e.name)), runDir]) {
    if (!fs.existsSync(dir) || entries(dir).length > 0 || holding.has(dir)) continue;
    const old = orch.clock.now() - fs.statSync(dir).mtimeMs >= ORPHAN_MIN_AGE_MS;
    let repaired = false;
    if (repair && old) {
      removeEmptyParents(dir, root);
      repaired = !fs.existsSync(dir);
    }
    add(
      {
        kind: 'leftover_directory',
        severity: 'warning',
        path: dir,
        message: `${dir} is an empty folder orch made for worktrees`,
        repair: old ? 'remove the empty folder' : null,
      },
      repaired,
    );
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
