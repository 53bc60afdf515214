// Removing finished attempts' worktrees and branches without losing work. Git runs outside
// transactions; the database records what git did afterwards.
import { ConflictError, NotFoundError, failpoint, writeTransaction } from '@orch/store';
import fs from 'node:fs';
import path from 'node:path';
import { emitIn } from '../events.ts';
import {
  GitFailure,
  branchExists,
  branchHead,
  deleteBranch,
  isAncestor,
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
import { databaseId } from '../owner.ts';
import { getAttempt, listAttempts, updateAttempt, type AttemptRow } from '../queries/attempts.ts';
import { LIVE_ATTEMPT_STATES, type AttemptState, type ExecutionMode, type OrchDatabase } from '../schema.ts';
import { cleanRemoteAttempt } from './cleanup-remote.ts';
import { cleanOrphans, workspacePlaces, type OrphanEntry } from './orphans.ts';
import { reconcileThen } from './reconcile.ts';
import { requireRun } from './runs.ts';

export interface CleanupInput {
  runId: string;
  allCompleted?: boolean | undefined;
  attemptId?: string | undefined;
  dryRun?: boolean | undefined;
  /** Also remove worktrees with uncommitted changes and branches with commits on no other branch. */
  force?: boolean | undefined;
}

export interface CleanupEntry {
  attempt: string;
  task: string;
  number: number;
  state: AttemptState;
  execution_mode: ExecutionMode;
  worktree_path: string | null;
  branch: string | null;
  /** The worktree was removed (always false with --dry-run: see would_remove). */
  removed: boolean;
  /** The branch was deleted (always false with --dry-run: see would_delete_branch). */
  branch_deleted: boolean;
  /** The decision: the worktree is (or with --dry-run would be) removed. */
  would_remove: boolean;
  /** The decision: the branch is (or with --dry-run would be) deleted. */
  would_delete_branch: boolean;
  /** Uncommitted files found in the worktree. */
  uncommitted: string[];
  /** Commits on the branch that no other branch has. */
  unmerged_commits: number;
  /** Commits only the worktree's HEAD or its HEAD reflog reach (a detached HEAD, a reset): lost with the worktree. */
  worktree_only_commits: number;
  /** What was (with --dry-run: would be) done or kept, and why. */
  note: string;
  /** git's refusal, if a step failed (what was done before it is still recorded). */
  error: string | null;
}

export interface CleanupResult {
  run: string;
  dry_run: boolean;
  attempts: CleanupEntry[];
  orphans: OrphanEntry[];
  /** How many attempts git refused to clean completely (see their `error`). */
  errors: number;
}

/** What one cleanup knows and decides across attempts. */
export interface CleanContext {
  dryRun: boolean;
  force: boolean;
  /** Branches this call deletes (or, dry, would delete): their commits no longer count as "elsewhere". */
  gone: string[];
  /** This database's id: the owner mark of its branches. */
  me: string;
  /** Owner marks per repository (branch -> database id), read once. */
  owners: (repo: string) => Promise<Map<string, string>>;
}

/** The report a code worker writes beside its worktree, by orch's convention. */
export function reportPath(worktree: string): string {
  return `${worktree}.report.md`;
}

/**
 * `orch cleanup`: removes the worktrees of finished attempts (done, failed, cancelled, expired) and
 * prunes git's records. Keeps, and says why, a worktree with uncommitted changes or with commits
 * that only its HEAD or HEAD reflog reach (a detached HEAD), and a branch whose commits are on no
 * other branch, unless `force`. Branches whose commits live elsewhere (merged), or that `merge
 * --strategy squash` took and that have not moved since, are deleted. Never touches a worktree or
 * branch another database's owner mark names, even with `force`. Once a worktree is gone, what
 * orch's conventions put beside it goes too: `<worktree>.report.md`, a dead dispatch marker, and
 * the `<run>/<task>/` folders once empty. Each attempt's outcome is recorded as soon as its git work
 * is done; a git refusal is reported on that attempt and the others go on. With `allCompleted`,
 * also handles orphans: worktrees under the run's workspace roots that no attempt owns and that
 * are at least a minute old. `dryRun` decides the same and changes nothing (`removed` and
 * `branch_deleted` stay false; `would_remove`, `would_delete_branch` and the note say what would
 * happen). Analysis attempts have nothing on disk.
 *
 * @throws NotFoundError (3) for an unknown run or attempt; ConflictError (4) for a live attempt.
 */
export async function cleanup(orch: Orch, input: CleanupInput): Promise<CleanupResult> {
  // Looked up inside the reconcile's transaction: an unknown or live attempt is refused with nothing written.
  const { attempts, all } = await reconcileThen(orch, input.runId, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const all = await listAttempts(trx, { runId: run.id });
    if (input.attemptId === undefined) return { attempts: all.filter((a) => !LIVE_ATTEMPT_STATES.includes(a.state)), all };
    const a = await getAttempt(trx, input.attemptId);
    if (!a || a.run_id !== run.id) throw new NotFoundError(`no attempt ${input.attemptId} in run ${run.id}`, { run: run.id, attempt: input.attemptId });
    if (LIVE_ATTEMPT_STATES.includes(a.state)) {
      throw new ConflictError(`attempt ${a.id} is ${a.state}; cancel or finish it before cleaning up`, { attempt: a.id, state: a.state });
    }
    return { attempts: [a], all };
  });
  const ctx: CleanContext = { dryRun: input.dryRun === true, force: input.force === true, gone: [], me: await databaseId(orch), owners: ownerCache() };
  const entries: CleanupEntry[] = [];
  for (const a of attempts) {
    const entry = await cleanAttempt(a, ctx);
    entries.push(entry);
    if (entry.would_delete_branch && a.branch) ctx.gone.push(a.branch);
    failpoint('cleanup:before-record');
    if (!ctx.dryRun) await recordCleanup(orch, a, entry);
  }
  const orphans = input.allCompleted ? await cleanOrphans(orch, input.runId, workspacePlaces(all), { dryRun: ctx.dryRun, force: ctx.force }) : [];
  return { run: input.runId, dry_run: ctx.dryRun, attempts: entries, orphans, errors: entries.filter((e) => e.error !== null).length };
}

/** Owner marks per repository, read on first use. */
function ownerCache(): (repo: string) => Promise<Map<string, string>> {
  const cache = new Map<string, Promise<Map<string, string>>>();
  return (repo) => {
    let owners = cache.get(repo);
    if (!owners) cache.set(repo, (owners = branchOwners(repo)));
    return owners;
  };
}

async function recordCleanup(orch: Orch, a: AttemptRow, e: CleanupEntry): Promise<void> {
  if (a.execution_mode !== 'code') return;
  const worktreeNow = e.removed && a.worktree_removed_at === null;
  const branchNow = e.branch_deleted && a.branch_deleted_at === null;
  if (!worktreeNow && !branchNow) return;
  await writeTransaction<OrchDatabase, void>(orch.store, async (trx) => {
    const now = orch.clock.now();
    await updateAttempt(trx, a.id, {
      ...(worktreeNow ? { worktree_removed_at: now } : {}),
      ...(branchNow ? { branch_deleted_at: now } : {}),
      updated_at: now,
    });
    await emitIn(trx, orch, {
      runId: a.run_id,
      taskId: a.task_id,
      attemptId: a.id,
      type: 'attempt_cleaned',
      data: { worktree_removed: worktreeNow, branch_deleted: branchNow, worktree_path: a.worktree_path, branch: a.branch },
    });
  });
}

async function cleanAttempt(a: AttemptRow, ctx: CleanContext): Promise<CleanupEntry> {
  const entry: CleanupEntry = {
    attempt: a.id,
    task: a.task_id,
    number: a.number,
    state: a.state,
    execution_mode: a.execution_mode,
    worktree_path: a.worktree_path,
    branch: a.branch,
    removed: false,
    branch_deleted: false,
    would_remove: false,
    would_delete_branch: false,
    uncommitted: [],
    unmerged_commits: 0,
    worktree_only_commits: 0,
    note: '',
    error: null,
  };
  const { repo_path: repo, branch, remote_url: remoteUrl, worktree_path: worktree } = a;
  // Across machines the branch lives on the remote (no local worktree); otherwise in a local worktree.
  const code = a.execution_mode === 'code' && repo !== null && branch !== null && (remoteUrl !== null || worktree !== null);
  if (!code) {
    entry.note = 'analysis attempt: nothing on disk';
    return entry;
  }
  if (!fs.existsSync(repo)) {
    entry.note = `repository ${repo} is gone; nothing to do`;
    return entry;
  }
  const notes: string[] = [];
  try {
    if (remoteUrl !== null) await cleanRemoteAttempt(a, repo, remoteUrl, branch, entry, notes, ctx);
    else await cleanCodeAttempt(a, repo, worktree as string, branch, entry, notes, ctx);
  } catch (err) {
    if (!(err instanceof GitFailure)) throw err;
    entry.error = err.gitMessage.split('\n')[0] ?? err.message;
    notes.push(`stopped: ${err.message}`);
  }
  entry.note = notes.join('; ');
  return entry;
}

async function cleanCodeAttempt(
  a: AttemptRow,
  repo: string,
  worktree: string,
  branch: string,
  entry: CleanupEntry,
  notes: string[],
  ctx: CleanContext,
): Promise<void> {
  const { dryRun, force, gone } = ctx;
  const say = (done: string, would: string) => notes.push(dryRun ? would : done);
  const owner = (await ctx.owners(repo)).get(branch);
  if (owner !== undefined && owner !== ctx.me) {
    // Only possible when another database made the same branch after this one let go of it.
    notes.push(`left alone: ${branch} now belongs to another orch database (id ${owner})`);
    return;
  }
  let worktreeGone = a.worktree_removed_at !== null;
  if (worktreeGone) {
    notes.push('worktree already removed');
  } else if (!fs.existsSync(worktree)) {
    if (!dryRun) await pruneWorktrees(repo);
    entry.would_remove = true;
    entry.removed = !dryRun;
    worktreeGone = true;
    say('worktree was already gone (git records pruned)', "worktree is already gone (would prune git's records)");
  } else {
    entry.uncommitted = await uncommitted(worktree);
    entry.worktree_only_commits = (await worktreeOnlyCommits(worktree, gone)).length;
    const why: string[] = [];
    if (entry.uncommitted.length > 0) why.push(`${entry.uncommitted.length} uncommitted change(s)`);
    if (entry.worktree_only_commits > 0)
      why.push(`${entry.worktree_only_commits} commit(s) on no branch that only its HEAD or HEAD reflog reach (a detached HEAD, or work reset away)`);
    if (why.length > 0 && !force) {
      notes.push(`kept worktree: ${why.join(', ')} (${entry.worktree_only_commits > 0 ? 'put them on a branch' : 'commit them'}, or --force to discard)`);
    } else {
      if (!dryRun) await removeWorktree(repo, worktree, why.length > 0);
      entry.would_remove = true;
      entry.removed = !dryRun;
      worktreeGone = true;
      const discarding = why.length > 0 ? `, discarding ${why.join(', ')}` : '';
      say(`removed worktree${discarding}`, `would remove worktree${discarding}`);
    }
  }
  if (worktreeGone) removeLeftovers(a, worktree, dryRun, notes);
  if (a.branch_deleted_at !== null || !(await branchExists(repo, branch))) {
    notes.push('branch already deleted');
    return;
  }
  if (!worktreeGone) {
    notes.push('kept branch (its worktree is kept)');
    return;
  }
  const unmerged = await unmergedCommits(repo, branch, gone);
  // A squash merge copies the work into one new commit: the branch's own commits stay on no other
  // branch. Nothing is lost while that commit is still on the target and the branch has not moved.
  const squashed =
    unmerged.length > 0 &&
    a.merged_head !== null &&
    a.merge_commit !== null &&
    a.merged_into !== null &&
    a.merged_head === (await branchHead(repo, branch)) &&
    (await isAncestor(repo, a.merge_commit, `refs/heads/${a.merged_into}`));
  entry.unmerged_commits = squashed ? 0 : unmerged.length;
  if (squashed) {
    if (!dryRun) await deleteBranch(repo, branch);
    entry.would_delete_branch = true;
    entry.branch_deleted = !dryRun;
    say(`deleted branch (squash-merged into ${a.merged_into ?? 'its target'})`, `would delete branch (squash-merged into ${a.merged_into ?? 'its target'})`);
  } else if (unmerged.length > 0 && !force) {
    notes.push(`kept branch ${branch}: ${unmerged.length} commit(s) on no other branch (merge it, or --force to delete)`);
  } else {
    if (!dryRun) await deleteBranch(repo, branch);
    entry.would_delete_branch = true;
    entry.branch_deleted = !dryRun;
    if (unmerged.length > 0)
      say(`deleted branch, dropping ${unmerged.length} unmerged commit(s)`, `would delete branch, dropping ${unmerged.length} unmerged commit(s)`);
    else say('deleted branch (its commits are on other branches)', 'would delete branch (its commits are on other branches)');
  }
}

/**
 * Once an attempt's worktree is gone: its report file (`<worktree>.report.md`), a dispatch
 * marker whose process is dead, and the `<run>/<task>/` folders under the workspace root once
 * nothing else is in them. Only while no directory is at the worktree's path (another attempt's).
 */
function removeLeftovers(a: AttemptRow, worktree: string, dryRun: boolean, notes: string[]): void {
  if (fs.existsSync(worktree)) return;
  const report = reportPath(worktree);
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(report);
  } catch {
    st = undefined;
  }
  if (st && (st.isFile() || st.isSymbolicLink())) {
    if (!dryRun) fs.rmSync(report, { force: true });
    notes.push(dryRun ? `would remove ${path.basename(report)}` : `removed ${path.basename(report)}`);
  }
  if (dryRun) return;
  const marker = readMarker(markerPath(worktree));
  if (marker && !markerAlive(marker)) removeDeadMarker(marker);
  if (a.workspace_root !== null) removeEmptyParents(path.dirname(worktree), a.workspace_root);
}
