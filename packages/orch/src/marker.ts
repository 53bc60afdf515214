// A code-mode dispatch makes its worktree between two transactions, so for a moment a worktree
// exists that no attempt owns. Two things can find it then: a dispatch of the same task by another
// leader (which would take it over as a crash's leftover) and cleanup or doctor (which would
// remove it as an orphan). A marker file beside the worktree, `<dir>.dispatch`, holding the
// dispatching process's pid and host, tells them apart: while that process lives the worktree is
// being made; once it is dead, whatever it left is a leftover.
import fs from 'node:fs';
import os from 'node:os';
import { ConflictError } from '@orch/store';

export interface DispatchMarker {
  path: string;
  pid: number;
  host: string;
}

export function markerPath(worktreeDir: string): string {
  return `${worktreeDir}.dispatch`;
}

/** The marker at `file`, if there is one that can be read. */
export function readMarker(file: string): DispatchMarker | undefined {
  try {
    const [pid, host] = fs.readFileSync(file, 'utf8').trim().split(' ');
    return { path: file, pid: Number(pid), host: host ?? '' };
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote the marker is still running (on another host: assumed so). */
export function markerAlive(m: DispatchMarker): boolean {
  if (m.host !== os.hostname()) return true;
  if (!Number.isSafeInteger(m.pid) || m.pid <= 0) return false;
  try {
    process.kill(m.pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/**
 * Marks the worktree at `dir` as being made by this process (its parent directory must exist).
 *
 * @throws ConflictError (4) when a live process is making it right now.
 */
export function takeMarker(dir: string): string {
  const file = markerPath(dir);
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      fs.writeFileSync(file, `${process.pid} ${os.hostname()}\n`, { flag: 'wx', mode: 0o600 });
      return file;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
      const m = readMarker(file);
      if (m && markerAlive(m)) {
        throw new ConflictError(
          `another dispatch (pid ${m.pid} on ${m.host}) is making the worktree ${dir} right now; run the command again once it is done ` +
            `(if no such dispatch is running, remove ${file})`,
          { worktree_path: dir, marker: file, pid: m.pid },
        );
      }
      // Left by a dispatch that died: take its place.
      fs.rmSync(file, { force: true });
    }
  }
  throw new ConflictError(`could not mark ${dir} as being made; run the command again`, { worktree_path: dir });
}

export function dropMarker(file: string): void {
  fs.rmSync(file, { force: true });
}
