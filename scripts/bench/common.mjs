// What every part of the bench shares: the paths of the CLIs, the temporary directory, the list of
// figures and the helpers that time a command and sum up samples.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const INBOX = path.join(ROOT, 'packages/inbox/dist/inbox.cjs');
export const ORCH = path.join(ROOT, 'packages/orch/dist/orch.cjs');
export const OUT = path.join(ROOT, 'test-results');
export const TIME = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
export const quick = process.argv.includes('--quick');

/** The directory every part measures in, made by makeTmp() once the CLIs are known to be there. */
export let tmp = '';
export function makeTmp() {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-bench-'));
  return tmp;
}
/**
 * @typedef {{ group: string, name: string, value: number, unit: string, target: string, met: boolean | null, note: string }} Figure
 * @typedef {{ ms: number, rssKiB: number, cpu: number, stdout: string }} Timing
 */
/** @type {Figure[]} */
export const figures = [];

/**
 * @param {string} group
 * @param {string} name
 * @param {number} value
 * @param {string} unit
 * @param {string} target
 * @param {boolean | null} met
 * @param {string} [note]
 */
export function figure(group, name, value, unit, target, met, note = '') {
  figures.push({ group, name, value, unit, target, met, note });
}

/**
 * `record[key]`, which must be there.
 * @template T
 * @param {Record<string, T>} record
 * @param {string} key
 * @returns {T}
 */
export function at(record, key) {
  const value = record[key];
  if (value === undefined) throw new Error(`bench: no ${key}`);
  return value;
}

export const median = (/** @type {number[]} */ xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const percentile = (/** @type {number[]} */ xs, /** @type {number} */ p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

/** Runs node with args; returns wall ms and (with /usr/bin/time) peak RSS in KiB and CPU seconds. */
/**
 * @param {string[]} args
 * @param {{ cwd?: string, expect?: number }} [options]
 * @returns {Timing}
 */
export function timed(args, { cwd = tmp, expect = 0 } = {}) {
  const argv = TIME ? [TIME, '-f', '@@%M %U %S', process.execPath, ...args] : [process.execPath, ...args];
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { cwd, encoding: 'utf8', maxBuffer: 1 << 30 });
  const ms = performance.now() - t0;
  const m = TIME ? /@@(\d+) ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr) : null;
  if (r.status !== expect) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, rssKiB: m ? Number(m[1]) : NaN, cpu: m ? Number(m[2]) + Number(m[3]) : NaN, stdout: r.stdout };
}

export const inbox = (/** @type {string} */ db, /** @type {string[]} */ ...args) => [INBOX, '--db', db, '--json', ...args];
export const orch = (/** @type {string} */ db, /** @type {string[]} */ ...args) => [ORCH, '--db', db, '--json', ...args];
export const ok = (/** @type {string[]} */ args) => JSON.parse(timed(args).stdout);
