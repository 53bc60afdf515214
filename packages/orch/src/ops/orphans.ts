// Worktrees under a run's workspace that no attempt owns (left by an interrupted dispatch): found
// and removed by cleanup --all-completed, reported and repaired by doctor.
import { readTransaction } from '@orch/store';
import fs from 'node:fs';
import path from 'node:path';
import {
  GitFailure,
  branchExists,
  deleteBranch,
  interruptedAdd,
  listWorktrees,
  pruneWorktrees,
  removeWorktree,
  uncommitted,
  unmergedCommits,
  worktreeOnlyCommits,
} from '../git.ts';
import { branchOwners } from '../branch-owner.ts';
import { removeEmptyParents } from '../dirs.ts';
import { markerAlive, markerPath, readMarker, removeDeadMarker } from '../marker.ts';
import type { Orch } from '../orch.ts';
import { branchForPath, databaseId, ownership } from '../owner.ts';
import { attemptByWorktree, type AttemptRow } from '../queries/attempts.ts';
import type { OrchDatabase } from '../schema.ts';

export interface OrphanEntry {
  /** A worktree directory under the workspace root that no attempt owns (e.g. a crash mid-dispatch). */
  path: string;
  branch: string | null;
  /** Removed (always false with --dry-run). */
  removed: boolean;
  /** The decision: removed, or with --dry-run would be. */
  would_remove: boolean;
  note: string;
}

/** Orphans younger than this may belong to a dispatch that is recording its attempt right now. */
export const ORPHAN_MIN_AGE_MS = 60_000;

/** Where a run's worktrees live: each workspace root its attempts used, with its repository. */
export function workspacePlaces(attempts: AttemptRow[]): Map<string, string> {
  const places = new Map<string, string>();
  for (const a of attempts) if (a.repo_path && a.workspace_root && fs.existsSync(a.repo_path)) places.set(a.workspace_root, a.repo_path);
  return places;
}

/**
 * Worktrees under `<workspace root>/<run>/` that no attempt of the run owns, for each root in
 * `places` (root -> repository). Removes those at least a minute old that this database's owner
 * mark names and that hold no work (unless `dryRun`; `force` also removes those that hold work).
 * Worktrees another database marked are not this run's orphans and are left out; unmarked ones
 * (made before orch recorded owners, or by hand) are kept and listed, removed only with `force`.
 * A git refusal is noted on that orphan.
 */
export async function cleanOrphans(orch: Orch, runId: string, places: Map<string, string>, opts: { dryRun: boolean; force: boolean }): Promise<OrphanEntry[]> {
  const out: OrphanEntry[] = [];
  const me = await databaseId(orch);
  for (const [root, repo] of places) {
    const runDir = path.join(root, runId);
    const candidates = (await listWorktrees(repo)).filter((w) => w.path.startsWith(`${runDir}${path.sep}`));
    if (candidates.length === 0) continue;
    const owners = await branchOwners(repo);
    for (const w of candidates) {
      const whose = ownership(owners, w.branch ?? branchForPath(root, w.path), me);
      if (whose.kind === 'foreign') continue;
      // Read again for each one: a dispatch may have recorded it since this cleanup started.
      if (await ownedPath(orch, w.path)) continue;
      const entry: OrphanEntry = { path: w.path, branch: w.branch, removed: false, would_remove: false, note: '' };
      try {
        await cleanOrphan(orch, repo, root, w, whose.kind === 'unmarked', entry, opts);
      } catch (err) {
        if (!(err instanceof GitFailure)) throw err;
        entry.removed = false;
        entry.note = `kept: ${err.message}`;
      }
      out.push(entry);
    }
  }
  return out;
}

async function cleanOrphan(
  orch: Orch,
  repo: string,
  root: string,
  w: { path: string; branch: string | null; locked: string | null },
  unmarked: boolean,
  entry: OrphanEntry,
  opts: { dryRun: boolean; force: boolean },
): Promise<void> {
  const marker = readMarker(markerPath(w.path));
  const age = fs.existsSync(w.path) ? orch.clock.now() - fs.statSync(w.path).mtimeMs : Infinity;
  // A checkout cut short shows its missing files as changes: they are nobody's work.
  const live = fs.existsSync(w.path) && !interruptedAdd(w);
  const dirty = live ? await uncommitted(w.path) : [];
  const unmerged = w.branch && (await branchExists(repo, w.branch)) ? await unmergedCommits(repo, w.branch) : [];
  const headOnly = live ? await worktreeOnlyCommits(w.path, w.branch ? [w.branch] : []) : [];
  const lost = new Set([...unmerged, ...headOnly]).size;
  if (marker && markerAlive(marker)) {
    entry.note = `kept: a dispatch (pid ${marker.pid}) is making it right now`;
  } else if (age < ORPHAN_MIN_AGE_MS) {
    entry.note = 'kept: made less than a minute ago, perhaps by a dispatch still recording its attempt (run cleanup again later)';
  } else if (unmarked && !opts.force) {
    entry.note =
      'kept: it carries no orch owner mark (made before orch recorded owners, or by hand), so it may belong to another orch database ' +
      'using this repository; look at it, then remove it by hand or with --force';
  } else if ((dirty.length > 0 || lost > 0) && !opts.force) {
    entry.note = `kept: ${dirty.length} uncommitted change(s), ${lost} commit(s) on no other branch (--force to remove)`;
  } else {
    if (!opts.dryRun) {
      if (fs.existsSync(w.path)) await removeWorktree(repo, w.path, true);
      else await pruneWorktrees(repo);
      if (w.branch && (await branchExists(repo, w.branch))) await deleteBranch(repo, w.branch);
      if (marker) removeDeadMarker(marker);
      removeEmptyParents(path.dirname(w.path), root);
    }
    entry.would_remove = true;
    entry.removed = !opts.dryRun;
    const what = unmarked ? 'worktree with no owner mark that no attempt owns (--force)' : 'worktree no attempt owns (left by an interrupted dispatch)';
    entry.note = `${opts.dryRun ? 'would remove' : 'removed'} ${what}`;
  }
}

/** Whether an attempt records a worktree at `worktreePath` (read fresh). */
export async function ownedPath(orch: Orch, worktreePath: string): Promise<boolean> {
  return readTransaction<OrchDatabase, boolean>(orch.store, async (trx) => (await attemptByWorktree(trx, worktreePath)) !== undefined);
}
