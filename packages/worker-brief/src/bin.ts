import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '@orch/store';
import { briefCli } from './cli.ts';

// Bundled builds ship the native SQLite addon beside this file.
const addon = path.join(__dirname, 'better_sqlite3.node');

// The inbox CLI the worker should run: the sibling skill's bundled copy (skills/orch/assets ->
// skills/inbox/assets/inbox), or the package build (packages/worker-brief/dist -> packages/inbox/dist),
// else whatever `inbox` is on PATH.
const candidates = [path.resolve(__dirname, '../../inbox/assets/inbox'), path.resolve(__dirname, '../../inbox/dist/inbox.cjs')];
const defaultInbox = candidates.find((c) => fs.existsSync(c)) ?? 'inbox';

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

runCli(briefCli({ defaultInbox }), process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  cwd: process.cwd(),
  ...(fs.existsSync(addon) ? { nativeBinding: addon } : {}),
}).then((code) => {
  process.exitCode = code;
});
