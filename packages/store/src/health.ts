import type { Store } from './engine.ts';
import { hardLinkCount, hardLinkedMessage } from './open.ts';

/** How bad a problem `doctor` found is: errors break a guarantee; warnings are recoverable as they stand. */
export type Severity = 'error' | 'warning';

/** One thing `doctor` found. */
export interface Problem {
  /** Stable identifier of the check, e.g. `lease_expired` or `orphan_worktree`. */
  kind: string;
  severity: Severity;
  message: string;
  /** What `--repair` does about it (null: nothing safe to do automatically; the message says what to do). */
  repair: string | null;
  /** With --repair: whether it was repaired in this call. */
  repaired: boolean;
  /** Where: whichever of these apply. */
  run?: string;
  task?: string;
  attempt?: string;
  thread?: string;
  path?: string;
  branch?: string;
}

export interface DoctorReport {
  db: string;
  /** `PRAGMA integrity_check`: "ok", or the first problems SQLite reported. */
  integrity: 'ok' | string[];
  /** The database's journal mode (this tool uses wal). */
  journal_mode: string;
  /** Whether --repair was given. */
  repair: boolean;
  /** How many rows of each kind were checked. */
  checked: Record<string, number>;
  problems: Problem[];
  /** Problems fixed by this call. */
  repaired: number;
  /** No error-severity problem is left (warnings may remain). */
  ok: boolean;
}

/** Problems from `PRAGMA integrity_check` (empty when the file is sound). Reads every page. */
export function integrityErrors(store: Store, max = 20): string[] {
  // The server keeps its own pages sound; there is no file of ours to check.
  if (store.kind === 'postgres') return [];
  try {
    const rows = store.sqlite.pragma(`integrity_check(${Math.trunc(max)})`) as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).filter((m) => m !== 'ok');
  } catch (err) {
    // A file damaged enough makes the check itself fail: that is its answer.
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB')) return [(err as Error).message];
    throw err;
  }
}

/** Rows whose foreign key points at nothing (`PRAGMA foreign_key_check`). */
export function foreignKeyErrors(store: Store): { table: string; rowid: number | null; parent: string }[] {
  // PostgreSQL enforces foreign keys at every commit: none can dangle.
  if (store.kind === 'postgres') return [];
  return store.sqlite.pragma('foreign_key_check') as { table: string; rowid: number | null; parent: string }[];
}

/** SQLite's journal mode; PostgreSQL always writes ahead to its WAL, so it answers `wal` as well. */
export function journalMode(store: Store): string {
  if (store.kind === 'postgres') return 'wal';
  return String(store.sqlite.pragma('journal_mode', { simple: true }));
}

/**
 * The database file has more than one hard link (every other command refuses it): an error with
 * no automatic repair, since only a person knows which name the participants should use.
 */
export function hardLinkProblem(store: Store): Problem | undefined {
  if (store.kind === 'postgres') return undefined;
  const links = hardLinkCount(store.path);
  if (links <= 1) return undefined;
  return problem({ kind: 'db_hard_linked', severity: 'error', message: hardLinkedMessage(store.path, links), repair: null, path: store.path });
}

/** Builds a problem record (not yet repaired). */
export function problem(fields: Omit<Problem, 'repaired'>): Problem {
  return { ...fields, repaired: false };
}

/** A doctor report for people: one line per problem, then the verdict. */
export function doctorText(r: DoctorReport): string {
  const checked = Object.entries(r.checked)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  const lines = [`${r.db}: integrity ${r.integrity === 'ok' ? 'ok' : 'FAILED'}, journal ${r.journal_mode}${checked ? `; checked ${checked}` : ''}`];
  for (const p of r.problems) {
    const fix = p.repaired
      ? ' [repaired]'
      : p.repair !== null
        ? r.repair
          ? ' [not repaired: the state changed meanwhile]'
          : ` [--repair would: ${p.repair}]`
        : '';
    lines.push(`${p.severity === 'error' ? 'ERROR  ' : 'warning'} ${p.kind}: ${p.message}${fix}`);
  }
  const errors = r.problems.filter((p) => p.severity === 'error' && !p.repaired).length;
  const warnings = r.problems.filter((p) => p.severity === 'warning' && !p.repaired).length;
  lines.push(
    r.problems.length === 0
      ? 'no problems found'
      : `${errors} error(s), ${warnings} warning(s) left${r.repaired > 0 ? `, ${r.repaired} repaired` : ''}${r.ok ? '' : ' (exit 4)'}`,
  );
  return lines.join('\n');
}
