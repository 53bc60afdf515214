import {
  AppError,
  assertSchemaCurrent,
  ensureWal,
  foreignKeyErrors,
  hardLinkProblem,
  integrityErrors,
  isoTime,
  journalMode,
  migrate,
  openDatabase,
  problem,
  readTransaction,
  writeTransaction,
  type Clock,
  type DoctorReport,
  type Problem,
  type Store,
} from '@orch/store';
import type { Kysely } from 'kysely';
import { initHint } from './inbox.ts';
import { inboxMigrations } from './migrations.ts';
import {
  blockedWithoutQuestion,
  clearStrayLease,
  expiredLeases,
  heldWithoutLease,
  inboxCounts,
  reopenThread,
  strayLeases,
  threadsWithoutMessages,
  unblockThread,
} from './queries/health.ts';
import type { InboxDatabase } from './schema.ts';

type Db = Kysely<InboxDatabase>;

export interface DoctorOptions {
  path: string;
  /** Fix what is safe to fix, and say so on each problem. */
  repair?: boolean | undefined;
  clock?: Clock;
  nativeBinding?: string | undefined;
}

/** A problem together with the write that repairs it (inside a write transaction), if any is safe. */
export interface Finding {
  problem: Problem;
  /** Returns whether it changed anything (false: the state moved on since the check). */
  fix?: (trx: Db, now: number) => Promise<boolean>;
}

/**
 * `inbox doctor`: checks the database file (SQLite's integrity check, foreign keys, journal mode,
 * schema version) and the inbox's own rules (every held thread has a whole lease, no lease token
 * survives on an open or finished thread, every thread has its first message, a blocked thread
 * has a question pending), and lists expired leases. With `repair`, fixes what is safe: WAL mode,
 * an outdated schema, broken or stray leases (the thread goes back to open, as a release would),
 * and a blocked thread with nothing to wait for. Never deletes a row.
 *
 * A database file with several hard links is reported (`db_hard_linked`) and nothing is repaired.
 *
 * @throws DatabaseUnavailableError (exit 6) when the file is missing, not SQLite, not an inbox
 *   database, or newer than this code.
 */
export async function inboxDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const store = await openDatabase({
    path: options.path,
    create: false,
    allowHardLinks: true,
    initHint: initHint(options.path),
    ...(options.nativeBinding ? { nativeBinding: options.nativeBinding } : {}),
  });
  try {
    const clock = options.clock ?? store.clock;
    const base = await checkFile(store, options.repair === true, clock);
    if (base.stop) return base.report;
    const counts = await readTransaction<InboxDatabase, { threads: number; messages: number }>(store, (trx) => inboxCounts(trx));
    const findings = await inboxFindings(store, clock);
    await applyRepairs(store, findings, options.repair === true, clock);
    return finishReport(
      base.report,
      counts,
      findings.map((f) => f.problem),
    );
  } finally {
    await store.close();
  }
}

/**
 * The checks every doctor starts with, on an open store: integrity (when it fails nothing else is
 * read: `stop`), foreign keys, journal mode, and the inbox schema version (an outdated one is
 * upgraded with `repair`).
 */
export async function checkFile(store: Store, repair: boolean, clock: Clock): Promise<{ report: DoctorReport; stop: boolean }> {
  const integrity = integrityErrors(store);
  const report: DoctorReport = {
    db: store.path,
    integrity: 'ok',
    journal_mode: integrity.length > 0 ? 'unknown' : journalMode(store),
    repair,
    checked: {},
    problems: [],
    repaired: 0,
    ok: true,
  };
  // A second hard link loses writes: reported, and nothing is repaired through either name.
  const linked = hardLinkProblem(store);
  if (linked) report.problems.push(linked);
  if (integrity.length > 0) {
    report.integrity = integrity;
    report.problems.push(
      problem({
        kind: 'integrity',
        severity: 'error',
        message: `SQLite's integrity check failed: ${integrity[0]}${integrity.length > 1 ? ` (and ${integrity.length - 1} more)` : ''}; restore the file from a copy (\`sqlite3 FILE .recover\` may save what is readable)`,
        repair: null,
      }),
    );
    return { report: finishReport(report, {}, []), stop: true };
  }
  if (linked) return { report: finishReport(report, {}, []), stop: true };
  for (const fk of foreignKeyErrors(store)) {
    report.problems.push(
      problem({
        kind: 'foreign_key',
        severity: 'error',
        message: `row ${fk.rowid ?? '?'} of ${fk.table} points at a missing row of ${fk.parent}`,
        repair: null,
      }),
    );
  }
  try {
    await assertSchemaCurrent(store, inboxMigrations, initHint(store.path));
  } catch (err) {
    if (!(err instanceof AppError && err.code === 'DB_OUTDATED')) throw err;
    const p = problem({ kind: 'schema_outdated', severity: 'error', message: err.message, repair: 'apply the missing migrations (as `inbox init` does)' });
    if (repair) {
      await migrate(store, inboxMigrations, clock);
      p.repaired = true;
    }
    report.problems.push(p);
  }
  if (report.journal_mode !== 'wal') {
    const p = problem({
      kind: 'journal_mode',
      severity: 'warning',
      message: `the database is in ${report.journal_mode} mode, not wal: readers and writers block each other`,
      repair: 'switch the database to WAL mode',
    });
    if (repair) {
      ensureWal(store);
      report.journal_mode = journalMode(store);
      p.repaired = report.journal_mode === 'wal';
    }
    report.problems.push(p);
  }
  return { report, stop: false };
}

/** The inbox's own rules, read in one snapshot. */
export async function inboxFindings(store: Store, clock: Clock): Promise<Finding[]> {
  const now = clock.now();
  return readTransaction<InboxDatabase, Finding[]>(store, async (trx) => {
    const out: Finding[] = [];
    for (const t of await heldWithoutLease(trx)) {
      out.push({
        problem: problem({
          kind: 'broken_lease',
          severity: 'error',
          thread: t.id,
          message: `thread ${t.id} is ${t.state} but its lease is incomplete (holder ${t.claimed_by ?? 'none'}, token ${t.lease_token === null ? 'none' : 'set'}, expiry ${t.lease_expires_at === null ? 'none' : isoTime(t.lease_expires_at)}, claims ${t.claim_count}); no worker can write to it`,
          repair: `give the thread back to ${t.assigned_to} (open, no lease), as a release would`,
        }),
        fix: (db, at) => reopenThread(db, t.id, at),
      });
    }
    for (const t of await strayLeases(trx)) {
      out.push({
        problem: problem({
          kind: 'stray_lease',
          severity: 'error',
          thread: t.id,
          message: `thread ${t.id} is ${t.state} but still carries a lease token`,
          repair: 'drop the lease token',
        }),
        fix: (db, at) => clearStrayLease(db, t.id, at),
      });
    }
    for (const t of await threadsWithoutMessages(trx)) {
      out.push({
        problem: problem({
          kind: 'thread_without_messages',
          severity: 'error',
          thread: t.id,
          message: `thread ${t.id} has no messages (not even its task)`,
          repair: null,
        }),
      });
    }
    for (const t of await blockedWithoutQuestion(trx)) {
      out.push({
        problem: problem({
          kind: 'blocked_without_question',
          severity: 'error',
          thread: t.id,
          message: `thread ${t.id} is blocked but has no unanswered question`,
          repair: t.lease_token === null ? 'mark it open again (nobody holds it)' : 'mark it claimed again (its lease is kept)',
        }),
        fix: (db, at) => unblockThread(db, t.id, at),
      });
    }
    for (const t of await expiredLeases(trx, now)) {
      out.push({
        problem: problem({
          kind: 'lease_expired',
          severity: 'warning',
          thread: t.id,
          message:
            `the lease of ${t.claimed_by ?? '?'} on thread ${t.id} ran out at ${isoTime(t.lease_expires_at ?? now)}: ` +
            `${t.assigned_to} can claim it again (for an orch attempt, reconcile marks the attempt expired)`,
          repair: null,
        }),
      });
    }
    return out;
  });
}

/** With `repair`, applies every safe fix, each in its own write transaction. */
export async function applyRepairs(store: Store, findings: Finding[], repair: boolean, clock: Clock): Promise<void> {
  if (!repair) return;
  for (const f of findings) {
    const fix = f.fix;
    if (!fix) continue;
    f.problem.repaired = await writeTransaction<InboxDatabase, boolean>(store, (trx) => fix(trx, clock.now()));
  }
}

/** Adds the counts and findings to a report and works out `repaired` and `ok`. */
export function finishReport(report: DoctorReport, counts: Record<string, number>, problems: Problem[]): DoctorReport {
  report.checked = { ...report.checked, ...counts };
  report.problems.push(...problems);
  report.repaired = report.problems.filter((p) => p.repaired).length;
  report.ok = !report.problems.some((p) => p.severity === 'error' && !p.repaired);
  return report;
}
