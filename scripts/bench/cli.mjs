// 1. CLI latency and memory, small run, interleaved with `node -e 0` (and with the CLIs of
//    --baseline=REF, each on its own database, when given)
import path from 'node:path';
import { at, figure, INBOX, median, ORCH, ok, quick, TIME, timed, tmp } from './common.mjs';

const ROUNDS = quick ? 5 : 15;
const BEFORE = 'baseline: ';

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

/**
 * @param {import('./baseline.mjs').BaselineBuild | undefined} baseline the CLIs built from --baseline=REF
 */
export function cliLatency(baseline) {
  const current = latencyOps({ inbox: INBOX, orch: ORCH }, path.join(tmp, 'small.db'));
  const before = baseline ? latencyOps(baseline, path.join(tmp, 'baseline.db')) : {};
  /** @type {Record<string, () => string[]>} */
  const ops = { 'node -e 0': () => ['-e', '0'], ...current, ...Object.fromEntries(Object.entries(before).map(([k, f]) => [`${BEFORE}${k}`, f])) };
  /** @type {Record<string, import('./common.mjs').Timing[]>} */
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
