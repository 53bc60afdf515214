// Project rules no general linter knows: SQL stays in query modules (never in command modules or
// CLI wiring), no focused tests, and every command module is reachable from its CLI.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const problems = [];

function walk(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'dist' ? [] : walk(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

const files = [...walk(path.join(root, 'packages')), ...walk(path.join(root, 'test'))];
const sqlish = /\b(selectFrom|insertInto|updateTable|deleteFrom)\(|\bsql`/;
for (const file of files) {
  const rel = path.relative(root, file);
  const text = fs.readFileSync(file, 'utf8');
  if (/\/src\/(commands\/|cli\.ts|bin\.ts)/.test(rel) && sqlish.test(text)) problems.push(`${rel}: SQL belongs in a query module, not in CLI code`);
  if (/\b(it|test|describe)\.only\(/.test(text)) problems.push(`${rel}: focused test (.only) hides the rest of the suite`);
}

for (const pkg of ['inbox', 'orch', 'worker-brief']) {
  const dir = path.join(root, 'packages', pkg, 'src', 'commands');
  if (!fs.existsSync(dir)) continue;
  const cli = fs.readFileSync(path.join(root, 'packages', pkg, 'src', 'cli.ts'), 'utf8');
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'shared.ts' && !f.endsWith('.test.ts'))) {
    if (!cli.includes(`./commands/${f}`)) problems.push(`packages/${pkg}/src/commands/${f}: not wired into cli.ts`);
  }
}

if (problems.length > 0) {
  for (const p of problems) console.error(`lint: ${p}`);
  process.exit(1);
}
console.log(`lint: ${files.length} files ok`);
