import fs from 'node:fs';
import path from 'node:path';
import { ROOT, commitAll, inbox, makeGitRepo, orch, tempDir, type CliRun } from './helpers.ts';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';

/**
 * One real session through every command with --json, for test/docs.test.ts to hold docs/json.md
 * against: each documented shape is looked up here by its label (`inbox claim`, `orch status`, ...).
 */

const BRIEF_BIN = path.join(ROOT, 'packages/worker-brief/dist/orch-worker-brief.cjs');

function parsed(label: string, r: CliRun): unknown {
  if (r.code !== 0) throw new Error(`${label} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Every documented command's real --json output (and an error), by label. */
export function realOutputs(): Record<string, any> {
  const dir = tempDir('orch-docs-');
  const db = path.join(dir, 'coord.db');
  const out: Record<string, any> = {};
  const ib = (label: string, args: string[]): any => (out[label] = parsed(label, inbox(['--db', db, '--json', ...args], { cwd: dir })));
  const ob = (label: string, args: string[], cwd = dir): any => (out[label] = parsed(label, orch(['--db', db, '--json', ...args], { cwd })));
  const quiet = (args: string[]): any => parsed(args.join(' '), inbox(['--db', db, '--json', ...args], { cwd: dir }));
  const quietOrch = (args: string[], cwd = dir): any => parsed(args.join(' '), orch(['--db', db, '--json', ...args], { cwd }));

  // inbox
  ib('inbox init', ['init']);
  const th = ib('inbox send', ['send', '--to', 'w1', '--subject', 'Summarize flaky tests', '--body', 'Read the CI logs.']).thread.id as string;
  ib('inbox list', ['list']);
  ib('inbox show', ['show', '--thread', th]);
  const lease = ib('inbox claim', ['claim', '--agent', 'w1']).lease.token as string;
  ib('inbox claim (nothing to claim)', ['claim', '--agent', 'w1']);
  ib('inbox heartbeat', ['heartbeat', '--thread', th, '--lease', lease]);
  ib('inbox progress', ['progress', '--thread', th, '--lease', lease, '--body', 'half way']);
  ib('inbox ask', ['ask', '--thread', th, '--lease', lease, '--body', 'Keep the v1 API?']);
  ib('inbox reply', ['reply', '--thread', th, '--body', 'Drop it.']);
  ib('inbox wait', ['wait', '--thread', th, '--lease', lease, '--timeout-seconds', '5']);
  ib('inbox result', ['result', '--thread', th, '--lease', lease, '--body', 'Done.']);
  const th2 = quiet(['send', '--to', 'w2', '--subject', 'second', '--body', 'do B']).thread.id as string;
  const l2 = quiet(['claim', '--agent', 'w2']).lease.token as string;
  ib('inbox release', ['release', '--thread', th2, '--lease', l2]);
  const l3 = quiet(['claim', '--agent', 'w2']).lease.token as string;
  ib('inbox fail', ['fail', '--thread', th2, '--lease', l3, '--body', 'It does not build.']);
  quiet(['send', '--to', 'runner-w', '--subject', 'third', '--body', 'say hi']);
  ib('inbox work', ['work', '--agent', 'runner-w', '--once', '--', process.execPath, '-e', 'console.log("hi")']);
  // A lease left to run out, so doctor has a problem to report.
  quiet(['send', '--to', 'w3', '--subject', 'fourth', '--body', 'do D']);
  quiet(['claim', '--agent', 'w3', '--lease-seconds', '1']);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1100);
  ib('inbox doctor', ['doctor']);
  // Copied to the PostgreSQL server the suites use, into schemas dropped again at the end.
  const schemas = [1, 2].map(() => `t_docs_${crypto.randomBytes(6).toString('hex')}`);
  const copy = (label: string, cli: typeof inbox, schema: string) =>
    (out[label] = parsed(label, cli(['--json', 'copy', '--from', db, '--to', `postgres://127.0.0.1:5432/test?schema=${schema}`], { cwd: dir })));
  copy('inbox copy', inbox, schemas[0] as string);

  // orch: an analysis task answered, failed, retried and reassigned; a code task merged.
  const repo = makeGitRepo(dir);
  ob('orch run init', ['run', 'init', '--run', 'r1', '--goal', 'Build blog MVP']);
  ob('orch run show', ['run', 'show', '--run', 'r1']);
  ob('orch run list', ['run', 'list']);
  ob('orch task add', ['task', 'add', '--run', 'r1', '--task', 'T1', '--title', 'Skeleton', '--default-to', 'a1']);
  quietOrch(['task', 'add', '--run', 'r1', '--task', 'T2', '--title', 'Code', '--default-to', 'c1']);
  quietOrch(['task', 'add', '--run', 'r1', '--task', 'T3', '--title', 'Later']);
  ob('orch dep add', ['dep', 'add', '--run', 'r1', '--task', 'T3', '--depends-on', 'T1']);
  ob('orch ready', ['ready', '--run', 'r1']);
  const d1 = ob('orch dispatch', ['dispatch', '--run', 'r1', '--task', 'T1', '--execution-mode', 'analysis', '--body', 'Look around.']);
  const dispatchFile = path.join(dir, 't1-dispatch.json');
  fs.writeFileSync(dispatchFile, JSON.stringify(d1));
  const brief = spawnSync(process.execPath, [BRIEF_BIN, '--db', db, '--json', '--dispatch-json', dispatchFile], { cwd: dir, encoding: 'utf8' });
  out['orch-worker-brief'] = parsed('orch-worker-brief', { code: brief.status ?? -1, stdout: brief.stdout, stderr: brief.stderr });
  const t1 = d1.attempt.thread_id as string;
  const la = quiet(['claim', '--agent', 'a1', '--thread', t1]).lease.token as string;
  quiet(['ask', '--thread', t1, '--lease', la, '--body', 'Which framework?']);
  ob('orch reconcile', ['reconcile', '--run', 'r1']);
  ob('orch blocked', ['blocked', '--run', 'r1']);
  ob('orch answer', ['answer', '--run', 'r1', '--task', 'T1', '--body', 'None.']);
  quiet(['fail', '--thread', t1, '--lease', la, '--body', 'Stuck.']);
  ob('orch wait', ['wait', '--run', 'r1', '--after-event', '0', '--timeout-seconds', '5']);
  ob('orch retry', ['retry', '--run', 'r1', '--task', 'T1']);
  ob('orch reassign', ['reassign', '--run', 'r1', '--task', 'T1', '--to', 'a2']);
  ob('orch task show', ['task', 'show', '--run', 'r1', '--task', 'T1']);
  const d2 = quietOrch(['dispatch', '--run', 'r1', '--task', 'T2', '--execution-mode', 'code', '--body', 'Add app.js.'], repo);
  const t2 = d2.attempt.thread_id as string;
  const lc = quiet(['claim', '--agent', 'c1', '--thread', t2]).lease.token as string;
  fs.writeFileSync(path.join(d2.attempt.worktree_path, 'app.js'), 'console.log("hello");\n');
  commitAll(d2.attempt.worktree_path, 'Add app.js');
  quiet(['result', '--thread', t2, '--lease', lc, '--body', 'Added app.js.']);
  ob('orch diff', ['diff', '--run', 'r1', '--task', 'T2'], repo);
  ob('orch merge', ['merge', '--run', 'r1', '--task', 'T2'], repo);
  ob('orch status', ['status', '--run', 'r1']);
  ob('orch cleanup', ['cleanup', '--run', 'r1', '--all-completed'], repo);
  ob('orch cancel', ['cancel', '--run', 'r1', '--task', 'T3', '--reason', 'Out of scope']);
  ob('orch doctor', ['doctor', '--run', 'r1']);
  ib('inbox init (after orch run init)', ['init']);
  copy('orch copy', orch, schemas[1] as string);
  dropSchemas(schemas);
  // Tokens last: the copies above are of a database without server tables.
  const tok = ob('orch token create', ['token', 'create', '--role', 'worker', '--agent', 'a1', '--expires-in', '7d']);
  quietOrch(['token', 'create', '--role', 'leader']);
  ob('orch token revoke', ['token', 'revoke', '--token-id', tok.id]);
  ob('orch token list', ['token', 'list']);

  // An error: one JSON line on stderr.
  const missing = inbox(['--db', db, '--json', 'show', '--thread', 'th_missing'], { cwd: dir });
  out.error = JSON.parse(missing.stderr);
  return out;
}

/** Drops the copies' schemas on the server (a child process: this flow is synchronous). */
function dropSchemas(schemas: string[]): void {
  const script =
    "const pg = require('pg'); const c = new pg.Client({ host: '127.0.0.1', port: 5432, database: 'test', user: process.env.PGUSER || require('os').userInfo().username });" +
    `c.connect().then(() => c.query(${JSON.stringify(schemas.map((s) => `drop schema if exists ${s} cascade;`).join(' '))})).then(() => c.end(), (e) => { console.error(e.message); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dropping ${schemas.join(', ')} failed: ${r.stderr}`);
}
