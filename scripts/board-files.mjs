// The live web board's files for scripts/build.mjs (docs/board.md): scripts/build-board.mjs builds
// them (index.html, board.js, board.css, dag-worker.js) once, into a scratch folder, and each copy
// goes into a `board/` folder beside an orch-server.cjs, where `orch serve` looks for them.
import fs from 'node:fs';
import path from 'node:path';
import { buildBoard } from './build-board.mjs';

/**
 * Builds the board once; `installInto(dir)` puts its files into `dir/board/` (made if missing), each
 * through `install` (a rename into place), and removes a file an earlier build left there that this
 * one did not make; `close()` removes the scratch folder.
 *
 * @param {string} root the repository
 * @param {(from: string, to: string) => void} install
 * @returns {Promise<{ files: string[], installInto(dir: string): void, close(): void }>}
 */
export async function boardFiles(root, install) {
  const built = path.join(root, 'test-results', `board.build-${process.pid}`);
  fs.rmSync(built, { recursive: true, force: true });
  fs.mkdirSync(built, { recursive: true });
  // buildBoard names the files it wrote (absolute paths): the board folder is flat, so their names.
  const files = (await buildBoard(built)).files.map((f) => path.basename(f));
  if (!files.includes('index.html')) throw new Error(`build: scripts/build-board.mjs made no index.html (${files.join(', ')})`);
  return {
    files,
    installInto(dir) {
      const target = path.join(dir, 'board');
      fs.mkdirSync(target, { recursive: true });
      for (const f of files) install(path.join(built, f), path.join(target, f));
      for (const f of fs.readdirSync(target)) if (!files.includes(f)) fs.rmSync(path.join(target, f), { recursive: true, force: true });
    },
    close() {
      fs.rmSync(built, { recursive: true, force: true });
    },
  };
}
