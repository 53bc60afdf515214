/**
 * The leak check (vitest setupFiles: runs around every test file). After the file's own hooks, it
 * fails the file when something it started is still there:
 * - a child process: anything whose parent is this worker, or that carries this file's tag in its
 *   environment (set below, so every process the tests start with process.env passed on has it,
 *   even one that outlived its parent and was re-parented);
 * - a temporary directory made through tempDir()/fileTempDir() that still exists;
 * - a harness world (two open database handles) not closed.
 * Processes found are killed after they are reported, so one file's leak cannot disturb the next.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll } from 'vitest';
import { LEAK_TAG_VAR, stillOpen, trackedTempDirs } from './leaks.ts';

const tag = `${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
process.env[LEAK_TAG_VAR] = tag;

interface Proc {
  pid: number;
  command: string;
}

/** This worker's live children and every live process carrying this file's tag (zombies excluded). */
function ours(): Proc[] {
  const found: Proc[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z' || state === 'X') continue;
      const child = Number(ppid) === process.pid;
      if (!child && !fs.readFileSync(`/proc/${name}/environ`, 'latin1').split('\0').includes(`${LEAK_TAG_VAR}=${tag}`)) continue;
      const command = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      found.push({ pid, command });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

const before = new Set(ours().map((p) => p.pid));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterAll(async () => {
  const problems: string[] = [];

  // A process killed at the end of the last test may take a moment to exit.
  let left = ours().filter((p) => !before.has(p.pid));
  for (let waited = 0; left.length > 0 && waited < 5000; waited += 100) {
    await sleep(100);
    left = ours().filter((p) => !before.has(p.pid));
  }
  for (const p of left) {
    problems.push(`child process ${p.pid} still running: ${p.command.slice(0, 200)}`);
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  for (const dir of trackedTempDirs()) if (fs.existsSync(dir)) problems.push(`temporary directory left behind: ${dir}`);
  for (const what of stillOpen()) problems.push(`still open: ${what}`);

  if (problems.length > 0) {
    throw new Error(`leak check: this test file left ${problems.length} thing(s) behind:\n  ${problems.join('\n  ')}`);
  }
});
