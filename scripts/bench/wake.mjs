// 3. Wake-up latency and idle cost of the waits
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { figure, inbox, median, ok, orch, percentile, quick, TIME, timed, tmp } from './common.mjs';

/**
 * @param {import('node:child_process').ChildProcessWithoutNullStreams} child
 * @returns {Promise<{ code: number | null, out: string, at: number }>}
 */
function waitFor(child) {
  return new Promise((resolve) => {
    let out = '';
    child.stdout.on('data', (/** @type {Buffer} */ d) => (out += d));
    child.on('close', (/** @type {number | null} */ code) => resolve({ code, out, at: performance.now() }));
  });
}

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

export async function wakeups() {
  const db = path.join(tmp, 'wake.db');
  ok(inbox(db, 'init'));
  ok(orch(db, 'run', 'init', '--run', 'w', '--goal', 'wake'));
  ok(orch(db, 'task', 'add', '--run', 'w', '--task', 'T', '--title', 't', '--default-to', 'worker'));
  const att = ok(orch(db, 'dispatch', '--run', 'w', '--task', 'T', '--execution-mode', 'analysis', '--body', 'go')).attempt;
  const held = ok(inbox(db, 'claim', '--agent', 'worker', '--thread', att.thread_id, '--lease-seconds', '3600'));
  ok(orch(db, 'status', '--run', 'w'));
  const conn = new Database(db);
  conn.pragma('busy_timeout = 5000');
  let n = 0;
  // Every message names its role (inbox schema v4): a waiter wakes for the other side's messages only.
  const message = conn.prepare("insert into inbox_messages (thread_id, author, kind, body, payload, created_at, role) values (?, ?, ?, 'x', null, ?, ?)");
  const openThread = conn.prepare(
    "insert into inbox_threads (id, subject, assigned_to, created_by, state, claim_count, created_at, updated_at) values (?, 'wake', 'sleeper', 'leader', 'open', 0, ?, ?)",
  );
  const kinds = {
    'orch wait': {
      args: () => orch(db, 'wait', '--run', 'w', '--for', 'task_progress', '--timeout-seconds', '20'),
      commit: () => message.run(att.thread_id, 'worker', 'progress', Date.now(), 'worker'),
    },
    'inbox wait': {
      args: () => {
        const last = /** @type {{ id: number }} */ (conn.prepare('select max(id) as id from inbox_messages').get()).id;
        return inbox(db, 'wait', '--thread', att.thread_id, '--agent', 'worker', '--after-message', String(last), '--timeout-seconds', '20');
      },
      commit: () => message.run(att.thread_id, 'leader', 'note', Date.now(), 'leader'),
    },
    'inbox claim --wait-seconds': {
      args: () => inbox(db, 'claim', '--agent', 'sleeper', '--wait-seconds', '20'),
      commit: () => openThread.run(`th_wake${++n}`, Date.now(), Date.now()),
    },
  };
  const samples = quick ? 8 : 20;
  for (const [name, k] of Object.entries(kinds)) {
    const lat = [];
    for (let i = 0; i < samples; i++) {
      const child = spawn(process.execPath, k.args(), { cwd: tmp });
      const exited = waitFor(child);
      await sleep(450); // past start-up: the waiter is polling
      k.commit();
      const t0 = performance.now();
      const r = await exited;
      if (r.code !== 0 || JSON.parse(r.out).timed_out) throw new Error(`${name} did not wake: ${r.out}`);
      lat.push(r.at - t0);
    }
    figure('wake', `${name}: p50 from a commit to return`, percentile(lat, 50), 'ms', '<= 20', percentile(lat, 50) <= 20);
    figure('wake', `${name}: p99 from a commit to return`, percentile(lat, 99), 'ms', '<= 100', percentile(lat, 99) <= 100);
  }
  conn.close();
  if (TIME) {
    // The cost of waiting, without start-up: CPU of a long wait minus that of a 1-second one.
    const long = quick ? 6 : 11;
    /** @type {[string, (s: number) => string[]][]} */
    const waits = [
      ['inbox wait', (s) => inbox(db, 'wait', '--thread', held.thread.id, '--agent', 'worker', '--timeout-seconds', String(s))],
      ['orch wait', (s) => orch(db, 'wait', '--run', 'w', '--for', 'run_done', '--timeout-seconds', String(s))],
    ];
    for (const [name, argsFor] of waits) {
      // One pair is noisy here (V8 collects garbage once the process goes idle, at varying cost):
      // the median of three pairs.
      const pairs = Array.from({ length: quick ? 1 : 3 }, () => Math.max(0, timed(argsFor(long)).cpu - timed(argsFor(1)).cpu) / (long - 1));
      const share = median(pairs);
      figure('wake', `${name}: CPU while idle`, share * 100, '% of a core', '<= 1', share * 100 <= 1);
    }
  }
}
