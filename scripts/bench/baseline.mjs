// `npm run bench -- --baseline=REF`: the CLIs as they were at a git ref, built beside the current
// ones so both are timed in the same run. The ref's tree is unpacked into a temporary directory
// (`git archive`, so the repository and its worktrees are left alone), its node_modules is this
// checkout's (linked entry by entry, except the workspace packages, which point at the ref's own
// sources), and its own scripts/build.mjs builds it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * @typedef {object} BaselineBuild
 * @property {string} ref The ref as given.
 * @property {string} commit Its commit, abbreviated.
 * @property {string} dir The temporary checkout (remove it with `fs.rmSync` when done).
 * @property {string} inbox The ref's built inbox executable.
 * @property {string} orch The ref's built orch executable.
 */

/**
 * Unpacks `ref` of the repository at `root` into a temporary directory and builds its CLIs there.
 *
 * @param {string} root The repository (this checkout).
 * @param {string} ref A commit, branch or tag.
 * @returns {BaselineBuild}
 * @throws Error when the ref is unknown or its build fails.
 */
export function buildBaseline(root, ref) {
  const rev = spawnSync('git', ['rev-parse', '--short', `${ref}^{commit}`], { cwd: root, encoding: 'utf8' });
  if (rev.status !== 0) throw new Error(`bench: --baseline=${ref} is not a commit: ${rev.stderr.trim()}`);
  const commit = rev.stdout.trim();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `orch-baseline-${commit}-`));
  try {
    const archive = spawnSync('git', ['archive', '--format=tar', commit], { cwd: root, maxBuffer: 1 << 30 });
    if (archive.status !== 0) throw new Error(`bench: git archive ${commit} failed: ${archive.stderr}`);
    const untar = spawnSync('tar', ['-x', '-C', dir], { input: archive.stdout });
    if (untar.status !== 0) throw new Error(`bench: unpacking ${commit} failed: ${untar.stderr}`);
    linkNodeModules(root, dir);
    const built = spawnSync(process.execPath, [path.join(dir, 'scripts/build.mjs')], { cwd: dir, encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`bench: building ${commit} failed: ${built.stderr}`);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { ref, commit, dir, inbox: path.join(dir, 'packages/inbox/dist/inbox.cjs'), orch: path.join(dir, 'packages/orch/dist/orch.cjs') };
}

/**
 * `dir`/node_modules: a link to each entry of `root`/node_modules, except the workspace scope
 * `@orch`, whose packages link to `dir`'s own (a link to root's scope would build today's code).
 *
 * @param {string} root
 * @param {string} dir
 */
function linkNodeModules(root, dir) {
  const from = path.join(root, 'node_modules');
  const to = path.join(dir, 'node_modules');
  fs.mkdirSync(to);
  for (const entry of fs.readdirSync(from)) {
    if (entry !== '@orch') fs.symlinkSync(path.join(from, entry), path.join(to, entry));
  }
  fs.mkdirSync(path.join(to, '@orch'));
  for (const pkg of fs.readdirSync(path.join(dir, 'packages'))) {
    fs.symlinkSync(path.join(dir, 'packages', pkg), path.join(to, '@orch', pkg));
  }
}
