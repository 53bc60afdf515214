// Project rules no general linter knows: SQL stays in query modules (never in command modules or
// CLI wiring), no focused tests, every command module is reachable from its CLI, file names are
// kebab-case, no suppression comments for linters this project does not run (Biome is the one),
// and source modules and scripts stay small. Biome (`npx biome lint`) runs the general rules;
// `npm run lint` runs both.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** @type {string[]} */
const problems = [];
/** @type {string[]} */
const notes = [];
/** Lines a module under packages/<pkg>/src (tests excluded) or a script (an .mjs file under scripts/) may have. */
const MAX_MODULE_LINES = 400;
/** An oversized module fails the run (false: it is only reported, for a move still under way). */
const OVERSIZED_FAILS = true;

/**
 * Every file under `dir` with one of the given extensions, skipping node_modules and dist.
 * @param {string} dir
 * @param {string[]} exts
 * @returns {string[]}
 */
function walk(dir, exts = ['.ts']) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'dist' ? [] : walk(p, exts);
    return exts.some((x) => p.endsWith(x)) ? [p] : [];
  });
}

const files = [...walk(path.join(root, 'packages'), ['.ts', '.tsx']), ...walk(path.join(root, 'test'), ['.ts', '.tsx'])];
const scripts = walk(path.join(root, 'scripts'), ['.ts', '.mjs']);
const sqlish = /\b(selectFrom|insertInto|updateTable|deleteFrom)\(|\bsql`/;
// The brackets keep this line from matching itself.
const foreignSuppression = /\b(eslint[-]disable|eslint[-]enable|prettier[-]ignore|tslint[:]disable|jshint[ ]ignore)/;
for (const file of [...files, ...scripts]) {
  const rel = path.relative(root, file);
  const text = fs.readFileSync(file, 'utf8');
  if (/\/src\/(commands\/|cli\.ts|bin\.ts)/.test(rel) && sqlish.test(text)) problems.push(`${rel}: SQL belongs in a query module, not in CLI code`);
  if (/\b(it|test|describe)\.only\(/.test(text)) problems.push(`${rel}: focused test (.only) hides the rest of the suite`);
  const suppression = foreignSuppression.exec(text);
  if (suppression) problems.push(`${rel}: '${suppression[1]}' comment for a linter this project does not run (use biome-ignore with a reason)`);
  const base = path.basename(rel);
  if (!/^[a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9]+)+$/.test(base)) problems.push(`${rel}: file names are kebab-case`);
  if ((/^packages\/[^/]+\/src\//.test(rel) && !rel.endsWith('.test.ts')) || /^scripts\/.*\.mjs$/.test(rel)) {
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > MAX_MODULE_LINES)
      (OVERSIZED_FAILS ? problems : notes).push(`${rel}: ${lines} lines (modules stay under ~${MAX_MODULE_LINES}; split it by what it does)`);
  }
}

for (const pkg of ['inbox', 'orch', 'worker-brief']) {
  const dir = path.join(root, 'packages', pkg, 'src', 'commands');
  if (!fs.existsSync(dir)) continue;
  const cli = fs.readFileSync(path.join(root, 'packages', pkg, 'src', 'cli.ts'), 'utf8');
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'shared.ts' && !f.endsWith('.test.ts'))) {
    if (!cli.includes(`./commands/${f}`)) problems.push(`packages/${pkg}/src/commands/${f}: not wired into cli.ts`);
  }
}

for (const n of notes) console.error(`lint (not yet an error): ${n}`);
if (problems.length > 0) {
  for (const p of problems) console.error(`lint: ${p}`);
  process.exit(1);
}
console.log(`lint: ${files.length + scripts.length} files ok`);
