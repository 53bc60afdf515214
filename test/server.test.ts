// `orch serve` against the CLIs: the contract (every served command answers over HTTP exactly what
// the CLI prints with --json, on a twin database), the error mapping, hostile requests, live events,
// a kill -9, and idempotent retries. Real `orch serve` processes over loopback; real CLI processes.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { redactLocation } from '@orch/store';
import { routeTable, statusOf } from '@orch/server';
import { AppError } from '@orch/store';
import { afterEach, describe, expect, it } from 'vitest';
import { freshDb, onSqlite, rawSql } from './engine.ts';
import { INBOX_BIN, ORCH_BIN, ROOT, type CliRun, ok, rows, snapshot, tempDir } from './helpers.ts';
import { post, readEvents, type Served, serve } from './server-harness.ts';

const BRIEF_BIN = path.join(ROOT, 'packages/worker-brief/dist/orch-worker-brief.cjs');
const BINS = { inbox: INBOX_BIN, orch: ORCH_BIN, 'orch-worker-brief': BRIEF_BIN } as const;
type Program = keyof typeof BINS;

const running: Served[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()?.stop();
});

async function started(db: string, args: string[] = []): Promise<Served> {
  const s = await serve(db, args);
  running.push(s);
  return s;
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The command line of `input` for the CLI: `--flag=value`, `--flag` for true. */
function cliArgs(program: Program, command: string, input: Record<string, unknown>): string[] {
  const words = program === 'orch-worker-brief' ? [] : command.split(' ');
  const flags = Object.entries(input).flatMap(([k, v]) => (v === true ? [`--${kebab(k)}`] : v === false ? [] : [`--${kebab(k)}=${String(v)}`]));
  return [...words, ...flags];
}

function runCli(program: Program, db: string, args: string[], cwd: string): CliRun {
  const r = spawnSync(process.execPath, [BINS[program], '--db', db, '--json', ...args], { cwd, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Makes two runs of one scenario comparable: ids by order of appearance, times, the database's names. */
function normaliser(names: string[]): (text: string) => string {
  const ids = new Map<string, string>();
  return (text) => {
    let t = text;
    for (const name of names) t = t.split(name).join('<db>');
    // A brief quotes a URL with a query (PostgreSQL's ?schema=) for the shell; a server URL needs no quotes.
    t = t.split("'<db>'").join('<db>');
    t = t.split(INBOX_BIN).join('inbox');
    t = t.replace(/\b[a-z]{2,5}_[A-Za-z0-9]{16}\b/g, (id) => {
      let n = ids.get(id);
      if (n === undefined) {
        n = `<id${ids.size + 1}>`;
        ids.set(id, n);
      }
      return n;
    });
    return t.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '<time>');
  };
}

interface Step {
  program: Program;
  command: string;
  /** The input, from what earlier steps of the same side printed (by label). */
  input: (got: Record<string, any>) => Record<string, unknown>;
  label?: string;
  /** Files the command reads: path (relative to the working directory) -> text. */
  files?: (got: Record<string, any>) => Record<string, string>;
}

const s = (program: Program, command: string, input: Step['input'], extra: Partial<Step> = {}): Step => ({ program, command, input, ...extra });

/** One run of a leader and two workers touching every served command (errors included). */
const SCENARIO: Step[] = [
  s('orch', 'run init', () => ({ run: 'r', goal: 'ship it' })),
  s('orch', 'run init', () => ({ run: 'r', goal: 'again' })),
  s('orch', 'run show', () => ({ run: 'r' })),
  s('orch', 'run list', () => ({})),
  s('orch', 'task add', () => ({ run: 'r', task: 'a', title: 'A', defaultTo: 'w' })),
  s('orch', 'task add', () => ({ run: 'r', task: 'b', title: 'B', defaultTo: 'w' })),
  s('orch', 'dep add', () => ({ run: 'r', task: 'b', dependsOn: 'a' })),
  s('orch', 'task show', () => ({ run: 'r', task: 'a' })),
  s('orch', 'ready', () => ({ run: 'r' })),
  s('orch', 'dispatch', () => ({ run: 'r', task: 'a', executionMode: 'analysis', body: 'go' }), { label: 'd1' }),
  s('orch-worker-brief', '$0', () => ({ dispatchJson: 'd1.json' }), { files: (g) => ({ 'd1.json': JSON.stringify(g.d1) }) }),
  s('inbox', 'list', () => ({ agent: 'w' })),
  s('inbox', 'claim', () => ({ agent: 'w', leaseSeconds: '600' }), { label: 'c1' }),
  s('inbox', 'heartbeat', (g) => ({ thread: g.c1.thread.id, lease: g.c1.lease.token })),
  s('inbox', 'progress', (g) => ({ thread: g.c1.thread.id, lease: g.c1.lease.token, body: 'half way' })),
  s('inbox', 'progress', (g) => ({ thread: g.c1.thread.id, lease: 'ls_notmylease0000', body: 'x' })),
  s('inbox', 'ask', (g) => ({ thread: g.c1.thread.id, lease: g.c1.lease.token, body: 'which colour?' })),
  s('orch', 'blocked', () => ({ run: 'r' })),
  s('orch', 'answer', () => ({ run: 'r', task: 'a', body: 'blue' })),
  s('inbox', 'wait', (g) => ({ thread: g.c1.thread.id, lease: g.c1.lease.token, timeoutSeconds: '0' })),
  s('inbox', 'show', (g) => ({ thread: g.c1.thread.id })),
  s('inbox', 'show', () => ({ thread: 'th_nosuchthread00' })),
  s('inbox', 'reply', (g) => ({ thread: g.c1.thread.id, body: 'thanks' })),
  s('inbox', 'result', (g) => ({ thread: g.c1.thread.id, lease: g.c1.lease.token, body: 'done' })),
  s('orch', 'reconcile', () => ({ run: 'r' })),
  s('orch', 'status', () => ({ run: 'r' })),
  s('orch', 'wait', () => ({ run: 'r', afterEvent: '0', timeoutSeconds: '0' })),
  s('orch', 'dispatch', () => ({ run: 'r', task: 'b', executionMode: 'analysis', body: 'next' })),
  s('orch', 'reassign', () => ({ run: 'r', task: 'b', to: 'w2' })),
  s('inbox', 'claim', () => ({ agent: 'w2' }), { label: 'c2' }),
  s('inbox', 'fail', (g) => ({ thread: g.c2.thread.id, lease: g.c2.lease.token, body: 'cannot' })),
  s('orch', 'retry', () => ({ run: 'r', task: 'b', bodyFile: 'retry.txt' }), { files: () => ({ 'retry.txt': 'try again\n' }) }),
  s('inbox', 'send', () => ({ to: 'x', subject: 'side job', bodyFile: 'body.txt' }), { files: () => ({ 'body.txt': 'from a file\n' }) }),
  s('inbox', 'claim', () => ({ agent: 'x' }), { label: 'c3' }),
  s('inbox', 'release', (g) => ({ thread: g.c3.thread.id, lease: g.c3.lease.token })),
  s('inbox', 'claim', () => ({ agent: 'x', leaseSeconds: 'abc' })),
  s('orch', 'cancel', () => ({ run: 'r', task: 'b', reason: 'enough' })),
  s('orch', 'diff', () => ({ run: 'r', task: 'a' })),
  s('orch', 'merge', () => ({ run: 'r', task: 'a' })),
  s('orch', 'cleanup', () => ({ run: 'r', dryRun: true })),
  s('inbox', 'doctor', () => ({})),
  s('orch', 'doctor', () => ({})),
];

describe('orch serve: the contract (slow)', () => {
  it('every served command answers over HTTP what the CLI prints with --json, on a twin database', async () => {
    const dir = tempDir();
    const cliDir = path.join(dir, 'cli');
    fs.mkdirSync(cliDir);
    const cliDb = freshDb(dir, 'cli.db');
    const httpDb = freshDb(dir, 'http.db');
    ok(cliDb, ['init']);
    ok(httpDb, ['init']);
    const server = await started(httpDb);
    const cliNorm = normaliser([cliDb, redactLocation(cliDb)]);
    const httpNorm = normaliser([server.url, httpDb, redactLocation(httpDb)]);
    const cliGot: Record<string, any> = {};
    const httpGot: Record<string, any> = {};
    const covered = new Set<string>();
    for (const step of SCENARIO) {
      const where = `${step.program} ${step.command} ${JSON.stringify(step.input(cliGot))}`;
      const cliFiles = step.files?.(cliGot) ?? {};
      for (const [file, text] of Object.entries(cliFiles)) fs.writeFileSync(path.join(cliDir, file), text);
      const cli = runCli(step.program, cliDb, cliArgs(step.program, step.command, step.input(cliGot)), cliDir);
      const route = step.program === 'orch-worker-brief' ? 'orch-worker-brief' : `${step.program}/${step.command.split(' ').join('/')}`;
      covered.add(route);
      const httpFiles = step.files?.(httpGot);
      const answer = await post(server.url, `/v1/${route}`, { ...step.input(httpGot), ...(httpFiles ? { $files: httpFiles } : {}) });
      expect(answer.exit, `${where}: exit code (${answer.text} vs ${cli.stderr})`).toBe(cli.code);
      if (cli.code === 0 || cli.stdout !== '') {
        expect(answer.status, where).toBe(200);
        expect(httpNorm(answer.text), where).toBe(cliNorm(cli.stdout));
        if (step.label) {
          cliGot[step.label] = JSON.parse(cli.stdout);
          httpGot[step.label] = answer.json;
        }
      } else {
        expect(httpNorm(answer.text), where).toBe(cliNorm(cli.stderr));
        expect(answer.status, where).toBe(statusOf(new AppError(answer.json.error.code, cli.code as 2, '')));
      }
    }
    expect([...covered].sort()).toEqual([...routeTable().keys()].sort());
    // Both databases hold the same run, event for event.
    const events = (db: string) => rows<{ seq: number; type: string }>(db, 'select seq, type from orch_events order by seq');
    expect(events(httpDb)).toEqual(events(cliDb));
  });
});

describe('orch serve: errors and hostile requests (slow)', () => {
  it('maps every exit code to its status and refuses hostile input cleanly, writing nothing', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await started(db);
    const u = server.url;
    const before = snapshot(db);
    const cases: [string, unknown, number, number, string][] = [
      ['/v1/inbox/claim', { agent: 'w', leaseSeconds: 'abc' }, 400, 2, 'VALIDATION'],
      ['/v1/inbox/claim', { agent: 'w', bogus: '1' }, 400, 2, 'VALIDATION'],
      ['/v1/inbox/claim', { agent: 7 }, 400, 2, 'VALIDATION'],
      ['/v1/inbox/claim', { agent: 'w', leaseSeconds: 1.5 }, 400, 2, 'VALIDATION'],
      ['/v1/inbox/claim', { agent: 'w', leaseSeconds: true }, 400, 2, 'VALIDATION'],
      ['/v1/inbox/claim', [], 400, 2, 'VALIDATION'],
      ['/v1/inbox/claim', '{"agent": "w"', 400, 2, 'VALIDATION'],
      ['/v1/inbox/claim', `${'['.repeat(10_000)}${']'.repeat(10_000)}`, 400, 2, 'VALIDATION'],
      ['/v1/inbox/claim', { agent: 'w', $files: { '/etc/passwd': 1 } }, 400, 2, 'VALIDATION'],
      ['/v1/inbox/send', { to: 'w', subject: 's', bodyFile: '/etc/passwd' }, 400, 2, 'VALIDATION'],
      ['/v1/inbox/show', { thread: 'th_nosuchthread00' }, 404, 3, 'NOT_FOUND'],
      ['/v1/orch/run/show', { run: 'nope' }, 404, 3, 'NOT_FOUND'],
      ['/v1/inbox/progress', { thread: 'th_nosuchthread00', lease: 'ls_x', body: 'b' }, 404, 3, 'NOT_FOUND'],
      ['/v1/inbox/init', {}, 404, 2, 'UNKNOWN_COMMAND'],
      ['/v1/inbox/work', {}, 404, 2, 'UNKNOWN_COMMAND'],
      ['/v1/orch/serve', {}, 404, 2, 'UNKNOWN_COMMAND'],
      ['/v1/orch/mcp', {}, 404, 2, 'UNKNOWN_COMMAND'],
      ['/v1/orch/copy', {}, 404, 2, 'UNKNOWN_COMMAND'],
      ['/v1/nope', {}, 404, 2, 'UNKNOWN_COMMAND'],
      ['/v1/inbox/claim/', {}, 404, 2, 'UNKNOWN_COMMAND'],
      ['/v1/Inbox/claim', {}, 404, 2, 'UNKNOWN_COMMAND'],
    ];
    for (const [route, body, status, exit, code] of cases) {
      const r = await post(u, route, body);
      expect([r.status, r.exit, r.json?.error?.code], `${route} ${JSON.stringify(body).slice(0, 80)}: ${r.text}`).toEqual([status, exit, code]);
      expect(r.text.endsWith('\n') && !r.text.slice(0, -1).includes('\n'), r.text).toBe(true);
    }
    // The file named in a body is never read from the server's disk: not sent, not read.
    const sent = await post(u, '/v1/inbox/send', { to: 'w', subject: 's', bodyFile: '/etc/passwd' });
    expect(sent.json.error.message).toMatch(/the file was not sent/);
    // Not JSON, too large, traversal in the path, a hostile Idempotency-Key.
    const form = await fetch(`${u}/v1/inbox/list`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    expect([form.status, form.headers.get('orch-exit-code')]).toEqual([415, '2']);
    const big = await post(u, '/v1/inbox/send', { to: 'w', subject: 's', body: 'x'.repeat(10 * 1024 * 1024) });
    expect([big.status, big.exit, big.json.error.code]).toEqual([413, 2, 'TOO_LARGE']);
    for (const raw of ['/v1/../v1/inbox/list', '/v1/%2e%2e/inbox/list', '/v1/inbox%2flist', '/v1/inbox/list%00', '/../../etc/passwd']) {
      const r = await rawRequest(u, 'POST', raw, '{}');
      expect(r.status, raw).toBe(404);
      expect(JSON.parse(r.body).error.code, raw).toBe('UNKNOWN_COMMAND');
    }
    for (const key of ['short', 'a'.repeat(21), `${'a'.repeat(22)} x`, `${'a'.repeat(22)}/../x`, 'a'.repeat(129)]) {
      const r = await post(u, '/v1/inbox/list', {}, { 'idempotency-key': key });
      expect([r.status, r.json.error.code], key).toEqual([400, 'VALIDATION']);
    }
    // Header injection: a raw CR LF inside a header value is refused by the HTTP parser itself.
    const injected = await rawRequest(u, 'POST', '/v1/inbox/list', '{}', `Idempotency-Key: ${'a'.repeat(22)}\rX-Evil: 1\r\n`);
    expect(injected.status).toBe(400);
    expect(snapshot(db)).toEqual(before);
    // Still serving.
    expect((await fetch(`${u}/healthz`)).status).toBe(200);
    const list = await post(u, '/v1/inbox/list', {});
    expect([list.status, list.exit]).toEqual([200, 0]);
    expect(await (await fetch(`${u}/readyz`)).json()).toEqual({ ok: true, schema: { inbox: 4 } });
  });

  it('maps exit codes 4, 5 and 6 (conflict, lease lost, database unavailable)', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await started(db);
    const u = server.url;
    expect((await post(u, '/v1/orch/run/init', { run: 'r', goal: 'g' })).status).toBe(200);
    const again = await post(u, '/v1/orch/run/init', { run: 'r', goal: 'other' });
    expect([again.status, again.exit, again.json.error.code]).toEqual([409, 4, 'CONFLICT']);
    await post(u, '/v1/inbox/send', { to: 'w', subject: 's', body: 'b' });
    const claim = await post(u, '/v1/inbox/claim', { agent: 'w' });
    const lost = await post(u, '/v1/inbox/progress', { thread: claim.json.thread.id, lease: 'ls_notthelease000', body: 'x' });
    expect([lost.status, lost.exit, lost.json.error.code]).toEqual([409, 5, 'LEASE_LOST']);
    // Mapping of the rest (and FORBIDDEN, which needs a worker token) by the function the server uses.
    expect(statusOf(new AppError('FORBIDDEN', 4, 'x'))).toBe(403);
    expect(statusOf(new AppError('DB_BUSY', 6, 'x'))).toBe(503);
    expect(statusOf(new AppError('INTERNAL', 1, 'x'))).toBe(500);
    if (onSqlite) {
      fs.renameSync(db, `${db}.away`);
      const away = await post(u, '/v1/inbox/list', {});
      expect([away.status, away.exit, away.json.error.code]).toEqual([503, 6, 'DB_MISSING']);
      fs.renameSync(`${db}.away`, db);
    }
  });

  it('limits: 429 with Retry-After past the rate and past the open streams', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await started(db, ['--rate-limit', '1', '--rate-burst', '3', '--max-streams', '1']);
    const u = server.url;
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await post(u, '/v1/inbox/list', {})).status);
    expect(codes.slice(0, 3)).toEqual([200, 200, 200]);
    const limited = await post(u, '/v1/inbox/list', {});
    expect([limited.status, limited.exit, limited.json.error.code]).toEqual([429, 6, 'RATE_LIMITED']);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // One stream open at once (--max-streams 1): a second is refused until the first closes.
    await new Promise((r) => setTimeout(r, 2100));
    await post(u, '/v1/orch/run/init', { run: 'r', goal: 'g' });
    await new Promise((r) => setTimeout(r, 1100));
    const first = new AbortController();
    const open = await fetch(`${u}/v1/runs/r/events`, { signal: first.signal });
    expect(open.status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    const second = await fetch(`${u}/v1/runs/r/events`);
    expect([second.status, ((await second.json()) as { error: { code: string } }).error.code]).toEqual([429, 'RATE_LIMITED']);
    // A client that goes away gives its place back: the stream, and a wait cut short.
    first.abort();
    await new Promise((r) => setTimeout(r, 1100));
    const cut = new AbortController();
    const waiting = fetch(`${u}/v1/orch/wait`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"run":"r","timeoutSeconds":600}',
      signal: cut.signal,
    });
    await new Promise((r) => setTimeout(r, 1100));
    cut.abort();
    await waiting.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1100));
    const again = await post(u, '/v1/orch/wait', { run: 'r', timeoutSeconds: 0 });
    expect([again.status, again.json.timed_out]).toEqual([200, true]);
  });
});

describe('orch serve: live events (slow)', () => {
  it('an event committed by a separate CLI process reaches a subscriber; Last-Event-ID resumes', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await started(db);
    const u = server.url;
    await post(u, '/v1/orch/run/init', { run: 'r', goal: 'g' });
    await post(u, '/v1/orch/task/add', { run: 'r', task: 'a', title: 'A', defaultTo: 'w' });
    const first = readEvents(`${u}/v1/runs/r/events?after=0`, (e) => e.some((x) => x.data.includes('"task":"b"')));
    await new Promise((r) => setTimeout(r, 300));
    const added = spawnSync(
      process.execPath,
      [ORCH_BIN, '--db', db, '--json', 'task', 'add', '--run', 'r', '--task', 'b', '--title', 'B', '--default-to', 'w'],
      { encoding: 'utf8' },
    );
    expect(added.status, added.stderr).toBe(0);
    const events = await first;
    expect(events.every((e) => e.event === 'event')).toBe(true);
    const seqs = events.map((e) => Number(e.id));
    expect(seqs).toEqual(events.map((e) => JSON.parse(e.data).seq));
    expect(events.map((e) => JSON.parse(e.data).type)).toContain('task_added');
    // The same documents `orch wait` prints.
    const wait = await post(u, '/v1/orch/wait', { run: 'r', afterEvent: 0, timeoutSeconds: 0 });
    expect(events.map((e) => JSON.parse(e.data))).toEqual(wait.json.events);
    // Resume after the first event: only what came after it.
    const resumed = await readEvents(`${u}/v1/runs/r/events?after=0`, (e) => e.length >= seqs.length - 1, { 'last-event-id': String(seqs[0]) });
    expect(resumed.map((e) => Number(e.id))).toEqual(seqs.slice(1));
    // A thread's messages, including one posted by a CLI process.
    const sent = await post(u, '/v1/inbox/send', { to: 'w', subject: 's', body: 'hello' });
    const thread = sent.json.thread.id as string;
    const messages = readEvents(`${u}/v1/threads/${thread}/messages`, (e) => e.length >= 2);
    await new Promise((r) => setTimeout(r, 300));
    const reply = spawnSync(process.execPath, [INBOX_BIN, '--db', db, '--json', 'reply', '--thread', thread, '--body', 'more'], { encoding: 'utf8' });
    expect(reply.status, reply.stderr).toBe(0);
    const got = await messages;
    expect(got.map((e) => [e.event, JSON.parse(e.data).body])).toEqual([
      ['message', 'hello'],
      ['message', 'more'],
    ]);
    // Refusals come before the stream: no such run, a cursor past the newest event.
    expect((await fetch(`${u}/v1/runs/nope/events`)).status).toBe(404);
    expect((await fetch(`${u}/v1/runs/r/events?after=999`)).status).toBe(400);
    expect((await fetch(`${u}/v1/runs/r/events?after=x`)).status).toBe(400);
  });
});

describe('orch serve: waits (slow)', () => {
  it('a wait over HTTP returns when another request of the same server commits what it waits for', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await started(db);
    const u = server.url;
    const sent = await post(u, '/v1/inbox/send', { to: 'w', subject: 's', body: 'b' });
    const claim = await post(u, '/v1/inbox/claim', { agent: 'w' });
    const thread = claim.json.thread.id as string;
    const waiting = post(u, '/v1/inbox/wait', { thread, as: 'leader', afterMessage: sent.json.message.id, timeoutSeconds: 120 });
    const runWait = post(u, '/v1/orch/wait', { run: 'nope', timeoutSeconds: 1 });
    await new Promise((r) => setTimeout(r, 500));
    await post(u, '/v1/inbox/progress', { thread, lease: claim.json.lease.token, body: 'half way' });
    const woke = await waiting;
    expect([woke.status, woke.json.timed_out, woke.json.messages.map((m: { body: string }) => m.body)]).toEqual([200, false, ['half way']]);
    expect((await runWait).exit).toBe(3);
  });
});

describe('orch serve: faults (slow)', () => {
  it('kill -9 mid-run, then restart: every acknowledged write is there', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await serve(db);
    const acknowledged: string[] = [];
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; i < 200; i++) {
        try {
          const r = await post(server.url, '/v1/inbox/send', { to: `w${w}`, subject: `s${i}`, body: 'b' });
          if (r.status === 200) acknowledged.push(r.json.thread.id);
        } catch {
          return;
        }
      }
    });
    while (acknowledged.length < 20) await new Promise((r) => setTimeout(r, 20));
    await server.kill9();
    await Promise.all(writers);
    const again = await started(db);
    const listed = await post(again.url, '/v1/inbox/list', { limit: 1000 });
    const ids = new Set((listed.json.threads as { id: string }[]).map((t) => t.id));
    for (const id of acknowledged) expect(ids.has(id), id).toBe(true);
  });

  it('a write retried with the same Idempotency-Key after the connection was cut applies once', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await started(db);
    const u = server.url;
    await post(u, '/v1/inbox/send', { to: 'w', subject: 's', body: 'b' });
    const claim = await post(u, '/v1/inbox/claim', { agent: 'w' });
    const thread = claim.json.thread.id as string;
    const body = JSON.stringify({ thread, lease: claim.json.lease.token, body: 'all done' });
    const key = 'k'.repeat(10) + Date.now().toString(36).padStart(16, '0');
    // The first try: the connection is cut once the result is committed, before the answer is read.
    await cutAfterCommit(u, '/v1/inbox/result', body, key, () => rows(db, "select id from inbox_messages where kind = 'result'").length > 0);
    const retried = await post(u, '/v1/inbox/result', body, { 'idempotency-key': key });
    expect([retried.status, retried.exit]).toEqual([200, 0]);
    expect(retried.headers.get('idempotency-replayed')).toBe('true');
    expect(retried.json.message.body).toBe('all done');
    expect(rows(db, "select id from inbox_messages where kind = 'result'")).toHaveLength(1);
    // Without the key, the same request is a second call: refused (the thread is done).
    const plain = await post(u, '/v1/inbox/result', body);
    expect(plain.exit).toBe(4);
    // The same key with another body: refused.
    const other = await post(u, '/v1/inbox/result', body.replace('all done', 'other'), { 'idempotency-key': key });
    expect([other.status, other.json.error.code]).toEqual([409, 'IDEMPOTENCY_MISMATCH']);
    // A repeat while the first is still running waits for it and gets its answer.
    await post(u, '/v1/inbox/send', { to: 'w2', subject: 's', body: 'b' });
    const second = await post(u, '/v1/inbox/claim', { agent: 'w2' });
    const waitBody = { thread: second.json.thread.id, lease: second.json.lease.token, timeoutSeconds: 1 };
    const waitKey = `w${key.slice(1)}`;
    const [one, two] = await Promise.all([
      post(u, '/v1/inbox/wait', waitBody, { 'idempotency-key': waitKey }),
      new Promise((r) => setTimeout(r, 200)).then(() => post(u, '/v1/inbox/wait', waitBody, { 'idempotency-key': waitKey })),
    ]);
    expect(one.json.timed_out).toBe(true);
    expect(two.text).toBe(one.text);
    expect([one.headers.get('idempotency-replayed'), two.headers.get('idempotency-replayed')]).toEqual([null, 'true']);
  });

  it('a committed write whose answer cannot be kept for its Idempotency-Key still gets its answer (not a 5xx that invites a second try)', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await started(db);
    const u = server.url;
    await post(u, '/v1/inbox/send', { to: 'w', subject: 's', body: 'b' });
    const claim = await post(u, '/v1/inbox/claim', { agent: 'w' });
    // Keeping this answer fails after the command committed (the table refuses every insert).
    if (onSqlite) {
      rawSql(db, "CREATE TRIGGER refuse BEFORE INSERT ON orch_server_idempotency BEGIN SELECT RAISE(ABORT, 'no room'); END");
    } else {
      rawSql(db, "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'no room'; END $$ LANGUAGE plpgsql");
      rawSql(db, 'CREATE TRIGGER refuse BEFORE INSERT ON orch_server_idempotency FOR EACH ROW EXECUTE FUNCTION refuse()');
    }
    const key = `gone${Date.now().toString(36).padStart(20, '0')}`;
    const answered = await post(
      u,
      '/v1/inbox/result',
      { thread: claim.json.thread.id, lease: claim.json.lease.token, body: 'done' },
      { 'idempotency-key': key },
    );
    expect([answered.status, answered.exit]).toEqual([200, 0]);
    expect(answered.json.message.body).toBe('done');
    expect(rows(db, "select id from inbox_messages where kind = 'result'")).toHaveLength(1);
  });
});

describe('orch serve: TLS (slow)', () => {
  it('serves HTTPS with --tls-cert and --tls-key', async () => {
    const dir = tempDir();
    const made = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=127.0.0.1'],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(made.status, made.stderr).toBe(0);
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await serve(db, ['--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')]);
    running.push(server);
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const { port } = new URL(server.url);
    const ca = fs.readFileSync(path.join(dir, 'cert.pem'));
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port,
          path: '/v1/inbox/list',
          method: 'POST',
          ca,
          checkServerIdentity: () => undefined,
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          let data = '';
          res.on('data', (d) => (data += d));
          res.on('end', () => resolve(`${res.statusCode} ${res.headers['orch-exit-code']} ${data}`));
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
    expect(body).toMatch(/^200 0 \{/);
    // A certificate that cannot be read: exit 2, one clear line.
    const bad = spawnSync(process.execPath, [ORCH_BIN, '--db', db, '--json', 'serve', '--port', '0', '--tls-cert', 'nope.pem', '--tls-key', 'key.pem'], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(bad.status, bad.stderr).toBe(2);
    expect(JSON.parse(bad.stderr).error.message).toMatch(/--tls-cert nope\.pem: no such file/);
  });
});

describe('orch serve: shutdown (slow)', () => {
  it('SIGTERM ends a running wait as at its timeout, answers it, and exits 0', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await serve(db);
    await post(server.url, '/v1/inbox/send', { to: 'w', subject: 's', body: 'b' });
    const claim = await post(server.url, '/v1/inbox/claim', { agent: 'w' });
    const waiting = post(server.url, '/v1/inbox/wait', { thread: claim.json.thread.id, lease: claim.json.lease.token, timeoutSeconds: 600 });
    await new Promise((r) => setTimeout(r, 500));
    const code = await server.stop();
    const answer = await waiting;
    expect([answer.status, answer.exit, answer.json.timed_out]).toEqual([200, 0, true]);
    expect(code).toBe(0);
    expect(server.stderr()).toMatch(/orch serve: stopped \(SIGTERM\)/);
  });
});

describe('orch serve: a port it cannot have (slow)', () => {
  it('a port in use is exit 4 with what to do, not an internal error; the first server keeps serving', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const first = await started(db);
    const port = new URL(first.url).port;
    const second = spawnSync(process.execPath, [ORCH_BIN, '--db', db, '--json', 'serve', '--port', port], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(second.status, second.stderr).toBe(4);
    const error = JSON.parse(second.stderr).error;
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} is in use .*--port 0`));
    expect(second.stdout).toBe('');
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
  });
});

describe('orch serve: the server and its HTTP library load only for serve (slow)', () => {
  it('no other call reads orch-server.cjs; serve without it fails with one clear line', () => {
    const dir = tempDir();
    const to = path.join(dir, 'orch');
    fs.cpSync(path.join(ROOT, 'packages/orch/dist'), to, { recursive: true });
    const lib = path.join(to, 'orch-server.cjs');
    expect(fs.existsSync(lib)).toBe(true);
    fs.writeFileSync(lib, "require('node:fs').writeFileSync(require('node:path').join(__dirname, 'tripped'), ''); throw new Error('tripwire server');\n");
    const bin = path.join(to, 'orch.cjs');
    const db = path.join(dir, 'coord.db');
    ok(db, ['init']);
    for (const args of [
      ['--help'],
      ['serve', '--help'],
      ['--db', db, 'run', 'init', '--run', 'r', '--goal', 'g'],
      ['--db', db, '--json', 'status', '--run', 'r'],
    ]) {
      const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8' });
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    expect(fs.existsSync(path.join(to, 'tripped'))).toBe(false);
    const r = spawnSync(process.execPath, [bin, '--db', db, 'serve', '--port', '0'], { cwd: dir, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/the HTTP server cannot load \(tripwire server\); copy the whole folder/);
  });

  it('refuses a non-loopback bind without a token, and plain HTTP there without --insecure-http', () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const plain = spawnSync(process.execPath, [ORCH_BIN, '--db', db, '--json', 'serve', '--host', '0.0.0.0', '--port', '0'], { encoding: 'utf8' });
    expect(plain.status).toBe(2);
    expect(JSON.parse(plain.stderr).error.message).toMatch(/--tls-cert/);
    const noToken = spawnSync(process.execPath, [ORCH_BIN, '--db', db, '--json', 'serve', '--host', '0.0.0.0', '--port', '0', '--insecure-http'], {
      encoding: 'utf8',
    });
    expect(noToken.status).toBe(2);
    expect(JSON.parse(noToken.stderr).error.message).toMatch(/no token/);
    // An error of the server's own bundle keeps its code and exit code (a database not initialised: 6).
    const bare = freshDb(dir, 'bare.db');
    const missing = spawnSync(process.execPath, [ORCH_BIN, '--db', bare, '--json', 'serve', '--port', '0'], { encoding: 'utf8' });
    expect(missing.status, missing.stderr).toBe(6);
    expect(JSON.parse(missing.stderr).error.code).toMatch(/^DB_/);
  });
});

/** Sends one request over a raw socket (for paths and headers fetch would clean up). */
function rawRequest(url: string, method: string, target: string, body: string, extraHeaders = ''): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(
        `${method} ${target} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}Connection: close\r\n\r\n${body}`,
      );
    });
    let data = '';
    socket.on('data', (d) => (data += d.toString()));
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
  });
}

/** Sends a POST and destroys the connection once `committed()` says the write is in, unread. */
async function cutAfterCommit(url: string, target: string, body: string, key: string, committed: () => boolean): Promise<void> {
  const { hostname, port } = new URL(url);
  const req = http.request({ hostname, port, path: target, method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key } });
  req.on('error', () => undefined);
  req.on('response', (res) => res.destroy());
  req.end(body);
  while (!committed()) await new Promise((r) => setTimeout(r, 5));
  req.destroy();
}
