// Builds every CLI into one self-contained CommonJS file with esbuild and places it where it is
// used: packages/<pkg>/dist/ (behind the npm bin links) and skills/<skill>/assets/ (the bundled
// skill executables). The native SQLite addon is copied beside each bundle, which loads it from
// there, so a copied skill folder keeps working without node_modules.
import { build } from 'esbuild';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'packages/store/package.json'));
const addon = path.join(path.dirname(require.resolve('better-sqlite3/package.json')), 'build/Release/better_sqlite3.node');

const clis = [
  { name: 'inbox', entry: 'packages/inbox/src/bin.ts', outputs: ['packages/inbox/dist/inbox.cjs', 'skills/inbox/assets/inbox'] },
  { name: 'orch', entry: 'packages/orch/src/bin.ts', outputs: ['packages/orch/dist/orch.cjs', 'skills/orch/assets/orch'] },
  {
    name: 'orch-worker-brief',
    entry: 'packages/worker-brief/src/bin.ts',
    outputs: ['packages/worker-brief/dist/orch-worker-brief.cjs', 'skills/orch/assets/orch-worker-brief'],
  },
];

if (!fs.existsSync(addon)) {
  console.error(`build: ${addon} is missing; the better-sqlite3 install step did not compile it (run \`npm rebuild better-sqlite3\`)`);
  process.exit(1);
}

/**
 * Puts `from`'s bytes at `to` by writing a temporary file beside it and renaming it into place:
 * a CLI that is running (a long `inbox work`, say) keeps its old, still valid file instead of
 * crashing on one overwritten under it.
 */
function install(from, to, mode) {
  const tmp = `${to}.tmp-${process.pid}`;
  fs.copyFileSync(from, tmp);
  if (mode !== undefined) fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, to);
}

for (const cli of clis) {
  const [first, ...copies] = cli.outputs.map((o) => path.join(root, o));
  fs.mkdirSync(path.dirname(first), { recursive: true });
  const built = `${first}.build-${process.pid}`;
  await build({
    entryPoints: [path.join(root, cli.entry)],
    outfile: built,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    banner: { js: '#!/usr/bin/env node' },
    legalComments: 'none',
    logLevel: 'warning',
    minifySyntax: true,
  });
  fs.chmodSync(built, 0o755);
  for (const out of [first, ...copies]) {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    install(built, out, 0o755);
    install(addon, path.join(path.dirname(out), 'better_sqlite3.node'));
    // An extensionless file is read as CommonJS only if no package.json around it says otherwise.
    if (out !== first) fs.writeFileSync(path.join(path.dirname(out), 'package.json'), '{ "type": "commonjs" }\n');
  }
  fs.rmSync(built);
}
console.log(`build: ${clis.map((c) => c.outputs.join(', ')).join('; ')}`);
