// A code-mode dispatch makes its worktree between two transactions, so for a moment a worktree
// exists that no attempt owns. Two things can find it then: a dispatch of the same task by another
// leader (which would take it over as a crash's leftover) and cleanup or doctor (which would
// remove it as an orphan). A marker file beside the worktree, `<dir>.dispatch`, holding the
// dispatching process's pid and host, tells them apart: while that process lives the worktree is
// being made; once it is dead, whatever it left is a leftover. The same kind of file is the lock
// that serialises git work on one target (`holdLock`: merges into one branch of one repository).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConflictError } from '@orch/store';

export interface DispatchMarker {
  path: string;
  /** NaN when the file could not be parsed (e.g. its writer was killed before writing it). */
  pid: number;
  host: string;
  /** Nonce: tells one marker from the next one written at the same path. */
  id: string;
  mtimeMs: number;
}

/** Tells one marker (or one set-aside copy) from another; not a secret, so no crypto module at start-up. */
function nonce(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 2 ** 32).toString(36)}`;
}

/** An unreadable marker younger than this may still be being written. */
const UNREADABLE_GRACE_MS = 2000;

export function markerPath(worktreeDir: string): string {
  return `${worktreeDir}.dispatch`;
}

/** The marker at `file`, if there is one. */
export function readMarker(file: string): DispatchMarker | undefined {
  try {
    const mtimeMs = fs.statSync(file).mtimeMs;
    const [pid, host, id] = fs.readFileSync(file, 'utf8').trim().split(' ');
    const n = Number(pid);
    return { path: file, pid: Number.isSafeInteger(n) && n > 0 ? n : Number.NaN, host: host ?? '', id: id ?? '', mtimeMs };
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote the marker is still running (on another host: assumed so). */
export function markerAlive(m: DispatchMarker): boolean {
  if (Number.isNaN(m.pid) || m.host === '') return Date.now() - m.mtimeMs < UNREADABLE_GRACE_MS;
  if (m.host !== os.hostname()) return true;
  try {
    process.kill(m.pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/**
 * Removes `m`'s file only if it still holds that same dead marker: it is first renamed aside (one
 * process wins the rename), then checked; a different marker found there is put back.
 * Returns whether the dead marker is gone.
 *
 * Residual window: while a wrongly moved live marker is aside, a third dispatch of the same
 * attempt could create a marker of its own; putting the first one back then fails and two
 * dispatches both hold one. The second transaction still records only one attempt, but the loser's
 * cleanup may remove the shared worktree (doctor then reports the live attempt's worktree missing).
 */
export function removeDeadMarker(m: DispatchMarker): boolean {
  const aside = `${m.path}.${process.pid}.${nonce()}`;
  try {
    fs.renameSync(m.path, aside);
  } catch {
    return !fs.existsSync(m.path);
  }
  const taken = readMarker(aside);
  const samePid = taken !== undefined && (taken.pid === m.pid || (Number.isNaN(taken.pid) && Number.isNaN(m.pid)));
  if (taken && !(samePid && taken.id === m.id)) {
    // A live dispatch replaced it meanwhile: give its marker back.
    try {
      fs.linkSync(aside, m.path);
    } catch {
      // Someone else holds the path now; theirs stands.
    }
    fs.rmSync(aside, { force: true });
    return false;
  }
  fs.rmSync(aside, { force: true });
  return true;
}

/**
 * Marks the worktree at `dir` as being made by this process (its parent directory must exist).
 *
 * @throws ConflictError (4) when a live process is making it right now, or the marker cannot be written.
 */
export function takeMarker(dir: string): string {
  const file = markerPath(dir);
  for (let round = 0; round < 3; round += 1) {
    try {
      fs.writeFileSync(file, `${process.pid} ${os.hostname()} ${nonce()}\n`, { flag: 'wx', mode: 0o600 });
      return file;
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT' && round < 2) {
        // A cleanup removed the (then empty) task folder just now: make it again.
        fs.mkdirSync(path.dirname(file), { recursive: true });
        continue;
      }
      if ((err as { code?: string }).code !== 'EEXIST') {
        throw new ConflictError(`cannot write ${file}: ${(err as Error).message}`, { worktree_path: dir, marker: file });
      }
      const m = readMarker(file);
      if (m && markerAlive(m)) {
        throw new ConflictError(
          `another dispatch (pid ${m.pid} on ${m.host}) is making the worktree ${dir} right now; run the command again once it is done ` +
            `(if no such dispatch is running, remove ${file})`,
          { worktree_path: dir, marker: file, pid: m.pid },
        );
      }
      // Left by a dispatch that died: take its place (unless another process just did).
      if (m) removeDeadMarker(m);
    }
  }
  throw new ConflictError(`another dispatch is taking over ${dir} right now; run the command again`, { worktree_path: dir, marker: file });
}

/** Removes this process's marker; never throws (the marker only matters while its process lives). */
export function dropMarker(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // A marker left behind names a dead process: it is taken over or reported by doctor.
  }
}

/** How long `holdLock` waits for a live holder before giving up. */
export const LOCK_WAIT_MS = 120_000;

/**
 * Takes the lock file `file` (pid, host and a nonce, like a dispatch marker; its directory is
 * made if missing), waiting while a live process holds it and taking it over from a dead one, so a
 * holder killed outright never blocks the next one. Returns the function that lets it go. The
 * wait is measured on the monotonic clock.
 *
 * @throws ConflictError (4) when a live holder keeps it past `waitMs`, or the file cannot be written.
 */
export async function holdLock(file: string, what: string, waitMs = LOCK_WAIT_MS): Promise<() => void> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const deadline = performance.now() + waitMs;
  for (;;) {
    try {
      fs.writeFileSync(file, `${process.pid} ${os.hostname()} ${nonce()}\n`, { flag: 'wx', mode: 0o600 });
      return () => dropMarker(file);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') {
        throw new ConflictError(`cannot write the lock ${file}: ${(err as Error).message}`, { lock: file });
      }
    }
    const m = readMarker(file);
    if (m && !markerAlive(m)) {
      removeDeadMarker(m);
      continue;
    }
    if (performance.now() >= deadline) {
      throw new ConflictError(
        `${what} is held by another process${m ? ` (pid ${m.pid} on ${m.host})` : ''}; try again once it is done (if no such process is running, remove ${file})`,
        { lock: file, ...(m ? { pid: m.pid } : {}) },
      );
    }
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
  }
}
