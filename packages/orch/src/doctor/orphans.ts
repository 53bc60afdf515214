// The checks of one run that look at git and the file system (outside any transaction): what lies
// under the run's workspace roots that no attempt owns. Each check makes its repair as it looks
// (with `repair`), since the next check must see what is left; a git failure part-way keeps what
// was found before it and is reported as git_failed.
import fs from 'node:fs';
import path from 'node:path';
import { branchOwners } from '../branch-owner.ts';
import { removeEmptyParents } from '../dirs.ts';
import { branchesUnder, deleteBranch, GitFailure, listWorktrees, unmergedCommits } from '../git.ts';
import { DEFAULT_WORKSPACE_ROOT } from '../ops/dispatch-worktree.ts';
import { clearDeadGitLocks } from '../leftovers.ts';
import { markerAlive, readMarker, removeDeadMarker } from '../marker.ts';
import type { Orch } from '../orch.ts';
import { databaseId, ownership } from '../owner.ts';
import type { AttemptRow } from '../queries/attempts.ts';
import { cleanOrphans, ownedPath, workspacePlaces } from '../ops/orphans.ts';
import { repairedFinding, type Finding } from './finding.ts';
import { emptyFolders, leftoverReports } from './leftover-files.ts';
import { attemptDirs, beingMade, branchOwned, entries, markerFiles } from './scan.ts';

/** What the checks of one run's workspaces share. */
export interface WorkspaceScan {
  orch: Orch;
  runId: string;
  attempts: AttemptRow[];
  repair: boolean;
  /** Workspace root (links resolved) -> the repository its worktrees belong to. */
  places: Map<string, string>;
  /** This database's id (its owner mark). */
  me: string;
  /** Branches some attempt of the run records. */
  owned: Set<string>;
  /** Repositories whose branches were already checked (several roots may share one). */
  branchesSeen: Set<string>;
}

/** One workspace root and what git says of its repository. */
export interface Place {
  root: string;
  repo: string;
  /** Paths of the repository's worktrees. */
  registered: Set<string>;
  /** Branches checked out in some worktree. */
  checkedOut: Set<string>;
}

/** Per workspace root, in report order. */
const PLACE_CHECKS: ((w: WorkspaceScan, p: Place) => AsyncGenerator<Finding>)[] = [orphanDirectories, staleMarkers, orphanBranches];
/** Per workspace root, once every root's orphans are dealt with. */
const LEFTOVER_CHECKS: ((w: WorkspaceScan, root: string) => AsyncGenerator<Finding>)[] = [leftoverReports, emptyFolders];

/** Orphaned worktrees, directories and branches of one run (git, outside any transaction). */
export async function checkWorkspaces(orch: Orch, runId: string, attempts: AttemptRow[], extraRepo: string | undefined, repair: boolean): Promise<Finding[]> {
  const places = new Map<string, string>();
  const real = (p: string) => (fs.existsSync(p) ? fs.realpathSync(p) : p);
  for (const [root, r] of workspacePlaces(attempts)) places.set(real(root), r);
  for (const r of new Set([...places.values(), ...(extraRepo ? [extraRepo] : [])])) {
    const root = real(path.resolve(r, DEFAULT_WORKSPACE_ROOT));
    if (!places.has(root)) places.set(root, r);
  }
  const out: Finding[] = [];
  try {
    const me = await databaseId(orch);
    const owned = new Set(attempts.flatMap((a) => (a.branch ? [a.branch] : [])));
    const w: WorkspaceScan = { orch, runId, attempts, repair, places, me, owned, branchesSeen: new Set() };
    for await (const f of orphanWorktrees(w)) out.push(f);
    for (const [root, r] of places) {
      const worktrees = await listWorktrees(r);
      const place: Place = {
        root,
        repo: r,
        registered: new Set(worktrees.map((x) => x.path)),
        checkedOut: new Set(worktrees.flatMap((x) => (x.branch ? [x.branch] : []))),
      };
      for (const check of PLACE_CHECKS) for await (const f of check(w, place)) out.push(f);
    }
    for (const [root] of places) for (const check of LEFTOVER_CHECKS) for await (const f of check(w, root)) out.push(f);
  } catch (err) {
    if (!(err instanceof GitFailure)) throw err;
    out.push(
      repairedFinding(runId, {
        kind: 'git_failed',
        severity: 'warning',
        message: `could not look for orphaned worktrees of run ${runId}: ${err.message}`,
        repair: null,
      }),
    );
  }
  return out;
}

/** Worktrees no attempt owns; the repair removes those at least a minute old that hold no work (as `cleanup --all-completed` does). */
async function* orphanWorktrees(w: WorkspaceScan): AsyncGenerator<Finding> {
  for (const o of await cleanOrphans(w.orch, w.runId, w.places, { dryRun: !w.repair, force: false })) {
    const why = o.would_remove ? '' : ` (${o.note})`;
    yield repairedFinding(
      w.runId,
      {
        kind: 'orphan_worktree',
        severity: 'warning',
        path: o.path,
        ...(o.branch ? { branch: o.branch } : {}),
        message: `worktree ${o.path}${o.branch ? ` (branch ${o.branch})` : ''} belongs to no attempt, probably left by an interrupted dispatch${why}`,
        repair: o.would_remove ? 'remove the worktree and its branch (they hold no work)' : null,
      },
      w.repair && o.removed,
    );
  }
}

/** `<root>/<run>/<task>/<n>` directories that are neither a worktree nor any attempt's; the repair removes empty ones. */
async function* orphanDirectories(w: WorkspaceScan, p: Place): AsyncGenerator<Finding> {
  for (const dir of attemptDirs(path.join(p.root, w.runId))) {
    if (p.registered.has(dir) || beingMade(dir) || (await ownedPath(w.orch, dir))) continue;
    const empty = entries(dir).length === 0;
    let repaired = false;
    if (w.repair && empty) {
      try {
        fs.rmdirSync(dir);
        removeEmptyParents(path.dirname(dir), p.root);
        repaired = true;
      } catch {
        // Gone already, or no longer empty: left as it is.
      }
    }
    yield repairedFinding(
      w.runId,
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
}

/** `<worktree>.dispatch` markers naming a dead process; the repair removes them. */
async function* staleMarkers(w: WorkspaceScan, p: Place): AsyncGenerator<Finding> {
  for (const file of markerFiles(path.join(p.root, w.runId))) {
    const m = readMarker(file);
    if (!m || markerAlive(m)) continue;
    const dir = file.slice(0, -'.dispatch'.length);
    // A worktree no attempt owns is reported above, and removing it removes its marker.
    if (p.registered.has(dir) && !(await ownedPath(w.orch, dir))) continue;
    const repaired = w.repair && removeDeadMarker(m);
    if (repaired) removeEmptyParents(path.dirname(file), p.root);
    yield repairedFinding(
      w.runId,
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
}

/**
 * Branches `orch/<run>/...` no attempt owns, once per repository; another database's are left out.
 * The repair deletes this database's whose commits are all on other branches.
 */
async function* orphanBranches(w: WorkspaceScan, p: Place): AsyncGenerator<Finding> {
  const r = p.repo;
  if (w.branchesSeen.has(r)) return;
  w.branchesSeen.add(r);
  const owners = await branchOwners(r);
  for (const branch of await branchesUnder(r, `orch/${w.runId}`)) {
    if (w.owned.has(branch) || p.checkedOut.has(branch)) continue;
    const whose = ownership(owners, branch, w.me);
    // Another database's branch (same run id, same repository) is not this run's orphan.
    if (whose.kind === 'foreign') continue;
    // `worktree add -b` makes the branch before the worktree: a live dispatch may be at that point.
    const rel = branch.slice('orch/'.length).split('/');
    if ([...w.places].some(([root2, r2]) => r2 === r && beingMade(path.join(root2, ...rel)))) continue;
    // The branch of a worktree at its place whose HEAD was detached goes (or stays) with that worktree.
    if ([...w.places].some(([root2, r2]) => r2 === r && p.registered.has(path.join(root2, ...rel)))) continue;
    const unmerged = await unmergedCommits(r, branch);
    const removable = unmerged.length === 0 && whose.kind === 'mine';
    let repaired = false;
    if (w.repair && removable && !(await branchOwned(w.orch, w.runId, branch))) {
      await clearDeadGitLocks(r, branch);
      await deleteBranch(r, branch);
      repaired = true;
    }
    yield repairedFinding(
      w.runId,
      {
        kind: 'orphan_branch',
        severity: 'warning',
        branch,
        path: r,
        message:
          `branch ${branch} in ${r} belongs to no attempt` +
          (unmerged.length > 0 ? ` and has ${unmerged.length} commit(s) on no other branch: look at them, then \`git branch -D ${branch}\`` : '') +
          (whose.kind === 'unmarked'
            ? "; it carries no orch owner mark (made before orch recorded owners, or by hand), so it may be another database's: left alone"
            : ''),
        repair: removable ? 'delete the branch (its commits are on other branches)' : null,
      },
      repaired,
    );
  }
}
