// The README's main job for now: one leader and one worker trading messages through the real
// inbox CLI on a temporary database: open a thread, claim it, report progress, ask a blocking
// question, wait for the answer, post the result. Exits 0 only if the thread ends done.
// (The full orch run with a dependency graph and worktrees replaces this when orch lands.)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'packages/inbox/dist/inbox.cjs');
if (!fs.existsSync(bin)) {
  console.error('demo: the inbox CLI is not built; run `npm ci` (or `npm run build`) first');
  process.exit(1);
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inbox-demo-'));
const db = path.join(dir, 'coord.db');

function show(who, args) {
  console.log(`\n${who}$ inbox --db coord.db ${args.map((a) => (/[\s"'{}]/.test(a) ? `'${a}'` : a)).join(' ')}`);
}

function inbox(who, args) {
  show(who, args);
  const r = spawnSync(process.execPath, [bin, '--db', db, '--json', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`inbox ${args[0]} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

try {
  inbox('leader', ['init']);
  const sent = inbox('leader', ['send', '--to', 'qa-worker', '--subject', 'Summarize flaky tests', '--body', 'Read the CI logs and report the root cause.']);
  const thread = sent.thread.id;
  console.log(`  -> thread ${thread} opened for qa-worker`);

  const claimed = inbox('worker', ['claim', '--agent', 'qa-worker', '--lease-seconds', '600']);
  const lease = claimed.lease.token;
  console.log(`  -> claimed with lease ${lease} until ${claimed.lease.expires_at}; task: "${claimed.messages[0].body}"`);

  inbox('worker', ['progress', '--thread', thread, '--lease', lease, '--body', 'Read 3 of 5 logs', '--payload-json', '{"logs_read": 3}']);
  const asked = inbox('worker', ['ask', '--thread', thread, '--lease', lease, '--body', 'Should I include the quarantined tests?']);
  console.log(`  -> thread is ${asked.thread.state}; the worker now waits for the answer`);

  // The worker blocks in `inbox wait` (a separate process) while the leader answers.
  show('worker', ['wait', '--thread', thread, '--lease', lease, '--timeout-seconds', '30']);
  const waiter = spawn(process.execPath, [bin, '--db', db, '--json', 'wait', '--thread', thread, '--lease', lease, '--timeout-seconds', '30']);
  let waited = '';
  waiter.stdout.on('data', (d) => (waited += d));
  const waiterDone = new Promise((resolve) => waiter.on('close', resolve));
  await new Promise((r) => setTimeout(r, 300));
  const answered = inbox('leader', ['reply', '--thread', thread, '--body', 'No, only the active suite.']);
  console.log(`  -> answered; thread is ${answered.thread.state} again`);
  const code = await waiterDone;
  const woke = JSON.parse(waited);
  if (code !== 0 || woke.timed_out) throw new Error('the worker did not receive the answer');
  console.log(`  -> the waiting worker woke with: "${woke.messages[0].body}"`);

  inbox('worker', ['result', '--thread', thread, '--lease', lease, '--body', 'Root cause: a race in the cache warm-up; fix proposed in tests/cache.spec.ts.']);
  const final = inbox('leader', ['show', '--thread', thread]);
  console.log(`\nThread ${thread} is ${final.thread.state}. Its messages:`);
  for (const m of final.messages) console.log(`  #${m.id} ${m.kind.padEnd(8)} ${m.author.padEnd(9)} ${m.body}`);
  if (final.thread.state !== 'done') throw new Error(`expected the thread to be done, it is ${final.thread.state}`);
  console.log('\ndemo: ok');
} catch (err) {
  console.error(`\ndemo failed: ${err.message}`);
  process.exitCode = 1;
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
