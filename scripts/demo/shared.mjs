// What the demo's leader and its scripted agents share: the CLIs, the run's names, and helpers that
// run a CLI or git and show a command line the way a person would type it.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The demo's entry, which `inbox work` starts with --agent-step to play an agent. */
export const ENTRY = path.join(root, 'scripts/demo.mjs');
export const BIN = {
  inbox: path.join(root, 'packages/inbox/dist/inbox.cjs'),
  orch: path.join(root, 'packages/orch/dist/orch.cjs'),
  'orch-worker-brief': path.join(root, 'packages/worker-brief/dist/orch-worker-brief.cjs'),
};
// Every process runs in the temporary directory, so commands read as shown. With --remote, the
// database is served by `orch serve` and DB becomes its URL once it listens (see useDb).
export let DB = 'coord.db';
/** `npm run demo -- --remote`: every command after `init` goes through `orch serve` over loopback HTTP. */
export const REMOTE = process.argv.includes('--remote');
/** @param {string} location */
export function useDb(location) {
  DB = location;
}
export const RUN = 'demo';
export const WAIT_SECONDS = 30; // a safety net only: nothing here should ever wait that long

/**
 * A CLI's --json output, as far as the demo reads it: the lists it walks are typed, the rest is open.
 * @typedef {{ [field: string]: any }} Row
 * @typedef {{ tasks: Row[], events: Row[], handled: Row[], commits: Row[], files: Row[], attempts: Row[], [field: string]: any }} Out
 */

/** @param {string} a */
export const quote = (a) => (a === '' || /[^\w@%+=:,./-]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a);

/**
 * How a command line reads to a person: arguments with spaces or quotes in single quotes.
 * @param {string} tool
 * @param {string[]} args
 */
export function shown(tool, args) {
  return `${tool} ${args.map(quote).join(' ')}`;
}

/**
 * Runs one of the CLIs (with --db and, unless `text`, --json) and returns its parsed output.
 * @param {keyof typeof BIN} tool
 * @param {string[]} args
 * @param {{ cwd?: string, text?: boolean }} [options]
 * @returns {any} the JSON document, or the text with `text` and for orch-worker-brief
 */
export function cli(tool, args, { cwd, text = false } = {}) {
  const full = tool === 'orch-worker-brief' ? ['--db', DB, ...args] : ['--db', DB, ...(text ? [] : ['--json']), ...args];
  const r = spawnSync(process.execPath, [BIN[tool], ...full], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  if (r.status !== 0) throw new Error(`${tool} ${args[0]} ${r.signal ? `was killed by ${r.signal}` : `exited ${r.status}: ${(r.stderr || r.stdout).trim()}`}`);
  return text || tool === 'orch-worker-brief' ? r.stdout : JSON.parse(r.stdout);
}

/**
 * Runs git and expects success; returns its stdout.
 * @param {string} cwd
 * @param {string[]} args
 */
export function git(cwd, args) {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** @type {(s: string, n?: number) => string} */
export const clip = (s, n = 72) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
/** @param {string} s */
export const oneLine = (s) => s.replace(/\s+/g, ' ').trim();
