import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Bundles the test-only process fixtures (real OS processes that drive the library API) once per
 * run. The CLIs themselves are built by `npm test` before vitest starts.
 */
export default async function setup(): Promise<void> {
  const root = path.resolve(import.meta.dirname, '..');
  const outdir = path.join(root, 'test-results/fixtures');
  fs.mkdirSync(outdir, { recursive: true });
  for (const name of fs.readdirSync(path.join(root, 'test/fixtures')).filter((f) => f.endsWith('.ts'))) {
    await build({
      entryPoints: [path.join(root, 'test/fixtures', name)],
      outfile: path.join(outdir, name.replace(/\.ts$/, '.cjs')),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      // Loaded from node_modules at run time, so the native addon is found the usual way.
      external: ['better-sqlite3'],
      logLevel: 'warning',
    });
  }
  if (!fs.existsSync(path.join(root, 'packages/inbox/dist/inbox.cjs'))) {
    throw new Error('packages/inbox/dist/inbox.cjs is missing: run `npm run build` (npm test does it for you)');
  }
}
