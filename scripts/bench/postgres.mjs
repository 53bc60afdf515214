// 5. PostgreSQL: claims through the library vs a raw `pg` loop (1 and 4 processes), wake-ups of
//    `orch wait` / `inbox wait` / `inbox claim --wait-seconds`, and `ready` / `status` on 10,000
//    tasks, on the server BENCH_PG names (default postgres://127.0.0.1:5432/test). Every schema is
//    made for this run (bench_PID_...) and dropped afterwards. Without a server the rows say
//    "skipped: no server" and the bench goes on.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import pg from 'pg';
import { at, figure, inbox, median, ok, orch, percentile, quick, TIME, timed, tmp } from './common.mjs';
import { bundleWorker, runWorkers } from './throughput.mjs';

export const SERVER = process.env.BENCH_PG ?? 'postgres://127.0.0.1:5432/test';
const TP = 'throughput (PostgreSQL)';
const WAKE = 'wake (PostgreSQL)';
const SCALE = 'scale (PostgreSQL)';

/** The URL of schema `name` on the server. */
const url = (/** @type {string} */ name) => `${SERVER}${SERVER.includes('?') ? '&' : '?'}schema=${name}`;
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

export async function postgres() {
  // As libpq (and the engine) do: without a user in the URL or PGUSER, the operating system's user.
  if (!process.env.PGUSER && new URL(SERVER).username === '') process.env.PGUSER = os.userInfo().username;
  const admin = new pg.Client({ connectionString: SERVER, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (err) {
    const note = `skipped: no server (${SERVER}: ${err instanceof Error ? err.message : String(err)})`;
    console.log(`bench: PostgreSQL rows ${note}`);
    for (const [group, name, target] of [
      [TP, 'inbox library / raw pg, 1 and 4 processes', '>= 0.5'],
      [WAKE, 'orch wait, inbox wait: p50 / p99 from a commit to return', '<= 20 / 100'],
      [SCALE, 'ready, status --json (10000 tasks) / node -e 0', '<= 2 / 10'],
    ]) {
      figure(group, name, NaN, '', target, null, note);
    }
    return;
  }
  /** @type {string[]} */
  const made = [];
  const schema = (/** @type {string} */ name) => {
    const full = `bench_${process.pid}_${name}`;
    made.push(full);
    return full;
  };
  try {
    await claims(admin, schema);
    await wakeups(admin, schema);
    await scale(admin, schema);
  } finally {
    for (const s of made) await admin.query(`drop schema if exists "${s}" cascade`).catch(() => undefined);
    await admin.end();
  }
}

/**
 * @param {pg.Client} admin
 * @param {(name: string) => string} schema
 */
async function claims(admin, schema) {
  const worker = await bundleWorker();
  const n = quick ? 500 : 2000;
  const rounds = quick ? 3 : 5;
  /** @type {Record<string, number>} */
  const rate = {};
  for (const procs of [1, 4]) {
    /** @type {Record<string, number[]>} */
    const rates = { 'pg-raw': [], 'pg-lib': [] };
    for (let round = 0; round < rounds; round++) {
      for (const mode of Object.keys(rates).sort(() => Math.random() - 0.5)) {
        const s = schema(`tp_${mode.slice(3)}_${procs}_${round}`);
        if (mode === 'pg-lib') {
          ok(inbox(url(s), 'init'));
          await admin.query(
            `insert into "${s}".inbox_threads (id, subject, assigned_to, created_by, state, claim_count, created_at, updated_at)
             select 'th_bench' || i, 'job', 'bench', 'leader', 'open', 0, i, i from generate_series(0, $1::int - 1) i`,
            [n],
          );
          await admin.query(`analyze "${s}".inbox_threads`);
        } else {
          await admin.query(`create schema "${s}"`);
          await admin.query(`create table "${s}".raw_jobs (id bigserial primary key, state text not null, claimed_by text, lease_expires_at bigint)`);
          await admin.query(`create index raw_jobs_state on "${s}".raw_jobs (state, id)`);
          await admin.query(`insert into "${s}".raw_jobs (state) select 'open' from generate_series(1, $1::int)`, [n]);
          await admin.query(`analyze "${s}".raw_jobs`);
        }
        const reports = await runWorkers(worker, mode, url(s), procs);
        const claimed = reports.reduce((a, r) => a + r.claimed, 0);
        if (claimed !== n) throw new Error(`${mode} x${procs}: claimed ${claimed} of ${n}`);
        at(rates, mode).push(claimed / (Math.max(...reports.map((r) => r.ms)) / 1000));
        await admin.query(`drop schema "${s}" cascade`);
      }
    }
    for (const mode of Object.keys(rates)) rate[`${mode}${procs}`] = median(at(rates, mode));
    const p = `${procs} process${procs > 1 ? 'es' : ''}`;
    figure(TP, `claims/s, ${p}: raw pg (SKIP LOCKED, in a transaction)`, at(rate, `pg-raw${procs}`), '/s', '', null);
    figure(TP, `claims/s, ${p}: inbox library`, at(rate, `pg-lib${procs}`), '/s', '', null);
    const vsRaw = at(rate, `pg-lib${procs}`) / at(rate, `pg-raw${procs}`);
    figure(TP, `inbox library / raw pg, ${p}`, vsRaw, 'x', '>= 0.5', vsRaw >= 0.5, `median of ${rounds} interleaved rounds of ${n} claims`);
  }
}

/**
 * Waits until a backend that was not in `before` is listening (a waiter past its start-up), for
 * at most 10 s.
 *
 * @param {pg.Client} admin
 * @param {Set<number>} before
 */
async function listening(admin, before) {
  const t0 = performance.now();
  while (performance.now() - t0 < 10_000) {
    const r = await admin.query("select pid from pg_stat_activity where datname = current_database() and query ilike 'listen %'");
    if (r.rows.some((row) => !before.has(row.pid))) return;
    await sleep(10);
  }
}

/** @param {pg.Client} admin */
async function backends(admin) {
  const r = await admin.query('select pid from pg_stat_activity where datname = current_database()');
  return new Set(r.rows.map((row) => /** @type {number} */ (row.pid)));
}

/**
 * @param {pg.Client} admin
 * @param {(name: string) => string} schema
 */
async function wakeups(admin, schema) {
  const s = schema('wake');
  const db = url(s);
  ok(inbox(db, 'init'));
  ok(orch(db, 'run', 'init', '--run', 'w', '--goal', 'wake'));
  ok(orch(db, 'task', 'add', '--run', 'w', '--task', 'T', '--title', 't', '--default-to', 'worker'));
  const att = ok(orch(db, 'dispatch', '--run', 'w', '--task', 'T', '--execution-mode', 'analysis', '--body', 'go')).attempt;
  const held = ok(inbox(db, 'claim', '--agent', 'worker', '--thread', att.thread_id, '--lease-seconds', '3600'));
  ok(orch(db, 'status', '--run', 'w'));
  // The commits are made through the library, as a worker or leader makes them (with the NOTIFY
  // the engine sends on commit); the time is taken once the commit has returned.
  const lib = createRequire(import.meta.url)(await bundleWorker('library'));
  const writer = await lib.openInbox({ path: db });
  const kinds = {
    'orch wait': {
      args: async () => orch(db, 'wait', '--run', 'w', '--for', 'task_progress', '--timeout-seconds', '20'),
      commit: () => lib.progress(writer, { threadId: att.thread_id, lease: held.lease.token, body: 'x' }),
    },
    'inbox wait': {
      args: async () => {
        const last = (await admin.query(`select max(id) as id from "${s}".inbox_messages`)).rows[0].id;
        return inbox(db, 'wait', '--thread', att.thread_id, '--agent', 'worker', '--after-message', String(last), '--timeout-seconds', '20');
      },
      commit: () => lib.reply(writer, { threadId: att.thread_id, from: 'leader', body: 'x' }),
    },
    'inbox claim --wait-seconds': {
      args: async () => inbox(db, 'claim', '--agent', 'sleeper', '--wait-seconds', '20'),
      commit: () => lib.send(writer, { to: 'sleeper', subject: 'wake', from: 'leader', body: 'x' }),
    },
  };
  const samples = quick ? 8 : 20;
  try {
    for (const [name, k] of Object.entries(kinds)) {
      const lat = [];
      for (let i = 0; i < samples; i++) {
        const args = await k.args();
        const before = await backends(admin);
        const child = spawn(process.execPath, args, { cwd: tmp });
        /** @type {Promise<{ code: number | null, out: string, at: number }>} */
        const exited = new Promise((resolve) => {
          let out = '';
          child.stdout.on('data', (/** @type {Buffer} */ d) => (out += d));
          child.on('close', (code) => resolve({ code, out, at: performance.now() }));
        });
        // Past start-up: the waiter listens (it connects for LISTEN on its first wait), then a margin.
        await Promise.all([sleep(450), listening(admin, before)]);
        await sleep(100);
        await k.commit();
        const t0 = performance.now();
        const r = await exited;
        if (r.code !== 0 || JSON.parse(r.out).timed_out) throw new Error(`${name} on PostgreSQL did not wake: ${r.out}`);
        lat.push(r.at - t0);
      }
      figure(WAKE, `${name}: p50 from a commit to return`, percentile(lat, 50), 'ms', '<= 20', percentile(lat, 50) <= 20);
      figure(WAKE, `${name}: p99 from a commit to return`, percentile(lat, 99), 'ms', '<= 100', percentile(lat, 99) <= 100);
    }
  } finally {
    await writer.close();
  }
  if (TIME) {
    // As on SQLite: CPU of a long wait minus that of a 1-second one (the waiter polls the server's
    // transaction counter every 250 ms besides listening).
    const long = quick ? 6 : 11;
    /** @type {[string, (s: number) => string[]][]} */
    const waits = [
      ['inbox wait', (t) => inbox(db, 'wait', '--thread', held.thread.id, '--agent', 'worker', '--timeout-seconds', String(t))],
      ['orch wait', (t) => orch(db, 'wait', '--run', 'w', '--for', 'run_done', '--timeout-seconds', String(t))],
    ];
    for (const [name, argsFor] of waits) {
      const pairs = Array.from({ length: quick ? 1 : 3 }, () => Math.max(0, timed(argsFor(long)).cpu - timed(argsFor(1)).cpu) / (long - 1));
      const share = median(pairs);
      figure(WAKE, `${name}: CPU while idle`, share * 100, '% of a core', '<= 1', share * 100 <= 1);
    }
  }
}

/**
 * @param {pg.Client} admin
 * @param {(name: string) => string} schema
 */
async function scale(admin, schema) {
  const s = schema('scale');
  const db = url(s);
  const tasks = quick ? 2000 : 10_000;
  const edges = tasks * 3;
  ok(inbox(db, 'init'));
  ok(orch(db, 'run', 'init', '--run', 'big', '--goal', 'scale'));
  const now = Date.now();
  await admin.query(
    `insert into "${s}".orch_tasks (run_id, id, title, summary, default_to, acceptance, priority, state, created_at, updated_at)
     select 'big', 'T' || i, 'task ' || i, null, 'w', null, 0, 'pending', $2::bigint, $2::bigint from generate_series(0, $1::int - 1) i`,
    [tasks, now],
  );
  // As on SQLite: tasks 0..99 have no dependencies (ready); every other task depends on earlier ones only.
  const pairs = new Set();
  while (pairs.size < edges) {
    const t = 100 + Math.floor(Math.random() * (tasks - 100));
    pairs.add(`T${t} T${Math.floor(Math.random() * t)}`);
  }
  const all = [...pairs].map((p) => p.split(' '));
  for (let i = 0; i < all.length; i += 10_000) {
    const batch = all.slice(i, i + 10_000);
    await admin.query(
      `insert into "${s}".orch_dependencies (run_id, task_id, depends_on, created_at)
       select 'big', t, d, $3::bigint from unnest($1::text[], $2::text[]) as x(t, d)`,
      [batch.map((b) => b[0]), batch.map((b) => b[1]), now],
    );
  }
  // What autovacuum would have done by the time a run holds this much.
  await admin.query(`analyze "${s}".orch_tasks`);
  await admin.query(`analyze "${s}".orch_dependencies`);
  let k = 0;
  /** @type {Record<string, () => string[]>} */
  const ops = {
    'node -e 0': () => ['-e', '0'],
    ready: () => orch(db, 'ready', '--run', 'big'),
    'status --json': () => orch(db, 'status', '--run', 'big'),
    'dep add': () => {
      k += 1;
      return orch(db, 'dep', 'add', '--run', 'big', '--task', `T${tasks - k}`, '--depends-on', `T${k}`);
    },
    dispatch: () => orch(db, 'dispatch', '--run', 'big', '--task', `T${k}`, '--execution-mode', 'analysis', '--body', 'go'),
  };
  /** @type {Record<string, import('./common.mjs').Timing[]>} */
  const samples = Object.fromEntries(Object.keys(ops).map((x) => [x, []]));
  for (let round = 0; round < (quick ? 3 : 5); round++) {
    for (const x of Object.keys(ops)) at(samples, x).push(timed(at(ops, x)()));
  }
  const base = median(at(samples, 'node -e 0').map((t) => t.ms));
  /** @type {Record<string, number>} */
  const targets = { ready: 2, 'status --json': 10, 'dep add': 2, dispatch: 2 };
  for (const [x, target] of Object.entries(targets)) {
    const ms = median(at(samples, x).map((t) => t.ms));
    const rss = median(at(samples, x).map((t) => t.rssKiB));
    figure(
      SCALE,
      `${x} (${tasks} tasks, ${edges} edges) / node -e 0`,
      ms / base,
      'x',
      x === 'dep add' ? '(none)' : `<= ${target}`,
      x === 'dep add' ? null : ms / base <= target,
      `${ms.toFixed(0)} ms${TIME ? `, peak RSS ${Math.round(rss / 1024)} MiB` : ''}`,
    );
  }
}
