/// <reference lib="dom" />
// 8. The live board (issue 18) in Debian's chromium, driven by playwright-core against a real `orch
//    serve`: a commit → the change visible in the page (p50, p99; a leader's write seen on the run
//    page and a worker's on the task page), the first load's weight (gzipped bytes of index.html,
//    board.js and board.css as served) and the run page with 1,000 tasks (the page's main-thread
//    script time, from the DevTools protocol's Performance.getMetrics). Skipped, saying so, without
//    chromium or without the built board.
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { figure, inbox, ok, orch, ORCH, percentile, quick, tmp } from './common.mjs';

const CHROMIUM = process.env.ORCH_TEST_CHROMIUM ?? '/usr/bin/chromium';
const CHANGES = quick ? 20 : 50;
const BIG = 1000;
const GROUP = 'board';

/** Starts `orch serve --port 0` on `db` (no rate limit); resolves with its URL and a stop function. */
function startServe(/** @type {string} */ db) {
  const child = spawn(process.execPath, [ORCH, '--db', db, '--json', 'serve', '--port', '0', '--rate-limit', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return /** @type {Promise<{ url: string, stop: () => Promise<unknown> }>} */ (
    new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n'))
          resolve({
            url: JSON.parse(out.split('\n')[0]).url,
            stop: () => {
              child.kill('SIGTERM');
              return exited;
            },
          });
      });
      exited.then((code) => reject(new Error(`orch serve exited ${code}`)));
    })
  );
}

/** GETs `url` asking for gzip; resolves with the status and the bytes on the wire (not decompressed). */
function wireBytes(/** @type {string} */ url) {
  return /** @type {Promise<{ status: number, bytes: number, encoding: string }>} */ (
    new Promise((resolve, reject) => {
      http
        .get(url, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
          let bytes = 0;
          res.on('data', (d) => (bytes += d.length));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, encoding: String(res.headers['content-encoding'] ?? 'identity') }));
        })
        .on('error', reject);
    })
  );
}

/** POSTs a command to the server (the page's own API); throws on a refusal. */
async function call(/** @type {string} */ url, /** @type {string} */ command, /** @type {Record<string, unknown>} */ input) {
  const r = await fetch(`${url}/v1/${command}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(input) });
  if (!r.ok) throw new Error(`${command}: ${r.status} ${await r.text()}`);
  return r.json();
}

/** Bulk rows (a bench shortcut, like scale.mjs): `n` tasks in run `run`, each of most depending on one or two earlier ones. */
function bulkTasks(/** @type {string} */ db, /** @type {string} */ run, /** @type {number} */ n) {
  const conn = new Database(db);
  const now = Date.now();
  const addTask = conn.prepare(
    "insert into orch_tasks (run_id, id, title, summary, default_to, acceptance, priority, state, created_at, updated_at) values (?, ?, ?, null, 'w', null, 0, 'pending', ?, ?)",
  );
  const addEdge = conn.prepare('insert or ignore into orch_dependencies (run_id, task_id, depends_on, created_at) values (?, ?, ?, ?)');
  conn.transaction(() => {
    for (let i = 0; i < n; i++) addTask.run(run, `T${i}`, `task ${i}: a title of a usual length`, now, now);
    // Tasks 0..49 are roots (ready); every other depends on one or two earlier ones (acyclic).
    for (let i = 50; i < n; i++) {
      addEdge.run(run, `T${i}`, `T${Math.floor(Math.random() * i)}`, now);
      if (i % 3 === 0) addEdge.run(run, `T${i}`, `T${Math.floor(Math.random() * i)}`, now);
    }
  })();
  conn.close();
}

export async function boardBench() {
  if (!fs.existsSync(CHROMIUM)) {
    figure(GROUP, 'commit -> visible in the page p50', NaN, '', '<= 300 ms', null, `skipped: no chromium at ${CHROMIUM}`);
    return;
  }
  const db = path.join(tmp, 'board.db');
  ok(inbox(db, 'init'));
  ok(orch(db, 'run', 'init', '--run', 'live', '--goal', 'bench the board'));
  ok(orch(db, 'run', 'init', '--run', 'big', '--goal', `${BIG} tasks`));
  bulkTasks(db, 'big', BIG);
  const server = await startServe(db);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  try {
    // First load: the three files the page needs before it shows anything, gzipped as served.
    const files = ['/', '/assets/board.js', '/assets/board.css'];
    const served = await Promise.all(files.map((f) => wireBytes(`${server.url}${f}`)));
    const missing = files.filter((_, i) => served[i]?.status !== 200);
    if (missing.length > 0) {
      figure(
        GROUP,
        'commit -> visible in the page p50',
        NaN,
        '',
        '<= 300 ms',
        null,
        `skipped: the server does not serve ${missing.join(', ')} (board not built?)`,
      );
      return;
    }
    const weight = served.reduce((sum, s) => sum + s.bytes, 0) / 1024;
    const note = files.map((f, i) => `${f} ${((served[i]?.bytes ?? 0) / 1024).toFixed(1)} KB ${served[i]?.encoding}`).join(', ');
    figure(GROUP, 'first load (index.html + board.js + board.css, gzipped)', weight, 'KB', '<= 150 KB', weight <= 150, note);

    await measured("leader's commit -> visible p50", () => commitToVisible(browser, server.url));
    await measured(`run page with ${BIG} tasks: script time`, () => bigRunPage(browser, server.url));
  } finally {
    await browser.close();
    await server.stop();
  }
}

/** Runs one measurement; a failure (the page never showed what it waits for) is a figure saying so, not the end of the bench. */
async function measured(/** @type {string} */ name, /** @type {() => Promise<void>} */ fn) {
  try {
    await fn();
  } catch (err) {
    figure(GROUP, name, NaN, '', '', null, `failed: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`);
  }
}

/**
 * Commit -> visible, two ways: a leader's write (a task added: its card on the run page) and a
 * worker's (a progress message: one more message on the task page), each over the API, timed from
 * just before the request until the page's DOM shows it (a MutationObserver in the page, installed
 * before the write).
 * @param {import('playwright-core').Browser} browser
 * @param {string} url
 */
async function commitToVisible(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${url}/#/runs/live`);
  await page.waitForSelector('[data-testid=run-page]');
  await call(url, 'orch/task/add', { run: 'live', task: 'warm', title: 'warm up' });
  await page.waitForSelector('[data-testid=card][data-task="warm"]');
  const leader = await timeChanges(
    page,
    (i) => ({ selector: `[data-testid=card][data-task="c${i}"]`, count: 1 }),
    (i) => call(url, 'orch/task/add', { run: 'live', task: `c${i}`, title: `change ${i}` }),
  );
  figure(GROUP, `leader's commit -> visible p50 (${CHANGES} task adds, run page)`, percentile(leader, 50), 'ms', '<= 300 ms', percentile(leader, 50) <= 300);
  figure(GROUP, "leader's commit -> visible p99", percentile(leader, 99), 'ms', '(none)', null);

  await call(url, 'orch/dispatch', { run: 'live', task: 'warm', executionMode: 'analysis', to: 'bench-w', body: 'go' });
  const claim = /** @type {{ thread: { id: string }, lease: { token: string } }} */ (await call(url, 'inbox/claim', { agent: 'bench-w' }));
  await page.evaluate(() => {
    window.location.hash = '#/runs/live/tasks/warm';
  });
  await page.waitForSelector('[data-testid=task-page] [data-testid=message]');
  const worker = await timeChanges(
    page,
    (i) => ({ selector: '[data-testid=message][data-kind=progress]', count: i + 1 }),
    (i) => call(url, 'inbox/progress', { thread: claim.thread.id, lease: claim.lease.token, body: `step ${i}` }),
  );
  figure(
    GROUP,
    `worker's commit -> visible p50 (${CHANGES} progress messages, task page)`,
    percentile(worker, 50),
    'ms',
    '<= 300 ms',
    percentile(worker, 50) <= 300,
  );
  figure(GROUP, "worker's commit -> visible p99", percentile(worker, 99), 'ms', '(none)', null);
  await page.close();
}

/** The page refetches on the first change tick after 250 ms without one and coalesces the ticks within that window into one refetch at its end. */
const QUIET_MS = 300;

/**
 * CHANGES rounds of `write(i)`, each timed from just before the write until the page holds
 * `target(i).count` elements matching `target(i).selector` (watched from before the write). Each
 * round starts after a quiet spell of QUIET_MS: a commit after a pause is seen at once, while a
 * commit within 250 ms of the page's last refetch waits for the end of that window (by design: it
 * bounds a tab's requests under a burst of commits), which back-to-back rounds would measure.
 * @param {import('playwright-core').Page} page
 * @param {(i: number) => { selector: string, count: number }} target
 * @param {(i: number) => Promise<unknown>} write
 */
async function timeChanges(page, target, write) {
  /** @type {number[]} */
  const samples = [];
  for (let i = 0; i < CHANGES; i++) {
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    await page.evaluate(({ selector, count }) => {
      const w = /** @type {any} */ (window);
      w.__seen = new Promise((resolve) => {
        const done = () => document.querySelectorAll(selector).length >= count;
        if (done()) return resolve(true);
        const obs = new MutationObserver(() => {
          if (done()) {
            obs.disconnect();
            resolve(true);
          }
        });
        obs.observe(document, { subtree: true, childList: true, attributes: true });
      });
    }, target(i));
    const t0 = performance.now();
    await write(i);
    await page.evaluate(() => /** @type {any} */ (window).__seen);
    samples.push(performance.now() - t0);
  }
  return samples;
}

/**
 * The run page with 1,000 tasks: main-thread script time until the kanban shows and the DAG holds
 * every node (the layout runs in a Web Worker, whose time is not the page's).
 * @param {import('playwright-core').Browser} browser
 * @param {string} url
 */
async function bigRunPage(browser, url) {
  const big = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const cdp = await big.context().newCDPSession(big);
  await cdp.send('Performance.enable');
  const t0 = performance.now();
  await big.goto(`${url}/#/runs/big`);
  // The kanban shows a column's first cards and a count (not 1,000 cards): its first card is the mark.
  await big.waitForFunction(() => document.querySelectorAll('[data-testid=kanban] [data-testid=card]').length > 0, undefined, { timeout: 120_000 });
  const kanbanMs = performance.now() - t0;
  await big.waitForFunction((n) => document.querySelectorAll('[data-testid=dag-node]').length >= n, BIG, { timeout: 120_000 });
  const dagMs = performance.now() - t0;
  const layoutMs = Number(await big.getAttribute('[data-testid=dag]', 'data-layout-ms'));
  const { metrics } = /** @type {{ metrics: { name: string, value: number }[] }} */ (await cdp.send('Performance.getMetrics'));
  const metric = (/** @type {string} */ name) => metrics.find((m) => m.name === name)?.value ?? NaN;
  const script = metric('ScriptDuration') * 1000;
  figure(
    GROUP,
    `run page with ${BIG} tasks: script time`,
    script,
    'ms',
    '< 1000 ms',
    script < 1000,
    `layout ${(metric('LayoutDuration') * 1000).toFixed(0)} ms, style ${(metric('RecalcStyleDuration') * 1000).toFixed(0)} ms`,
  );
  figure(GROUP, `run page with ${BIG} tasks: kanban shown (wall)`, kanbanMs, 'ms', '(none)', null, 'from navigation to the first card of the kanban');
  figure(
    GROUP,
    `run page with ${BIG} tasks: DAG drawn (wall)`,
    dagMs,
    'ms',
    '(none)',
    null,
    `from navigation to every node in the DOM; the layout in the Web Worker: ${Number.isNaN(layoutMs) ? 'not reported' : `${layoutMs.toFixed(0)} ms`}`,
  );
  await big.close();
}
