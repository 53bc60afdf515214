// 7. `orch serve` over loopback (SQLite, then PostgreSQL when the bench's server is there): round trips of a claim, a progress and a `status` of 20
//    tasks; requests a second from 16 concurrent clients; commit → SSE event at a subscriber; the
//    server's RSS idle and under that load. One real `orch serve` process, keep-alive connections.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { figure, INBOX, median, ok, ORCH, percentile, quick, tmp } from './common.mjs';
import { SERVER } from './postgres.mjs';

const ROUNDS = quick ? 100 : 500;
const LOAD_MS = quick ? 2000 : 5000;
const SSE_ROUNDS = quick ? 30 : 100;

/** Starts `orch serve --port 0` on `db` (no rate limit); resolves with its URL and pid. */
function startServe(/** @type {string} */ db) {
  const child = spawn(process.execPath, [ORCH, '--db', db, '--json', 'serve', '--port', '0', '--rate-limit', '0', '--max-streams', '1000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n'))
        resolve({
          url: JSON.parse(out.split('\n')[0]).url,
          pid: child.pid,
          stop: () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
    });
    exited.then((code) => reject(new Error(`orch serve exited ${code}`)));
  });
}

/** The server's resident set size in MiB (from /proc). */
function rssMiB(/** @type {number} */ pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function serverBench() {
  const db = path.join(tmp, 'server.db');
  ok([INBOX, '--db', db, '--json', 'init']);
  await benchOn(db, 'server', true);
  // The same on PostgreSQL, when the bench's server is there (a schema made and dropped here).
  if (!process.env.PGUSER && new URL(SERVER).username === '') process.env.PGUSER = os.userInfo().username;
  const admin = new pg.Client({ connectionString: SERVER, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (err) {
    figure('server (PostgreSQL)', 'claim over HTTP p50', NaN, '', '', null, `skipped: no server (${err instanceof Error ? err.message : String(err)})`);
    return;
  }
  const schema = `bench_${process.pid}_server`;
  try {
    const url = `${SERVER}${SERVER.includes('?') ? '&' : '?'}schema=${schema}`;
    ok([INBOX, '--db', url, '--json', 'init']);
    await benchOn(url, 'server (PostgreSQL)', false);
  } finally {
    await admin.query(`drop schema if exists "${schema}" cascade`).catch(() => undefined);
    await admin.end();
  }
}

/**
 * The figures of one served database.
 * @param {string} db
 * @param {string} group
 * @param {boolean} targets whether the targets (SQLite's) apply
 */
async function benchOn(db, group, targets) {
  const server = /** @type {{ url: string, pid: number, stop: () => Promise<unknown> }} */ (await startServe(db));
  const { hostname, port } = new URL(server.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  /** @returns {Promise<any>} */
  const call = (/** @type {string} */ route, /** @type {unknown} */ body) =>
    new Promise((resolve, reject) => {
      const text = JSON.stringify(body);
      const req = http.request(
        {
          hostname,
          port,
          path: `/v1/${route}`,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (data += d));
          res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(data)) : reject(new Error(`${route}: ${res.statusCode} ${data}`))));
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  const timedCall = async (/** @type {string} */ route, /** @type {unknown} */ body, /** @type {number[]} */ into) => {
    const t0 = performance.now();
    const r = await call(route, body);
    into.push(performance.now() - t0);
    return r;
  };
  try {
    await call('orch/run/init', { run: 'bench', goal: 'bench' });
    for (let i = 0; i < 20; i++) await call('orch/task/add', { run: 'bench', task: `t${i}`, title: `task ${i}`, defaultTo: 'w' });
    // Warm-up, then the figures.
    for (let i = 0; i < 50; i++) await call('inbox/list', { agent: 'w' });
    const idleRss = rssMiB(server.pid);
    /** @type {number[]} */ const claims = [];
    /** @type {number[]} */ const progress = [];
    /** @type {number[]} */ const status = [];
    for (let i = 0; i < ROUNDS; i++) {
      await call('inbox/send', { to: 'bench-w', subject: `s${i}`, body: 'b' });
      const c = await timedCall('inbox/claim', { agent: 'bench-w' }, claims);
      await timedCall('inbox/progress', { thread: c.thread.id, lease: c.lease.token, body: 'p' }, progress);
      await call('inbox/result', { thread: c.thread.id, lease: c.lease.token, body: 'r' });
      if (i % 5 === 0) await timedCall('orch/status', { run: 'bench' }, status);
    }
    const claimP50 = median(claims);
    figure(
      group,
      'claim over HTTP p50',
      claimP50,
      'ms',
      targets ? '<= 5 ms (SQLite)' : '',
      targets ? claimP50 <= 5 : null,
      `p99 ${percentile(claims, 99).toFixed(1)} ms`,
    );
    figure(group, 'progress over HTTP p50', median(progress), 'ms', '', null, `p99 ${percentile(progress, 99).toFixed(1)} ms`);
    figure(group, 'status (20 tasks) over HTTP p50', median(status), 'ms', '', null, `p99 ${percentile(status, 99).toFixed(1)} ms`);

    // 16 clients, each a worker's cycle (send, claim, progress, result) as fast as it goes.
    let requests = 0;
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMiB(server.pid))), 100);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        while (performance.now() - t0 < LOAD_MS) {
          await call('inbox/send', { to: `load-${w}`, subject: 's', body: 'b' });
          const c = await call('inbox/claim', { agent: `load-${w}` });
          await call('inbox/progress', { thread: c.thread.id, lease: c.lease.token, body: 'p' });
          await call('inbox/result', { thread: c.thread.id, lease: c.lease.token, body: 'r' });
          requests += 4;
        }
      }),
    );
    clearInterval(sampler);
    const rps = requests / ((performance.now() - t0) / 1000);
    figure(group, 'requests/s, 16 clients', rps, 'req/s', '', null, 'send, claim, progress, result cycles');
    figure(group, 'server RSS idle', idleRss, 'MiB', '', null);
    figure(group, 'server RSS under 16 clients (peak)', peakRss, 'MiB', '', null);

    // Commit → SSE: a reply committed (its answer received) to its message at a subscriber.
    const sent = await call('inbox/send', { to: 'sse-w', subject: 'sse', body: 'first' });
    const thread = sent.thread.id;
    /** @type {Map<number, number>} */ const arrived = new Map();
    let onMessage = () => undefined;
    const sse = http.get({ hostname, port, path: `/v1/threads/${thread}/messages?after=${sent.message.id}`, agent: false }, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buffer += d;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const id = /^id: (\d+)$/m.exec(block);
          if (id) arrived.set(Number(id[1]), performance.now());
          onMessage();
        }
      });
    });
    await new Promise((r) => setTimeout(r, 300));
    /** @type {number[]} */ const wake = [];
    for (let i = 0; i < SSE_ROUNDS; i++) {
      const reply = await call('inbox/reply', { thread, body: `r${i}` });
      const committed = performance.now();
      while (!arrived.has(reply.message.id)) await new Promise((r) => (onMessage = /** @type {any} */ (r)));
      wake.push(Math.max(0, /** @type {number} */ (arrived.get(reply.message.id)) - committed));
      await new Promise((r) => setTimeout(r, 20));
    }
    sse.destroy();
    const wakeP50 = median(wake);
    const wakeP99 = percentile(wake, 99);
    figure(group, 'commit -> SSE event p50', wakeP50, 'ms', '<= 20 ms', wakeP50 <= 20);
    figure(group, 'commit -> SSE event p99', wakeP99, 'ms', '<= 100 ms', wakeP99 <= 100);
  } finally {
    agent.destroy();
    await server.stop();
  }
}
