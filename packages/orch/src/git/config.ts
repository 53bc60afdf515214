// Per-branch values in the repository's config (`branch.<name>.<variable>`), written with a retry
// while another git process holds the config file's lock. `git branch -D` drops a branch's section.
import fs from 'node:fs';
import path from 'node:path';
import { branchExists } from './refs.ts';
import { gitCommonDir } from './repo.ts';
import { GitFailure, probe, run } from './run.ts';

/**
 * The value of `branch.<name>.<variable>` for every branch that has one (branch name -> value),
 * read from the repository's config in one call. `variable` is matched as git stores it: lower case.
 */
export async function branchConfigValues(root: string, variable: string): Promise<Map<string, string>> {
  const out = (await probe(root, ['config', '-z', '--get-regexp', `^branch\\..*\\.${variable}$`])) ?? '';
  const values = new Map<string, string>();
  for (const entry of out.split('\0')) {
    const nl = entry.indexOf('\n');
    if (nl < 0) continue;
    const key = entry.slice(0, nl);
    if (!key.startsWith('branch.') || !key.endsWith(`.${variable}`)) continue;
    values.set(key.slice('branch.'.length, -`.${variable}`.length), entry.slice(nl + 1));
  }
  return values;
}

/** Sets `branch.<branch>.<variable>` (the branch need not exist yet). */
export async function setBranchConfig(root: string, branch: string, variable: string, value: string): Promise<void> {
  await configWrite(root, [`branch.${branch}.${variable}`, value]);
}

/** Drops the config of a branch that does not exist (e.g. a value set for a branch whose making failed). */
export async function dropBranchConfig(root: string, branch: string): Promise<void> {
  if (await branchExists(root, branch)) return;
  await configWrite(root, ['--remove-section', `branch.${branch}`]).catch(() => undefined);
}

/** How long one `config.lock` may stay unchanged before it is taken for a killed git's (see configWrite). */
export const DEAD_CONFIG_LOCK_MS = 3000;

/**
 * Runs a `git config` write, retrying while another git process holds the config file's lock.
 * git never removes the lock of a process killed while writing (a leader's dispatch killed with
 * its process group, say), and every later config write would then fail until someone deleted
 * it by hand. A write takes milliseconds and each one makes a new lock file, so a lock that is
 * the very same file (inode and mtime) after DEAD_CONFIG_LOCK_MS of retrying is a dead process's
 * and is removed; a live writer's lock never stays that long. Against live writers that keep
 * taking the lock, a write gives up after 400 tries (about 12 s).
 */
async function configWrite(root: string, args: string[]): Promise<void> {
  let seen: { ino: number; mtimeMs: number; since: number } | undefined;
  let lock: string | undefined;
  for (let round = 0; ; round += 1) {
    try {
      await run(root, ['config', ...args]);
      return;
    } catch (err) {
      if (!(err instanceof GitFailure) || !/could not lock config file/i.test(err.gitMessage) || round >= 400) throw err;
      lock ??= path.join(await gitCommonDir(root), 'config.lock');
      const st = fs.statSync(lock, { throwIfNoEntry: false });
      if (st === undefined || seen === undefined || st.ino !== seen.ino || st.mtimeMs !== seen.mtimeMs) {
        seen = st === undefined ? undefined : { ino: st.ino, mtimeMs: st.mtimeMs, since: performance.now() };
      } else if (performance.now() - seen.since >= DEAD_CONFIG_LOCK_MS) {
        // Looked at once more just before: the window in which another process could swap it is tiny.
        const now = fs.statSync(lock, { throwIfNoEntry: false });
        if (now !== undefined && now.ino === seen.ino && now.mtimeMs === seen.mtimeMs) fs.rmSync(lock, { force: true });
        seen = undefined;
        continue;
      }
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
    }
  }
}
