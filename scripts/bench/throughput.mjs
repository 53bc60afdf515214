// 2. Claim throughput: library vs raw better-sqlite3 vs plainjob, 1 and 4 processes
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { at, figure, inbox, median, OUT, ok, quick, ROOT, tmp } from './common.mjs';

/**
 * Bundles scripts/bench/NAME.ts (the worker processes, or what the bench itself uses of the
 * library) into test-results/bench/NAME.cjs; returns that path.
 *
 * @param {string} [name]
 */
export async function bundleWorker(name = 'worker') {
  const dir = path.join(OUT, 'bench');
  fs.mkdirSync(dir, { recursive: true });
  const out = path.join(dir, `${name}.cjs`);
  await build({
    entryPoints: [path.join(ROOT, `scripts/bench/${name}.ts`)],
    outfile: out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // pg-native: an optional binding of the pg driver, not used.
    external: ['better-sqlite3', 'pg-native'],
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
 * Starts `procs` worker processes in `mode` on `db` (a file or a postgres:// URL), lets them go
 * together once all are ready, and returns what each reports.
 *
 * @param {string} worker
 * @param {string} mode
 * @param {string} db
 * @param {number} procs
 * @returns {Promise<{ claimed: number, ms: number }[]>}
 */
export function runWorkers(worker, mode, db, procs) {
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

export async function throughput() {
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
