// Writes what the Claude Code plugin in plugin/ takes from the rest of the repository, so it
// never drifts from it: the skills (skills/*/SKILL.md and the orch references, copied as they are)
// and, for each executable a skill drives, a launcher at the same place (plugin/skills/*/assets/)
// that runs the command from the orch-inbox npm package at this package's version. It also sets
// the version in plugin/.claude-plugin/plugin.json and .claude-plugin/marketplace.json to the
// package's. See docs/install.md ("Why the plugin runs the npm package").
//
//   node scripts/plugin.mjs           write them (`npm run plugin`; `npm version` runs it too)
//   node scripts/plugin.mjs --check   write nothing; list what differs and exit 1 if anything does
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

/** The plugin's skill files copied from skills/ (relative to skills/ and plugin/skills/). */
const COPIED = ['orch/SKILL.md', 'orch/references/leader-dispatch-and-launch-checklist.md', 'orch/references/worker-brief-template.md', 'inbox/SKILL.md'];
/** Launchers: where (relative to plugin/skills/) and which command of the package each runs. */
const LAUNCHERS = [
  ['orch/assets/orch', 'orch'],
  ['orch/assets/orch-worker-brief', 'orch-worker-brief'],
  ['inbox/assets/inbox', 'inbox'],
];

/**
 * A launcher: a POSIX shell script that replaces itself (exec) with the package's command, so
 * arguments, stdin/stdout (an MCP server's stdio), signals and the exit code pass through as they
 * are. It runs, in this order: the commands in ORCH_INBOX_BIN_DIR; the package it sits in (the
 * installed npm package ships plugin/skills/, and a built clone has its dist/ there too); the
 * package at this version through npx.
 *
 * @param {string} command
 * @param {string} dist the command's executable, relative to the package root
 */
function launcher(command, dist) {
  const spec = `${pkg.name}@${pkg.version}`;
  return `#!/bin/sh
# Runs \`${command}\` from the ${pkg.name} npm package, version ${pkg.version} (this plugin's version):
#   ORCH_INBOX_BIN_DIR=DIR  runs DIR/${command}: the installed package's commands, for example
#                           "$(npm prefix -g)/bin" after \`npm install -g ${spec}\`;
#   else, inside the package (or a built clone): its own ${dist};
#   else npx --package=${spec} (installed into npx's cache on the first call);
#                           ORCH_INBOX_PACKAGE=SPEC has npx run another spec (a version, a tarball).
# Written by scripts/plugin.mjs from package.json: edit that script, not this file.
if [ -n "\${ORCH_INBOX_BIN_DIR:-}" ]; then
  exec "$ORCH_INBOX_BIN_DIR/${command}" "$@"
fi
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd -P)
if [ -f "$here/../../../../${dist}.bundle" ]; then
  exec "$here/../../../../${dist}" "$@"
fi
exec npx --yes --loglevel=error --package="\${ORCH_INBOX_PACKAGE:-${spec}}" -- ${command} "$@"
`;
}

/** @type {[file: string, text: string, mode?: number][]} */
const wanted = [];
for (const rel of COPIED) wanted.push([path.join('plugin/skills', rel), fs.readFileSync(path.join(root, 'skills', rel), 'utf8')]);
for (const [rel, command] of LAUNCHERS) wanted.push([path.join('plugin/skills', rel), launcher(command, pkg.bin[command]), 0o755]);
// The manifests are written by hand; only their "version" fields follow package.json (changed in
// place, so their formatting stays as it is).
for (const file of ['plugin/.claude-plugin/plugin.json', '.claude-plugin/marketplace.json']) {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  wanted.push([file, text.replace(/("version"\s*:\s*")[^"]*(")/g, `$1${pkg.version}$2`)]);
}

const differs = [];
for (const [file, text, mode] of wanted) {
  const abs = path.join(root, file);
  let now = null;
  try {
    now = fs.readFileSync(abs, 'utf8');
  } catch {}
  const badMode = mode !== undefined && now !== null && (fs.statSync(abs).mode & 0o777) !== mode;
  if (now === text && !badMode) continue;
  differs.push(file);
  if (check) continue;
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, text);
  if (mode !== undefined) fs.chmodSync(abs, mode);
}
// Nothing else may sit in the plugin's skills: a file removed from skills/ goes from the plugin too.
const keep = new Set(wanted.map(([f]) => path.join(root, f)));
const skillsDir = path.join(root, 'plugin/skills');
for (const skill of fs.existsSync(skillsDir) ? fs.readdirSync(skillsDir, { recursive: true, withFileTypes: true }) : []) {
  const abs = path.join(skill.parentPath, skill.name);
  if (skill.isFile() && !keep.has(abs)) {
    differs.push(path.relative(root, abs));
    if (!check) fs.rmSync(abs);
  }
}
if (check && differs.length > 0) {
  console.error(`plugin: out of date (run \`npm run plugin\`): ${differs.join(', ')}`);
  process.exit(1);
}
console.log(differs.length === 0 ? 'plugin: up to date' : `plugin: wrote ${differs.join(', ')}`);
