// Per-branch values in the repository's config (`branch.<name>.<variable>`), written with a retry
// while another git process holds the config file's lock. `git branch -D` drops a branch's section.
import { branchExists } from './refs.ts';
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

/** Runs a `git config` write, retrying while another git process holds the config file's lock. */
async function configWrite(root: string, args: string[]): Promise<void> {
  for (let round = 0; ; round += 1) {
    try {
      await run(root, ['config', ...args]);
      return;
    } catch (err) {
      if (!(err instanceof GitFailure) || !/could not lock config file/i.test(err.gitMessage) || round >= 100) throw err;
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
    }
  }
}
