// Code mode after dispatch: what an attempt's branch changed (diff), bringing it into a branch of
// the main repository (merge), and removing finished worktrees without losing work (cleanup).
// Git runs outside transactions; the database records what git did afterwards.
import { ConflictError, NotFoundError, ValidationError, failpoint, readTransaction, writeTransaction } from '@orch/store';
import fs from 'node:fs';
import path from 'node:path';
import { emitIn } from './events.ts';
import {
  GitFailure,
  branchExists,
  branchHead,
  isAncestor,
  commitsBetween,
  deleteBranch,
  diffPatch,
  diffStat,
  listWorktrees,
  mergeBranch,
  pruneWorktrees,
  removeWorktree,
  uncommitted,
  unmergedCommits,
  interruptedAdd,
  checkRef,
  gitCommonDir,
  worktreeOnlyCommits,
  type CommitInfo,
  type FileChange,
} from './git.ts';
import { branchOwners } from './branch-owner.ts';
import { removeEmptyParents } from './dirs.ts';
import { holdLock, markerAlive, markerPath, readMarker, removeDeadMarker } from './marker.ts';
import type { Orch } from './orch.ts';
import { branchForPath, databaseId, ownership } from './owner.ts';
import { attemptByWorktree, getAttempt, latestAttempt, listAttempts, updateAttempt, type AttemptRow } from './queries/attempts.ts';
import { reconcileIn, reconcileThen, reconciledView } from './reconcile.ts';
import { requireRun } from './runs.ts';
import { LIVE_ATTEMPT_STATES, type AttemptState, type ExecutionMode, type OrchDatabase } from './schema.ts';
import { requireTask } from './tasks.ts';
import { attemptView, type AttemptView } from './views.ts';

interface AttemptRef {
  runId: string;
  taskId: string;
  /** Default: the task's latest attempt. */
  attemptId?: string | undefined;
}

/** The chosen code-mode attempt of a task. @throws NotFoundError (3); ConflictError (4) for an analysis attempt. */
async function codeAttempt(orch: Orch, ref: AttemptRef): Promise<AttemptRow> {
  // As reconcile would leave it, keeping nothing: a refusal here or later writes nothing.
  return reconciledView(orch, ref.runId, async (trx) => {
    const run = await requireRun(trx, ref.runId);
    const task = await requireTask(trx, run.id, ref.taskId);
    const attempt = ref.attemptId !== undefined ? await getAttempt(trx, ref.attemptId) : await latestAttempt(trx, run.id, task.id);
    if (!attempt || attempt.run_id !== run.id || attempt.task_id !== task.id) {
      throw new NotFoundError(
        ref.attemptId !== undefined ? `no attempt ${ref.attemptId} of task ${task.id} in run ${run.id}` : `task ${task.id} has no attempts yet`,
        { run: run.id, task: task.id, attempt: ref.attemptId ?? null },
      );
    }
    if (attempt.execution_mode !== 'code' || attempt.repo_path === null || attempt.branch === null || attempt.base_commit === null) {
      throw new ConflictError(`attempt ${attempt.number} of task ${task.id} is an analysis attempt: it has no branch`, { attempt: attempt.id });
    }
    return attempt;
  });
}

export interface DiffResult {
  attempt: AttemptView;
  base_commit: string;
  branch: string;
  head_commit: string;
  /** Commits on the branch since the base commit, oldest first. */
  commits: CommitInfo[];
  files: FileChange[];
  /** The patch (absent with --stat). */
  patch?: string;
  /** Uncommitted changes in the worktree (null when the worktree is gone): not part of the diff. */
  uncommitted: string[] | null;
}

/**
 * `orch diff`: what the attempt's branch changed against its base commit (committed work only),
 * and whether its worktree has uncommitted changes.
 *
 * @throws NotFoundError (3); ConflictError (4) for an analysis attempt or a deleted branch.
 */
export async function diffAttempt(orch: Orch, input: AttemptRef & { stat?: boolean | undefined }): Promise<DiffResult> {
  const a = await codeAttempt(orch, input);
  const repo = a.repo_path as string;
  const branch = a.branch as string;
  const base = a.base_commit as string;
  const head = await branchHead(repo, branch);
  if (!head) throw new ConflictError(`branch ${branch} no longer exists (cleaned up?)`, { branch });
  const dirty = a.worktree_path !== null && fs.existsSync(a.worktree_path) ? await uncommitted(a.worktree_path) : null;
  return {
    attempt: attemptView(a),
    base_commit: base,
    branch,
    head_commit: head,
    commits: await commitsBetween(repo, base, head),
    files: await diffStat(repo, base, head),
    ...(input.stat ? {} : { patch: await diffPatch(repo, base, head) }),
    uncommitted: dirty,
  };
}

export interface MergeInput extends AttemptRef {
  /** Default: the attempt's base ref, when that is a branch. */
  into?: string | undefined;
  /** Default merge (a merge commit); squash makes one commit. */
  strategy?: 'merge' | 'squash' | undefined;
}

export interface MergeResult {
  attempt: AttemptView;
  into: string;
  strategy: 'merge' | 'squash';
  merged: boolean;
  /** The target already contained every commit of the branch. */
  up_to_date: boolean;
  /** An earlier `orch merge` already merged this attempt, as it is now, into `into` (nothing done). */
  already_merged: boolean;
  /** The target branch's head afterwards (for an attempt already merged: its merge commit). */
  commit: string | null;
  /** Commits brought in. */
  commits: CommitInfo[];
}

/**
 * `orch merge`: merges the attempt's branch into `into` in the main repository. Merges into one
 * target branch of one repository are serialised by a lock file in the repository's git common
 * directory (taken over from a holder that died), held from the check whether the attempt is
 * already merged until the merge is recorded: so each attempt is merged, and `attempt_merged`
 * logged, once. A conflict or failure leaves `into` exactly as it was and is reported with the
 * conflicting files (ConflictError, exit 4).
 *
 * @throws NotFoundError (3); ValidationError (2) when no target can be chosen; ConflictError (4)
 *   for a live attempt, a conflict, a target checked out with uncommitted changes, or a lock held
 *   by a live process for longer than `LOCK_WAIT_MS`.
 */
export async function mergeAttempt(orch: Orch, input: MergeInput): Promise<MergeResult> {
  const a = await codeAttempt(orch, input);
  if (LIVE_ATTEMPT_STATES.includes(a.state)) {
    throw new ConflictError(`attempt ${a.number} of task ${a.task_id} is still ${a.state}; wait for its result (or cancel it) before merging`, {
      attempt: a.id,
      state: a.state,
    });
  }
  const repo = a.repo_path as string;
  const branch = a.branch as string;
  let into = input.into;
  if (into === undefined) {
    if (a.base_ref !== null && a.base_ref !== 'HEAD' && (await branchExists(repo, a.base_ref))) into = a.base_ref;
    else throw new ValidationError(`attempt ${a.id} was based on ${a.base_ref ?? 'a commit'}, not a branch; give --into BRANCH`, [{ path: '--into', message: 'is required' }]);
  }
  checkRef(into, '--into');
  const strategy = input.strategy ?? 'merge';
  const lock = path.join(await gitCommonDir(repo), 'orch', `merge-${nameHash(into)}.lock`);
  const release = await holdLock(lock, `the merge lock of ${into} in ${repo}`);
  try {
    failpoint('merge:locked');
    return await mergeLocked(orch, a.id, { repo, branch, into, strategy });
  } finally {
    release();
  }
}

/** A file-name-safe hash of a branch name (FNV-1a, twice): two names sharing one only share a lock. */
function nameHash(name: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (const byte of Buffer.from(name, 'utf8')) {
    a = Math.imul(a ^ byte, 0x01000193) >>> 0;
    b = Math.imul(b ^ byte, 0x811c9dc5) >>> 0;
  }
  return `${a.toString(16).padStart(8, '0')}${b.toString(16).padStart(8, '0')}`;
}

async function mergeLocked(orch: Orch, attemptId: string, m: { repo: string; branch: string; into: string; strategy: 'merge' | 'squash' }): Promise<MergeResult> {
  const { repo, branch, into, strategy } = m;
  // Read again under the lock: another merge of this attempt may have finished while this one waited.
  const a = await readTransaction<OrchDatabase, AttemptRow>(orch.store, async (trx) => (await getAttempt(trx, attemptId)) as AttemptRow);
  const head = await branchHead(repo, branch);
  if (
    a.merged_at !== null &&
    a.merged_into === into &&
    a.merge_commit !== null &&
    a.merged_head === (head ?? null) &&
    (await isAncestor(repo, a.merge_commit, `refs/heads/${into}`))
  ) {
    return { attempt: attemptView(a), into, strategy, merged: false, up_to_date: true, already_merged: true, commit: a.merge_commit, commits: [] };
  }
  const before = await branchHead(repo, into);
  const commits = before && head ? await commitsBetween(repo, before, head) : [];
  const mergeRoot = a.workspace_root ?? path.join(repo, '.orch', 'worktrees');
  const outcome = await mergeBranch(repo, {
    branch,
    into,
    strategy,
    message: `Merge ${a.run_id}/${a.task_id} attempt ${a.number} (${branch})`,
    tmpDir: path.join(mergeRoot, '.merge', `${a.id}-${process.pid}`),
  });
  removeEmptyParents(path.join(mergeRoot, '.merge'), mergeRoot);
  if (!outcome.merged && !outcome.up_to_date) {
    const files = outcome.conflicts;
    throw new ConflictError(
      files.length > 0
        ? `merging ${branch} into ${into} conflicts in ${files.join(', ')}; ${into} is unchanged`
        : `git could not merge ${branch} into ${into} (${(outcome.error ?? '').split('\n')[0] ?? ''}); ${into} is unchanged`,
      { into, branch, conflicts: files, ...(outcome.error !== undefined ? { git_message: outcome.error } : {}) },
    );
  }
  const now = orch.clock.now();
  const updated = await writeTransaction<OrchDatabase, AttemptRow>(orch.store, async (trx) => {
    await reconcileIn(trx, orch, a.run_id);
    const row = await updateAttempt(trx, a.id, {
      merged_at: now,
      merged_into: into,
      merge_commit: outcome.commit ?? null,
      merged_head: head ?? null,
      updated_at: now,
    });
    if (outcome.merged) {
      await emitIn(trx, orch, {
        runId: a.run_id,
        taskId: a.task_id,
        attemptId: a.id,
        type: 'attempt_merged',
        data: { into, strategy, commit: outcome.commit, branch, commits: commits.length },
      });
    }
    return row;
  });
  return {
    attempt: attemptView(updated),
    into,
    strategy,
    merged: outcome.merged,
    up_to_date: outcome.up_to_date,
    already_merged: false,
    commit: outcome.commit ?? null,
    commits: outcome.merged ? commits : [],
  };
}

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

export interface CleanupResult {
  run: string;
  dry_run: boolean;
  attempts: CleanupEntry[];
  orphans: OrphanEntry[];
  /** How many attempts git refused to clean completely (see their `error`). */
  errors: number;
}

/** Orphans younger than this may belong to a dispatch that is recording its attempt right now. */
export const ORPHAN_MIN_AGE_MS = 60_000;

/** What one cleanup knows and decides across attempts. */
interface CleanContext {
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
  if (a.execution_mode !== 'code' || a.repo_path === null || a.worktree_path === null || a.branch === null) {
    entry.note = 'analysis attempt: nothing on disk';
    return entry;
  }
  if (!fs.existsSync(a.repo_path)) {
    entry.note = `repository ${a.repo_path} is gone; nothing to do`;
    return entry;
  }
  const notes: string[] = [];
  try {
    await cleanCodeAttempt(a, a.repo_path, a.worktree_path, a.branch, entry, notes, ctx);
  } catch (err) {
    if (!(err instanceof GitFailure)) throw err;
    entry.error = err.gitMessage.split('\n')[0] ?? err.message;
    notes.push(`stopped: ${err.message}`);
  }
  entry.note = notes.join('; ');
  return entry;
}

async function cleanCodeAttempt(a: AttemptRow, repo: string, worktree: string, branch: string, entry: CleanupEntry, notes: string[], ctx: CleanContext): Promise<void> {
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
    if (entry.worktree_only_commits > 0) why.push(`${entry.worktree_only_commits} commit(s) on no branch that only its HEAD or HEAD reflog reach (a detached HEAD, or work reset away)`);
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
    if (unmerged.length > 0) say(`deleted branch, dropping ${unmerged.length} unmerged commit(s)`, `would delete branch, dropping ${unmerged.length} unmerged commit(s)`);
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
