// What orch's conventions leave under `<root>/<run>/` once worktrees are gone: report files
// (`<n>.report.md`) beside no worktree, and empty task (or run) folders.
import fs from 'node:fs';
import path from 'node:path';
import { removeEmptyParents } from '../dirs.ts';
import { reportPath } from '../ops/cleanup.ts';
import { ORPHAN_MIN_AGE_MS } from '../ops/orphans.ts';
import { repairedFinding, type Finding } from './finding.ts';
import type { WorkspaceScan } from './orphans.ts';
import { entries } from './scan.ts';

/** Report files beside no worktree; the repair removes one whose attempt's worktree cleanup recorded as removed (what cleanup itself would remove). */
export async function* leftoverReports(w: WorkspaceScan, root: string): AsyncGenerator<Finding> {
  const runId = w.runId;
  const runDir = path.join(root, runId);
  const byWorktree = new Map(w.attempts.flatMap((a) => (a.worktree_path ? [[a.worktree_path, a] as const] : [])));
  for (const t of entries(runDir).filter((e) => e.isDirectory())) {
    const taskDir = path.join(runDir, t.name);
    for (const f of entries(taskDir).filter((e) => !e.isDirectory() && e.name.endsWith('.report.md'))) {
      const file = path.join(taskDir, f.name);
      const worktree = file.slice(0, -'.report.md'.length);
      if (reportPath(worktree) !== file || fs.existsSync(worktree)) continue;
      const a = byWorktree.get(worktree);
      const cleaned = a !== undefined && a.worktree_removed_at !== null;
      let repaired = false;
      if (w.repair && cleaned) {
        fs.rmSync(file, { force: true });
        removeEmptyParents(taskDir, root);
        repaired = true;
      }
      yield repairedFinding(
        runId,
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
}

/** Empty task (or run) folders; the repair removes those empty for at least a minute (a dispatch makes its folder just before its marker). */
export async function* emptyFolders(w: WorkspaceScan, root: string): AsyncGenerator<Finding> {
  const runDir = path.join(root, w.runId);
  // A task folder holding a live attempt's missing worktree is reported as that (worktree_missing).
  const holding = new Set(w.attempts.flatMap((a) => (a.worktree_path && a.worktree_removed_at === null ? [path.dirname(a.worktree_path)] : [])));
  for (const dir of [
    ...entries(runDir)
      .filter((e) => e.isDirectory())
      .map((e) => path.join(runDir, e.name)),
    runDir,
  ]) {
    if (!fs.existsSync(dir) || entries(dir).length > 0 || holding.has(dir)) continue;
    const old = w.orch.clock.now() - fs.statSync(dir).mtimeMs >= ORPHAN_MIN_AGE_MS;
    let repaired = false;
    if (w.repair && old) {
      removeEmptyParents(dir, root);
      repaired = !fs.existsSync(dir);
    }
    yield repairedFinding(
      w.runId,
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
}
