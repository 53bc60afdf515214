// Builds the web board (packages/board: Preact + TSX) into static assets that `orch serve` sends
// at `/` and `/assets/<file>`: index.html, board.js, board.css and dag-worker.js (the DAG layout,
// dagre, in a Web Worker so a 1,000-task graph never holds up the page). Everything is minified,
// nothing is inline (the server's Content-Security-Policy forbids inline script and style) and
// nothing points off the server (no CDN, no web fonts). scripts/build.mjs calls buildBoard() to
// install the files beside every server bundle; run directly, this builds packages/board/dist/.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const board = path.join(root, 'packages/board');

/** What the page's script and the worker share: browsers of the last few years, no source maps. */
/** @type {import('esbuild').BuildOptions} */
const common = {
  bundle: true,
  minify: true,
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  legalComments: 'none',
  logLevel: 'warning',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  define: { 'process.env.NODE_ENV': '"production"' },
  write: true,
};

/**
 * index.html with the whitespace between tags removed. It holds no inline script or style, and
 * it names its assets by absolute path (/assets/...), so it works from any route.
 *
 * @param {string} html
 */
function minifyHtml(html) {
  return `${html.replace(/\n\s*/g, '').replace(/>\s+</g, '><').trim()}\n`;
}

/**
 * Builds the board into `outDir` (created if missing; the four files are replaced).
 *
 * @param {string} outDir
 * @returns {Promise<{ files: string[] }>} the names of the files written (inside `outDir`)
 */
export async function buildBoard(outDir) {
  fs.mkdirSync(outDir, { recursive: true });
  const files = ['index.html', 'board.js', 'board.css', 'dag-worker.js'];
  const out = (/** @type {string} */ f) => path.join(outDir, f);
  await Promise.all([
    build({ ...common, entryPoints: [path.join(board, 'src/main.tsx')], outfile: out('board.js'), format: 'esm' }),
    build({ ...common, entryPoints: [path.join(board, 'src/dag-worker.ts')], outfile: out('dag-worker.js'), format: 'iife' }),
    build({ ...common, entryPoints: [path.join(board, 'src/board.css')], outfile: out('board.css') }),
  ]);
  fs.writeFileSync(out('index.html'), minifyHtml(fs.readFileSync(path.join(board, 'index.html'), 'utf8')));
  return { files };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = path.join(board, 'dist');
  const { files } = await buildBoard(out);
  console.log(`build-board: ${files.map((f) => path.relative(root, path.join(out, f))).join(', ')}`);
}
