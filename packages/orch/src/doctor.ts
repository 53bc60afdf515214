// `orch doctor`: the driver. The checks are small named functions under doctor/, each yielding its
// findings (a problem and, when one is safe, its repair); this runs them in order and then the
// deferred repairs. Report order: inbox's checks, the orch schema, then per run its database
// checks (doctor/run-records.ts) and its workspace checks (doctor/orphans.ts, doctor/leftover-files.ts).
import { checkFile, finishReport, inboxCounts, inboxFindings, initHint, type InboxDatabase } from '@orch/inbox';
import { NotFoundError, openDatabase, randomIds, readTransaction, writeTransaction, type Clock, type DoctorReport } from '@orch/store';
import type { Finding } from './doctor/finding.ts';
import { checkWorkspaces } from './doctor/orphans.ts';
import { checkRunRecords } from './doctor/run-records.ts';
import { orchSchema } from './doctor/schema.ts';
import { repoRoot } from './git.ts';
import type { Orch } from './orch.ts';
import { allRunIds } from './queries/health.ts';
import type { OrchDatabase } from './schema.ts';

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
  const repair = input.repair === true;
  const repo = input.repoPath === undefined ? undefined : await repoRoot(input.repoPath);
  const store = await openDatabase({
    path: input.path,
    create: false,
    allowHardLinks: true,
    initHint: initHint(input.path),
    ...(input.nativeBinding ? { nativeBinding: input.nativeBinding } : {}),
  });
  const clock = input.clock ?? store.clock;
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
    if (schema === 'missing' && input.runId !== undefined)
      throw new NotFoundError(`no run ${input.runId} (the database has no runs yet)`, { run: input.runId });
    // An outdated orch schema is reported above; its runs are checked once --repair has upgraded it.
    const runIds =
      schema !== 'current' ? [] : input.runId !== undefined ? [input.runId] : await readTransaction<OrchDatabase, string[]>(store, (trx) => allRunIds(trx));
    Object.assign(counts, { runs: 0, tasks: 0, attempts: 0, events: 0 });
    for (const runId of runIds) {
      const checked = await checkRunRecords(orch, runId, findings);
      counts.runs = (counts.runs ?? 0) + 1;
      counts.tasks = (counts.tasks ?? 0) + checked.tasks;
      counts.attempts = (counts.attempts ?? 0) + checked.attempts.length;
      counts.events = (counts.events ?? 0) + checked.events;
      findings.push(...(await checkWorkspaces(orch, runId, checked.attempts, repo, repair)));
    }
    if (repair) {
      for (const f of findings) if (f.fix && !f.problem.repaired) f.problem.repaired = await f.fix();
    }
    return finishReport(
      base.report,
      counts,
      findings.map((f) => f.problem),
    );
  } finally {
    await store.close();
  }
}
