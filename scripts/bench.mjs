// `npm run bench`: the performance figures of issue 7, as ratios measured side by side in one run
// (these machines are shared and noisy; absolute times mean little). Prints a table with each
// target and writes every figure to test-results/bench.json. Not a test: nothing here fails CI.
//
// Setup shortcuts (bulk rows inserted with plain SQL, the bench's own raw commits) are only there
// to build large fixtures quickly and to time a commit precisely; what is measured is the real CLI
// or library.
import Database from 'better-sqlite3';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { buildBaseline } from './bench/baseline.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const INBOX = path.join(ROOT, 'packages/inbox/dist/inbox.cjs');
const ORCH = path.join(ROOT, 'packages/orch/dist/orch.cjs');
const OUT = path.join(ROOT, 'test-results');
const TIME = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 5 : 15;
// `--only=cli,throughput,wake,scale` runs some parts (figures are still written to bench.json).
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const part = (/** @type {string} */ name) => only === undefined || only.includes(name);
// `--baseline=REF` also times the CLIs built from REF (e.g. a commit before a change), interleaved
// with the current ones (latency part only).
const baselineRef = process.argv.find((a) => a.startsWith('--baseline='))?.slice('--baseline='.length);
const BEFORE = 'baseline: ';

for (const bin of [INBOX, ORCH]) {
  if (!fs.existsSync(bin)) {
    console.error(`bench: ${path.relative(ROOT, bin)} is missing; run \`npm run build\` first`);
    process.exit(1);
  }
}
if (baselineRef) console.log(`bench: building ${baselineRef} ...`);
const baseline = baselineRef ? buildBaseline(ROOT, baselineRef) : undefined;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-bench-'));
/**
 * @typedef {{ group: string, name: string, value: number, unit: string, target: string, met: boolean | null, note: string }} Figure
 * @typedef {{ ms: number, rssKiB: number, cpu: number, stdout: string }} Timing
 */
/** @type {Figure[]} */
const figures = [];

/**
 * @param {string} group
 * @param {string} name
 * @param {number} value
 * @param {string} unit
 * @param {string} target
 * @param {boolean | null} met
 * @param {string} [note]
 */
function figure(group, name, value, unit, target, met, note = '') {
  figures.push({ group, name, value, unit, target, met, note });
}

/**
 * `record[key]`, which must be there.
 * @template T
 * @param {Record<string, T>} record
 * @param {string} key
 * @returns {T}
 */
function at(record, key) {
  const value = record[key];
  if (value === undefined) throw new Error(`bench: no ${key}`);
  return value;
}

const median = (/** @type {number[]} */ xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const percentile = (/** @type {number[]} */ xs, /** @type {number} */ p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

/** Runs node with args; returns wall ms and (with /usr/bin/time) peak RSS in KiB and CPU seconds. */
/**
 * @param {string[]} args
 * @param {{ cwd?: string, expect?: number }} [options]
 * @returns {Timing}
 */
function timed(args, { cwd = tmp, expect = 0 } = {}) {
  const argv = TIME ? [TIME, '-f', '@@%M %U %S', process.execPath, ...args] : [process.execPath, ...args];
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { cwd, encoding: 'utf8', maxBuffer: 1 << 30 });
  const ms = performance.now() - t0;
  const m = TIME ? /@@(\d+) ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr) : null;
  if (r.status !== expect) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, rssKiB: m ? Number(m[1]) : NaN, cpu: m ? Number(m[2]) + Number(m[3]) : NaN, stdout: r.stdout };
}

const inbox = (/** @type {string} */ db, /** @type {string[]} */ ...args) => [INBOX, '--db', db, '--json', ...args];
const orch = (/** @type {string} */ db, /** @type {string[]} */ ...args) => [ORCH, '--db', db, '--json', ...args];
const ok = (/** @type {string[]} */ args) => JSON.parse(timed(args).stdout);

// ---------------------------------------------------------------------------------------------
// 1. CLI latency and memory, small run, interleaved with `node -e 0` (and with the CLIs of
//    --baseline=REF, each on its own database, when given)

/**
 * A small run on a fresh database through the CLIs `bins`; returns each timed command line.
 *
 * @param {{ inbox: string, orch: string }} bins
 * @param {string} db
 * @returns {Record<string, () => string[]>}
 */
function latencyOps(bins, db) {
  const inbox = (/** @type {string[]} */ ...args) => [bins.inbox, '--db', db, '--json', ...args];
  const orch = (/** @type {string[]} */ ...args) => [bins.orch, '--db', db, '--json', ...args];
  ok(inbox('init'));
  ok(orch('run', 'init', '--run', 'r', '--goal', 'bench'));
  for (let i = 1; i <= 20; i++) ok(orch('task', 'add', '--run', 'r', '--task', `T${i}`, '--title', `task ${i}`, '--default-to', 'w'));
  for (let i = 2; i <= 20; i++) ok(orch('dep', 'add', '--run', 'r', '--task', `T${i}`, '--depends-on', `T${Math.floor(i / 2)}`));
  ok(orch('run', 'init', '--run', 'd', '--goal', 'dispatch targets'));
  for (let i = 1; i <= ROUNDS; i++) ok(orch('task', 'add', '--run', 'd', '--task', `D${i}`, '--title', `d ${i}`, '--default-to', 'w'));
  for (let i = 1; i <= ROUNDS; i++) ok(inbox('send', '--to', 'bench', '--subject', `job ${i}`, '--body', 'x'));
  ok(inbox('send', '--to', 'p', '--subject', 'progress target', '--body', 'x'));
  const held = ok(inbox('claim', '--agent', 'p', '--lease-seconds', '3600'));
  let d = 0;
  return {
    'inbox claim': () => inbox('claim', '--agent', 'bench'),
    'inbox progress': () => inbox('progress', '--thread', held.thread.id, '--lease', held.lease.token, '--body', 'step'),
    'orch ready': () => orch('ready', '--run', 'r'),
    'orch dispatch': () => orch('dispatch', '--run', 'd', '--task', `D${++d}`, '--execution-mode', 'analysis', '--body', 'go'),
    'orch status (20 tasks)': () => orch('status', '--run', 'r'),
    'orch wait (existing event)': () => orch('wait', '--run', 'r', '--after-event', '0', '--timeout-seconds', '5'),
  };
}

function cliLatency() {
  const current = latencyOps({ inbox: INBOX, orch: ORCH }, path.join(tmp, 'small.db'));
  const before = baseline ? latencyOps(baseline, path.join(tmp, 'baseline.db')) : {};
  /** @type {Record<string, () => string[]>} */
  const ops = { 'node -e 0': () => ['-e', '0'], ...current, ...Object.fromEntries(Object.entries(before).map(([k, f]) => [`${BEFORE}${k}`, f])) };
  /** @type {Record<string, Timing[]>} */
  const samples = Object.fromEntries(Object.keys(ops).map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = Object.keys(ops).sort(() => Math.random() - 0.5);
    for (const k of order) samples[k]?.push(timed(at(ops, k)()));
  }
  const ms = (/** @type {string} */ k) => median(at(samples, k).map((s) => s.ms));
  const rss = (/** @type {string} */ k) => median(at(samples, k).map((s) => s.rssKiB));
  const base = ms('node -e 0');
  const baseRss = rss('node -e 0');
  figure('cli', 'node -e 0 (the floor)', base, 'ms', '', null, `peak RSS ${Math.round(baseRss / 1024)} MiB`);
  for (const k of Object.keys(current)) {
    figure('cli', `${k}: time / node -e 0`, ms(k) / base, 'x', '<= 1.5', ms(k) / base <= 1.5, `${ms(k).toFixed(0)} ms`);
    if (TIME) figure('memory', `${k}: peak RSS / node -e 0`, rss(k) / baseRss, 'x', '<= 1.5', rss(k) / baseRss <= 1.5, `${Math.round(rss(k) / 1024)} MiB`);
  }
  if (!baseline) return;
  for (const k of Object.keys(current)) {
    const then = ms(`${BEFORE}${k}`) / base;
    const now = ms(k) / base;
    const note = `${then.toFixed(2)}x -> ${now.toFixed(2)}x node -e 0 (${ms(`${BEFORE}${k}`).toFixed(0)} -> ${ms(k).toFixed(0)} ms)`;
    figure(`cli vs ${baseline.ref} (${baseline.commit})`, `${k}: now / then`, now / then, 'x', '<= 1', now <= then, note);
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Claim throughput: library vs raw better-sqlite3 vs plainjob, 1 and 4 processes

async function bundleWorker() {
  const dir = path.join(OUT, 'bench');
  fs.mkdirSync(dir, { recursive: true });
  const out = path.join(dir, 'worker.cjs');
  await build({
    entryPoints: [path.join(ROOT, 'scripts/bench/worker.ts')],
    outfile: out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['better-sqlite3'],
    logLevel: 'warning',
  });
  return out;
}

/**
 * @param {string} mode
 * @param {string} db
 * @param {number} n
 */
function seedJobs(mode, db, n) {
  if (mode === 'lib') {
    ok(inbox(db, 'init'));
    const conn = new Database(db);
    const insert = conn.prepare(
      "insert into inbox_threads (id, subject, assigned_to, created_by, state, claim_count, created_at, updated_at) values (?, 'job', 'bench', 'leader', 'open', 0, ?, ?)",
    );
    conn.transaction(() => {
      for (let i = 0; i < n; i++) insert.run(`th_bench${i}`, i, i);
    })();
    conn.close();
  } else if (mode === 'raw') {
    const conn = new Database(db);
    conn.pragma('journal_mode = WAL');
    conn.exec('create table raw_jobs (id integer primary key, state text not null, claimed_by text, lease_expires_at integer)');
    conn.exec('create index raw_jobs_state on raw_jobs (state, id)');
    const insert = conn.prepare("insert into raw_jobs (state) values ('open')");
    conn.transaction(() => {
      for (let i = 0; i < n; i++) insert.run();
    })();
    conn.close();
  }
}

/**
 * @param {string} db
 * @param {number} n
 */
async function seedPlainjob(db, n) {
  const { better, defineQueue } = await import('plainjob');
  const conn = new Database(db);
  const queue = defineQueue({ connection: better(conn) });
  queue.addMany(
    'bench',
    Array.from({ length: n }, (_, i) => i),
  );
  queue.close();
  conn.close();
}

/**
 * @param {string} worker
 * @param {string} mode
 * @param {string} db
 * @param {number} procs
 * @returns {Promise<{ claimed: number, ms: number }[]>}
 */
function runWorkers(worker, mode, db, procs) {
  const go = path.join(tmp, `go-${mode}-${procs}-${Date.now()}`);
  let ready = 0;
  /** @type {() => void} */
  let release = () => undefined;
  const allReady = new Promise((r) => (release = () => r(undefined)));
  const done = Array.from({ length: procs }, () => {
    const child = spawn(process.execPath, [worker, mode, db, go], { cwd: ROOT });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      const before = out;
      out += d;
      if (!before.includes('ready\n') && out.includes('ready\n') && ++ready === procs) release();
    });
    child.stderr.on('data', (d) => (err += d));
    return new Promise((resolve, reject) =>
      child.on('close', (code) => {
        if (code !== 0) reject(new Error(`${mode} worker exited ${code}: ${err}`));
        else resolve(JSON.parse(out.trim().split('\n').at(-1) ?? ''));
      }),
    );
  });
  return allReady.then(() => {
    fs.writeFileSync(go, '');
    return Promise.all(done);
  });
}

async function throughput() {
  const worker = await bundleWorker();
  const n = quick ? 1000 : 4000;
  // Other work on this shared machine comes and goes: each rate is the median of several rounds,
  // the three modes taking turns in a new order each round.
  const rounds = quick ? 3 : 5;
  /** @type {Record<string, number>} */
  const rate = {};
  for (const procs of [1, 4]) {
    /** @type {Record<string, number[]>} */
    const rates = { raw: [], lib: [], plainjob: [] };
    for (let round = 0; round < rounds; round++) {
      for (const mode of Object.keys(rates).sort(() => Math.random() - 0.5)) {
        const db = path.join(tmp, `tp-${mode}-${procs}-${round}.db`);
        if (mode === 'plainjob') await seedPlainjob(db, n);
        else seedJobs(mode, db, n);
        const reports = await runWorkers(worker, mode, db, procs);
        const claimed = reports.reduce((a, r) => a + r.claimed, 0);
        if (claimed !== n) throw new Error(`${mode} x${procs}: claimed ${claimed} of ${n}`);
        at(rates, mode).push(claimed / (Math.max(...reports.map((r) => r.ms)) / 1000));
        for (const suffix of ['', '-wal', '-shm']) fs.rmSync(`${db}${suffix}`, { force: true });
      }
    }
    for (const mode of Object.keys(rates)) rate[`${mode}${procs}`] = median(at(rates, mode));
    figure('throughput', `claims/s, ${procs} process${procs > 1 ? 'es' : ''}: raw better-sqlite3`, at(rate, `raw${procs}`), '/s', '', null);
    figure('throughput', `claims/s, ${procs} process${procs > 1 ? 'es' : ''}: plainjob`, at(rate, `plainjob${procs}`), '/s', '', null);
    figure('throughput', `claims/s, ${procs} process${procs > 1 ? 'es' : ''}: inbox library`, at(rate, `lib${procs}`), '/s', '', null);
    const vsRaw = at(rate, `lib${procs}`) / at(rate, `raw${procs}`);
    const vsPeer = at(rate, `lib${procs}`) / at(rate, `plainjob${procs}`);
    figure('throughput', `inbox library / raw, ${procs} process${procs > 1 ? 'es' : ''}`, vsRaw, 'x', '>= 0.5', vsRaw >= 0.5);
    figure('throughput', `inbox library / plainjob, ${procs} process${procs > 1 ? 'es' : ''}`, vsPeer, 'x', '>= 1.0', vsPeer >= 1.0);
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Wake-up latency and idle cost of the waits

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

async function wakeups() {
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
  const message = conn.prepare("insert into inbox_messages (thread_id, author, kind, body, payload, created_at) values (?, ?, ?, 'x', null, ?)");
  const openThread = conn.prepare(
    "insert into inbox_threads (id, subject, assigned_to, created_by, state, claim_count, created_at, updated_at) values (?, 'wake', 'sleeper', 'leader', 'open', 0, ?, ?)",
  );
  const kinds = {
    'orch wait': {
      args: () => orch(db, 'wait', '--run', 'w', '--for', 'task_progress', '--timeout-seconds', '20'),
      commit: () => message.run(att.thread_id, 'worker', 'progress', Date.now()),
    },
    'inbox wait': {
      args: () => {
        const last = /** @type {{ id: number }} */ (conn.prepare('select max(id) as id from inbox_messages').get()).id;
        return inbox(db, 'wait', '--thread', att.thread_id, '--agent', 'worker', '--after-message', String(last), '--timeout-seconds', '20');
      },
      commit: () => message.run(att.thread_id, 'leader', 'note', Date.now()),
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

// ---------------------------------------------------------------------------------------------
// 4. Scale: 10,000 tasks and 30,000 dependency edges

function scale() {
  const db = path.join(tmp, 'scale.db');
  const tasks = quick ? 2000 : 10_000;
  const edges = tasks * 3;
  ok(inbox(db, 'init'));
  ok(orch(db, 'run', 'init', '--run', 'big', '--goal', 'scale'));
  const conn = new Database(db);
  const now = Date.now();
  const addTask = conn.prepare(
    "insert into orch_tasks (run_id, id, title, summary, default_to, acceptance, priority, state, created_at, updated_at) values ('big', ?, ?, null, 'w', null, 0, 'pending', ?, ?)",
  );
  const addEdge = conn.prepare("insert or ignore into orch_dependencies (run_id, task_id, depends_on, created_at) values ('big', ?, ?, ?)");
  conn.transaction(() => {
    for (let i = 0; i < tasks; i++) addTask.run(`T${i}`, `task ${i}`, now, now);
    let made = 0;
    // Tasks 0..99 have no dependencies (ready); every other task depends on earlier ones only (acyclic).
    while (made < edges) {
      const t = 100 + Math.floor(Math.random() * (tasks - 100));
      const d = Math.floor(Math.random() * t);
      made += addEdge.run(`T${t}`, `T${d}`, now).changes;
    }
  })();
  conn.close();
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
  /** @type {Record<string, Timing[]>} */
  const samples = Object.fromEntries(Object.keys(ops).map((x) => [x, []]));
  for (let round = 0; round < (quick ? 3 : 5); round++) {
    for (const x of Object.keys(ops)) at(samples, x).push(timed(at(ops, x)()));
  }
  const base = median(at(samples, 'node -e 0').map((s) => s.ms));
  /** @type {Record<string, number>} */
  const targets = { ready: 2, 'status --json': 10, 'dep add': 2, dispatch: 2 };
  for (const [x, target] of Object.entries(targets)) {
    const ms = median(at(samples, x).map((s) => s.ms));
    const rss = median(at(samples, x).map((s) => s.rssKiB));
    figure(
      'scale',
      `${x} (${tasks} tasks, ${edges} edges) / node -e 0`,
      ms / base,
      'x',
      x === 'dep add' ? '(none)' : `<= ${target}`,
      x === 'dep add' ? null : ms / base <= target,
      `${ms.toFixed(0)} ms${TIME ? `, peak RSS ${Math.round(rss / 1024)} MiB` : ''}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------

const started = performance.now();
try {
  console.log(`bench: measuring in ${tmp}${quick ? ' (quick)' : ''} ...`);
  if (part('cli')) cliLatency();
  if (part('throughput')) await throughput();
  if (part('wake')) await wakeups();
  if (part('scale')) scale();
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
  if (baseline) fs.rmSync(baseline.dir, { recursive: true, force: true });
}
const seconds = (performance.now() - started) / 1000;
const fmt = (/** @type {number} */ v) => (Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const rows = [
  ['FIGURE', 'VALUE', 'TARGET', 'MET', 'NOTE'],
  ...figures.map((f) => [f.name, `${fmt(f.value)} ${f.unit}`, f.target, f.met === null ? '' : f.met ? 'yes' : 'NO', f.note]),
];
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
const line = (/** @type {string[]} */ r) =>
  r
    .map((c, j) => (j === r.length - 1 ? c : c.padEnd(widths[j] ?? 0)))
    .join('  ')
    .trimEnd();
console.log(`\n${line(rows[0])}`);
for (const g of [...new Set(figures.map((f) => f.group))]) {
  console.log(`[${g}]`);
  figures.forEach((f, i) => f.group === g && console.log(line(rows[i + 1])));
}
const missed = figures.filter((f) => f.met === false);
fs.mkdirSync(OUT, { recursive: true });
fs.writeFileSync(
  path.join(OUT, 'bench.json'),
  `${JSON.stringify({ at: new Date().toISOString(), node: process.version, cpus: os.cpus().length, quick, only: only ?? null, seconds, figures }, null, 2)}\n`,
);
console.log(
  `\n${figures.filter((f) => f.met === true).length} targets met, ${missed.length} missed; ${seconds.toFixed(0)} s; figures in test-results/bench.json`,
);
