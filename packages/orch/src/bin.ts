import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '@orch/store';
import { orchCli } from './cli.ts';

// Bundled builds ship the native SQLite addon beside this file.
const addon = path.join(__dirname, 'better_sqlite3.node');

// A reader that stops early (`orch status | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

runCli(orchCli, process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  cwd: process.cwd(),
  ...(fs.existsSync(addon) ? { nativeBinding: addon } : {}),
}).then((code) => {
  process.exitCode = code;
});
