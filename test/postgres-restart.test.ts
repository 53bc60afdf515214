// The PostgreSQL server restarting (or crashing) under long-lived processes: a running `orch wait`
// and a running `inbox work` reconnect and go on, and a lease held across the restart is still
// judged by the server's clock. These tests restart a private cluster of their own
// (test/pg-cluster.ts), never the shared server other test files use at the same time.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type CliRun, INBOX_BIN, ORCH_BIN, ROOT, tempDir, watchRun } from './helpers.ts';
import { type Cluster, describeCluster, startCluster } from './pg-cluster.ts';

/** Runs a built CLI to its end; a hang is killed after 120 s (then the exit code is not what the test expects). */
function cli(bin: string, args: string[]): CliRun {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
function okJson(bin: string, db: string, args: string[]) {
  const r = cli(bin, ['--db', db, '--json', ...args]);
  if (r.code !== 0) throw new Error(`${path.basename(bin)} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
/** Starts a built CLI as a long-running process; `done` rejects if it is still running after 180 s. */
function start(bin: string, args: string[], label: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [bin, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...env } });
  return watchRun(child, label, 180_000);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** libfaketime, when installed: it shifts the wall clock of a process (Date.now) but not its monotonic clock. */
const FAKETIME = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
].find((f) => fs.existsSync(f));

/**
 * The command `inbox work` runs (written into `dir`): it marks `started-<thread>`, waits for
 * `go-<thread>` (or `go-all`) in `dir`, works two more seconds and writes its result file.
 */
function job(dir: string): string {
  const file = path.join(dir, 'job.cjs');
  fs.writeFileSync(
    file,
    `const fs = require('node:fs');
const path = require('node:path');
const dir = ${JSON.stringify(dir)};
const id = process.env.INBOX_THREAD_ID;
fs.writeFileSync(path.join(dir, 'started-' + id), '');
const go = () => fs.existsSync(path.join(dir, 'go-' + id)) || fs.existsSync(path.join(dir, 'go-all'));
const tick = setInterval(() => {
  if (!go()) return;
  clearInterval(tick);
  setTimeout(() => fs.writeFileSync(process.env.INBOX_RESULT_FILE, 'result of ' + id), 2000);
}, 100);
`,
  );
  return file;
}

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(() => {
  cluster?.stop();
});

/** Rows of one query on the private server (a fresh connection: the server may have restarted since). */
async function rows<T = Record<string, unknown>>(schema: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: cluster.url(schema), options: `-c search_path="${schema}"` });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const parse = (oid: number, format?: 'text' | 'binary') =>
      oid === 20 || oid === 1700 ? (v: string) => Number(v) : (pg.types.getTypeParser(oid, format as 'text') as (v: string) => unknown);
    return (await client.query({ text, values: params, types: { getTypeParser: parse } })).rows as T[];
  } finally {
    await client.end();
  }
}

type Watched = ReturnType<typeof start>;

/** Polls `what` until it holds; fails at once (with its stderr) if `proc` exits meanwhile, instead of waiting for ever. */
async function until(what: () => Promise<boolean> | boolean, proc?: Watched): Promise<void> {
  while (!(await what())) {
    const child = proc?.child;
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`the process under test exited (${child.exitCode ?? child.signalCode}) while the test waited for it: ${proc?.stderr()}`);
    }
    await sleep(100);
  }
}

/** Waits until a connection of our CLIs sits in LISTEN (a waiting `orch wait`, an idle runner: `proc`). */
async function listening(proc: Watched): Promise<void> {
  const q = `select count(*) as n from pg_stat_activity where application_name = 'orch-inbox' and query ilike 'listen %'`;
  await until(async () => ((await rows<{ n: number }>('public', q))[0]?.n ?? 0) > 0, proc);
}

function freshSchema(): { url: string; schema: string } {
  const schema = `r_${crypto.randomBytes(5).toString('hex')}`;
  return { url: cluster.url(schema), schema };
}

describeCluster('PostgreSQL: the server restarting under running processes (private cluster) (slow)', () => {
  it.each([
    ['restarted (pg_ctl restart -m fast)', 'fast'],
    ['crashed and restarted (pg_ctl restart -m immediate)', 'immediate'],
  ] as const)('orch wait across a server %s: an event written afterwards by another process wakes it, exit 0', async (_, mode) => {
    const { url } = freshSchema();
    okJson(INBOX_BIN, url, ['init']);
    okJson(ORCH_BIN, url, ['run', 'init', '--run', 'R', '--goal', 'g']);
    const wait = start(ORCH_BIN, ['--db', url, '--json', 'wait', '--run', 'R', '--timeout-seconds', '60'], 'orch wait');
    await listening(wait);
    cluster.restart(mode);
    // The LISTEN connection comes back by itself while the wait goes on (NOTIFY keeps waking it).
    await listening(wait);
    okJson(ORCH_BIN, url, ['task', 'add', '--run', 'R', '--task', 'T', '--title', 'after the restart']);
    const r = await wait.done;
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.timed_out).toBe(false);
    expect(out.events.map((e: { type: string; task: string | null }) => [e.type, e.task])).toEqual([['task_added', 'T']]);
  });

  it('orch wait across a server down for 8 s (longer than the connect timeout): it waits for it, then wakes on the next event', async () => {
    const { url } = freshSchema();
    okJson(INBOX_BIN, url, ['init']);
    okJson(ORCH_BIN, url, ['run', 'init', '--run', 'R', '--goal', 'g']);
    const wait = start(ORCH_BIN, ['--db', url, '--json', 'wait', '--run', 'R', '--timeout-seconds', '120'], 'orch wait');
    await listening(wait);
    cluster.halt('fast');
    await sleep(8000);
    cluster.start();
    await listening(wait);
    okJson(ORCH_BIN, url, ['task', 'add', '--run', 'R', '--task', 'T', '--title', 'after the outage']);
    const r = await wait.done;
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).events.map((e: { type: string }) => e.type)).toEqual(['task_added']);
  });

  it('inbox work across a restart mid-job and a crash while idle: heartbeats go on, the result is posted, the next thread is claimed, exit 0', async () => {
    const dir = tempDir();
    const { url, schema } = freshSchema();
    okJson(INBOX_BIN, url, ['init']);
    const send = (subject: string) => okJson(INBOX_BIN, url, ['send', '--to', 'w', '--subject', subject, '--body', 'go']).thread.id as string;
    const a = send('first');
    const runner = start(
      INBOX_BIN,
      [
        '--db',
        url,
        '--json',
        'work',
        '--agent',
        'w',
        '--idle-exit-seconds',
        '30',
        '--lease-seconds',
        '10',
        '--work-dir',
        path.join(dir, 'work'),
        '--',
        process.execPath,
        job(dir),
      ],
      'inbox work',
    );
    const thread = async (id: string) =>
      (await rows<{ state: string; claim_count: number; lease_expires_at: number | null }>(schema, 'select * from inbox_threads where id = $1', [id]))[0];

    // The command for the first thread is running: restart the server under it.
    await until(() => fs.existsSync(path.join(dir, `started-${a}`)), runner);
    cluster.restart('fast');
    // A heartbeat after the restart: the lease now runs past (server time after the restart) + 10 s.
    const [{ now }] = (await rows<{ now: number }>(schema, 'select (extract(epoch from clock_timestamp()) * 1000)::float8 as now')) as [{ now: number }];
    await until(async () => ((await thread(a))?.lease_expires_at ?? 0) >= now + 10_000, runner);
    fs.writeFileSync(path.join(dir, `go-${a}`), '');
    await until(async () => (await thread(a))?.state === 'done', runner);

    // Idle now (claiming every second, listening): crash the server, then send the next thread.
    await listening(runner);
    cluster.restart('immediate');
    const b = send('second');
    fs.writeFileSync(path.join(dir, `go-${b}`), '');

    const r = await runner.done;
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.stopped).toBe('idle');
    expect(out.handled.map((h: { thread_id: string; outcome: string; claim: number }) => [h.thread_id, h.outcome, h.claim])).toEqual([
      [a, 'done', 1],
      [b, 'done', 1],
    ]);
    expect(await rows(schema, 'select id, state, claim_count from inbox_threads order by seq')).toEqual([
      { id: a, state: 'done', claim_count: 1 },
      { id: b, state: 'done', claim_count: 1 },
    ]);
    const results = await rows<{ thread_id: string; body: string }>(schema, `select thread_id, body from inbox_messages where kind = 'result' order by id`);
    expect(results.map((m) => [m.thread_id, m.body])).toEqual([
      [a, `result of ${a}`],
      [b, `result of ${b}`],
    ]);
  });

  it('a lease held across a server outage is judged by the server clock: a runner (its clock 10 minutes ahead, if libfaketime is there) does not take it', async () => {
    const dir = tempDir();
    const { url, schema } = freshSchema();
    okJson(INBOX_BIN, url, ['init']);
    const send = (subject: string) => okJson(INBOX_BIN, url, ['send', '--to', 'w', '--subject', subject, '--body', 'go']).thread.id as string;
    const a = send('held');
    const held = okJson(INBOX_BIN, url, ['claim', '--agent', 'w', '--lease-seconds', '120']);
    expect(held.thread.id).toBe(a);
    fs.writeFileSync(path.join(dir, 'go-all'), '');
    const ahead: Record<string, string> = FAKETIME === undefined ? {} : { LD_PRELOAD: FAKETIME, FAKETIME: '+10m', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
    const runner = start(
      INBOX_BIN,
      ['--db', url, '--json', 'work', '--agent', 'w', '--idle-exit-seconds', '60', '--work-dir', path.join(dir, 'work'), '--', process.execPath, job(dir)],
      'inbox work',
      ahead,
    );
    await listening(runner);
    // Down for 3 s (the runner keeps trying to claim), then crash-recovered.
    cluster.halt('immediate');
    await sleep(3000);
    cluster.start();
    // The next thread, sent after the outage, is claimed by the runner: the held (older) one was
    // not claimable then, by the server's clock, or the runner would have taken it first.
    const b = send('next');
    await until(async () => (await rows<{ state: string }>(schema, 'select state from inbox_threads where id = $1', [b]))[0]?.state === 'done', runner);
    // The holder still holds its lease after the outage and posts its result with it.
    okJson(INBOX_BIN, url, ['result', '--thread', a, '--lease', held.lease.token, '--body', 'held across the outage']);
    runner.child.kill('SIGTERM');
    const r = await runner.done;
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).handled.map((h: { thread_id: string; outcome: string }) => [h.thread_id, h.outcome])).toEqual([[b, 'done']]);
    expect(await rows(schema, 'select id, state, claim_count from inbox_threads order by seq')).toEqual([
      { id: a, state: 'done', claim_count: 1 },
      { id: b, state: 'done', claim_count: 1 },
    ]);
  });
});
