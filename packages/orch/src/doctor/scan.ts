// Reading the folders orch makes under `<workspace root>/<run>/`, and the facts about them that
// several checks share.
import { readTransaction } from '@orch/store';
import fs from 'node:fs';
import path from 'node:path';
import { markerAlive, markerPath, readMarker } from '../marker.ts';
import type { Orch } from '../orch.ts';
import { listAttempts, type AttemptRow } from '../queries/attempts.ts';
import type { OrchDatabase } from '../schema.ts';

/** A directory's entries; none when it cannot be read (gone meanwhile, say). */
export function entries(d: string): fs.Dirent[] {
  try {
    return fs.readdirSync(d, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** `<run dir>/<task>/<n>` directories that exist. */
export function attemptDirs(runDir: string): string[] {
  const dirs = (d: string) =>
    entries(d)
      .filter((e) => e.isDirectory())
      .map((e) => path.join(d, e.name));
  return dirs(runDir).flatMap(dirs);
}

/** `<run dir>/<task>/<n>.dispatch` marker files. */
export function markerFiles(runDir: string): string[] {
  return entries(runDir)
    .filter((e) => e.isDirectory())
    .flatMap((t) =>
      entries(path.join(runDir, t.name))
        .filter((e) => e.isFile() && e.name.endsWith('.dispatch'))
        .map((e) => path.join(runDir, t.name, e.name)),
    );
}

/** A live dispatch is making the worktree at `dir` right now: not an orphan. */
export function beingMade(dir: string): boolean {
  const m = readMarker(markerPath(dir));
  return m !== undefined && markerAlive(m);
}

/** Read fresh: whether an attempt of the run records `branch` (a dispatch may have just done so). */
export async function branchOwned(orch: Orch, runId: string, branch: string): Promise<boolean> {
  const attempts = await readTransaction<OrchDatabase, AttemptRow[]>(orch.store, (trx) => listAttempts(trx, { runId }));
  return attempts.some((a) => a.branch === branch);
}
