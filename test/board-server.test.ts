// The web board's server side (packages/server/src/board.ts, board-routes.ts, events.ts
// openChanges; docs/board.md), against the built `orch serve` as a process, on both engines:
// the board's files with their headers (CSP, nosniff, no-referrer, ETag/304, gzip) from a copy of
// the built orch folder holding a placeholder board (the real one is ui-shell's), path tricks
// refused, `/` of a server whose board was not built; `GET /v1/whoami` for each kind of caller;
// the change stream `GET /v1/changes` (a tick after a commit by another process and none without,
// coalesced, ended by a revocation and by the server stopping, counted against --max-streams); and
// the two commands the board reads across runs (`orch blocked` without --run, `orch run list`'s
// last_activity).
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { freshDb } from './engine.ts';
import { ROOT, ok, orch, orchOk, tempDir } from './helpers.ts';
import { post, type Served, serve, type SseEvent } from './server-harness.ts';

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const running: Served[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()?.stop();
});

async function started(db: string, args: string[] = [], bin?: string): Promise<Served> {
  const s = await serve(db, args, bin === undefined ? {} : { bin });
  running.push(s);
  return s;
}

/** The built orch folder copied to a temp dir, its `board/` replaced by `files` (none: no board at all). */
function orchCopy(files: Record<string, string> | undefined): string {
  const to = path.join(tempDir('orch-board-'), 'orch');
  fs.cpSync(path.join(ROOT, 'packages/orch/dist'), to, { recursive: true });
  fs.rmSync(path.join(to, 'board'), { recursive: true, force: true });
  if (files !== undefined) {
    fs.mkdirSync(path.join(to, 'board'));
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(to, 'board', name), text);
  }
  return path.join(to, 'orch.cjs');
}

const PAGE = {
  'index.html': '<!doctype html><title>board</title><link rel="stylesheet" href="/assets/board.css"><script type="module" src="/assets/board.js"></script>\n',
  'board.js': `${'console.log("the board");\n'.repeat(200)}`,
  'board.css': 'body { margin: 0; }\n',
};

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A GET with exactly these headers (fetch would add Accept-Encoding and undo the gzip). */
function get(url: string, target: string, headers: Record<string, string> = {}): Promise<Got> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path: target, method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A request line sent as written (no client clean-up of `..` or escapes); the status and body. */
function rawGet(url: string, target: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(`GET ${target} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`);
    });
    let data = '';
    socket.on('data', (d) => (data += d.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), body: data.slice(data.indexOf('\r\n\r\n') + 4) }));
  });
}

function expectBoardHeaders(headers: http.IncomingHttpHeaders): void {
  expect(headers['content-security-policy']).toBe(CSP);
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['referrer-policy']).toBe('no-referrer');
  expect(headers['cache-control']).toBe('no-cache');
}

/** An open change stream: the events read so far, waiting for more, and its end. */
interface Stream {
  events: SseEvent[];
  /** Resolves once `until` holds for the events read (or the stream ended: then it throws). */
  next(until: (events: SseEvent[]) => boolean): Promise<SseEvent[]>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

async function changes(url: string, headers: Record<string, string> = {}): Promise<Stream> {
  const stop = new AbortController();
  const r = await fetch(`${url}/v1/changes`, { headers, signal: stop.signal });
  if (r.status !== 200 || !r.body) throw new Error(`/v1/changes: ${r.status} ${await r.text()}`);
  expect(r.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
  const events: SseEvent[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  const ended = (async () => {
    let buffer = '';
    try {
      for (;;) {
        const { done: end, value } = await reader.read();
        if (end) break;
        buffer += decoder.decode(value, { stream: true });
        for (let at = buffer.indexOf('\n\n'); at >= 0; at = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const e: SseEvent = { data: '' };
          let data = false;
          for (const line of block.split('\n')) {
            const m = /^([a-z]+): ?(.*)$/i.exec(line);
            if (m?.[1] === 'id') e.id = m[2];
            else if (m?.[1] === 'event') e.event = m[2];
            else if (m?.[1] === 'data') {
              e.data += m[2];
              data = true;
            }
          }
          if (data) events.push(e);
          wake?.();
        }
      }
    } catch {
      // aborted by close()
    } finally {
      done = true;
      wake?.();
    }
  })();
  return {
    events,
    ended,
    next: async (until) => {
      while (!until(events)) {
        if (done) throw new Error(`the stream ended; it sent ${JSON.stringify(events)}`);
        await new Promise<void>((resolve) => (wake = resolve));
      }
      return events;
    },
    close: () => stop.abort(),
  };
}

const ticks = (events: SseEvent[]) => events.filter((e) => e.event === 'change');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the board files (slow)', () => {
  it('serves / and /assets/<file> with the CSP and the other headers, ETag and 304, gzip; nothing else', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const bin = orchCopy(PAGE);
    // A file beside the board folder that no path may reach.
    fs.writeFileSync(path.join(path.dirname(bin), 'secret.txt'), 'SECRET\n');
    fs.symlinkSync(path.join(path.dirname(bin), 'secret.txt'), path.join(path.dirname(bin), 'board', 'link.txt'));
    const server = await started(db, [], bin);
    const u = server.url;

    const page = await get(u, '/');
    expect(page.status).toBe(200);
    expectBoardHeaders(page.headers);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body.toString()).toBe(PAGE['index.html']);
    const etag = page.headers.etag as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    // Revalidation: the same ETag is a 304 without a body, with the same headers.
    const again = await get(u, '/', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expectBoardHeaders(again.headers);
    expect((await get(u, '/', { 'if-none-match': '"other"' })).status).toBe(200);

    for (const [name, type] of [
      ['board.js', 'text/javascript; charset=utf-8'],
      ['board.css', 'text/css; charset=utf-8'],
    ] as const) {
      const plain = await get(u, `/assets/${name}`);
      expect(plain.status).toBe(200);
      expectBoardHeaders(plain.headers);
      expect(plain.headers['content-type']).toBe(type);
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(plain.body.toString()).toBe(PAGE[name]);
    }
    // gzip to a client that accepts it: the same bytes once unpacked, a tag of its own, and a 304 for either tag.
    const packed = await get(u, '/assets/board.js', { 'accept-encoding': 'gzip, deflate' });
    expect(packed.headers['content-encoding']).toBe('gzip');
    expect(packed.headers.vary).toBe('Accept-Encoding');
    expectBoardHeaders(packed.headers);
    expect(zlib.gunzipSync(packed.body).toString()).toBe(PAGE['board.js']);
    expect(packed.body.length).toBeLessThan(PAGE['board.js'].length);
    expect(packed.headers.etag).not.toBe((await get(u, '/assets/board.js')).headers.etag);
    expect((await get(u, '/assets/board.js', { 'accept-encoding': 'gzip', 'if-none-match': packed.headers.etag as string })).status).toBe(304);
    expect((await get(u, '/assets/board.js', { 'accept-encoding': 'gzip;q=0' })).headers['content-encoding']).toBeUndefined();
    // A rebuilt file is served anew, with a new tag.
    const before = (await get(u, '/assets/board.css')).headers.etag as string;
    fs.writeFileSync(path.join(path.dirname(bin), 'board', 'board.css'), 'body { margin: 1px; }\n');
    const rebuilt = await get(u, '/assets/board.css', { 'if-none-match': before });
    expect([rebuilt.status, rebuilt.body.toString()]).toEqual([200, 'body { margin: 1px; }\n']);
    expect(rebuilt.headers.etag).not.toBe(before);

    // Only the files the folder holds; the ordinary JSON 404 otherwise.
    const unknown = await get(u, '/assets/nope.js');
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body.toString()).error.code).toBe('UNKNOWN_COMMAND');
    expect((await get(u, '/assets/index.html')).status).toBe(200);
    expect((await get(u, '/assets/link.txt')).status).toBe(404);
    expect((await get(u, '/index.html')).status).toBe(404);
    // Path tricks, sent as written: refused, never resolved.
    for (const target of [
      '/assets/../secret.txt',
      '/assets/..%2Fsecret.txt',
      '/assets/%2e%2e/secret.txt',
      '/assets/%2E%2E%2Fsecret.txt',
      '/assets/..\\secret.txt',
      '/assets/.%2e/secret.txt',
      '/assets//secret.txt',
      '/assets/./board.js',
      '/assets/board.js/',
      '/assets/sub/board.js',
      '/./assets/board.js',
      '/../secret.txt',
      '//assets/board.js',
      '/assets/%62oard.js',
    ]) {
      const r = await rawGet(u, target);
      // Node's HTTP parser itself refuses a backslash (400).
      expect(r.status, target).toBe(target.includes('\\') ? 400 : 404);
      expect(r.body, target).not.toContain('SECRET');
      expect(r.body, target).not.toContain('the board');
    }
  });

  it('a server whose board was not built answers / with a plain-text 404 naming the build; its start line says so', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const bin = orchCopy(undefined);
    const server = await started(db, [], bin);
    const r = await get(server.url, '/');
    expect(r.status).toBe(404);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expectBoardHeaders(r.headers);
    expect(r.body.toString()).toMatch(/board was not built.*npm run build/);
    expect((await get(server.url, '/assets/board.js')).status).toBe(404);
    // The API is served all the same.
    expect((await post(server.url, '/v1/orch/run/list', {})).status).toBe(200);
    expect(await startLine(bin, db, true)).toMatchObject({ board: null });
    expect(await startLine(bin, db, false)).toMatch(/; board: not built \(npm run build\)$/);
  });

  it("orch serve's start line names the board (--json: board)", async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const bin = orchCopy(PAGE);
    const line = (await startLine(bin, db, true)) as { url: string; board: string };
    expect(line.board).toBe(`${line.url}/`);
    expect(await startLine(bin, db, false)).toMatch(/^orch serve: listening on (http:\/\/127\.0\.0\.1:\d+) \(db .*\); board: \1\/$/);
  });
});

/** The first line `orch serve` prints (parsed with --json), then stops it. */
async function startLine(bin: string, db: string, asJson: boolean): Promise<unknown> {
  const child: ChildProcess = spawn(process.execPath, [bin, '--db', db, ...(asJson ? ['--json'] : []), 'serve', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0] as string);
    });
    void exited.then(() => reject(new Error(`orch serve exited: ${out}`)));
  });
  child.kill('SIGTERM');
  await exited;
  return asJson ? JSON.parse(line) : line;
}

describe('GET /v1/whoami (slow)', () => {
  it('says who the caller is: the local user, a leader token, a worker token with its agent; 401 without a valid token', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await started(db);
    const u = server.url;
    const local = await fetch(`${u}/v1/whoami`);
    expect(local.status).toBe(200);
    expect(await local.json()).toEqual({ kind: 'local' });
    const leader = orchOk(db, ['token', 'create', '--role', 'leader', '--name', 'lead']);
    const worker = orchOk(db, ['token', 'create', '--role', 'worker', '--agent', 'qa']);
    const whoami = async (token?: string) => {
      const r = await fetch(`${u}/v1/whoami`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
      return { status: r.status, json: (await r.json()) as any };
    };
    expect(await whoami(leader.token)).toEqual({ status: 200, json: { kind: 'token', id: leader.id, name: 'lead', role: 'leader' } });
    expect(await whoami(worker.token)).toEqual({ status: 200, json: { kind: 'token', id: worker.id, name: 'qa', role: 'worker', agent: 'qa' } });
    // Once a token exists, no caller is the tokenless local user.
    const none = await whoami();
    expect(none.status).toBe(401);
    expect(none.json.error.code).toBe('UNAUTHENTICATED');
    expect((await whoami(`orch_${'x'.repeat(43)}`)).status).toBe(401);
    orchOk(db, ['token', 'revoke', '--token-id', worker.id]);
    expect((await whoami(worker.token)).status).toBe(401);
  });
});

describe('GET /v1/changes (slow)', () => {
  it('ticks at once, then after a commit by another process (a CLI on the same database), not without one; Last-Event-ID continues the ids', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await started(db);
    const stream = await changes(server.url);
    const [first] = await stream.next((e) => ticks(e).length >= 1);
    expect(first).toMatchObject({ event: 'change', id: '1' });
    expect(JSON.parse(first?.data ?? '').at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // Nothing is committed: nothing more comes (a second is many watch intervals).
    await sleep(1000);
    expect(ticks(stream.events)).toHaveLength(1);
    // What the page reads at a tick: no runs yet (the server has looked: no orch tables).
    expect((await post(server.url, '/v1/orch/run/list', {})).json).toEqual({ runs: [] });
    // A CLI process commits (its run init makes the orch tables): a tick follows, and the server sees the run.
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    const after = await stream.next((e) => ticks(e).length >= 2);
    expect((await post(server.url, '/v1/orch/run/list', {})).json.runs.map((r: any) => r.id)).toEqual(['r']);
    expect(after[1]).toMatchObject({ event: 'change', id: '2' });
    expect(Date.parse(JSON.parse(after[1]?.data ?? '').at)).toBeGreaterThanOrEqual(Date.parse(JSON.parse(first?.data ?? '').at));
    // A worker's commit through inbox too.
    ok(db, ['send', '--to', 'w', '--subject', 's', '--body', 'b']);
    await stream.next((e) => ticks(e).length >= 3);
    stream.close();
    // A reconnecting client's ids go on from its Last-Event-ID; a bad one is refused before the stream.
    const resumed = await changes(server.url, { 'last-event-id': '41' });
    expect((await resumed.next((e) => e.length >= 1))[0]).toMatchObject({ event: 'change', id: '42' });
    resumed.close();
    const bad = await fetch(`${server.url}/v1/changes`, { headers: { 'last-event-id': 'x' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.code).toBe('VALIDATION');
  });

  it('coalesces a burst of commits: ticks at least 50 ms apart, and one after the last commit', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await started(db);
    const stream = await changes(server.url);
    await stream.next((e) => ticks(e).length >= 1);
    const sends = 40;
    const answers = await Promise.all(Array.from({ length: sends }, (_, i) => post(server.url, '/v1/inbox/send', { to: 'w', subject: `s${i}`, body: 'b' })));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    const lastCommit = Math.max(...answers.map((a) => Date.parse(a.json.thread.created_at)));
    const got = await stream.next((e) => ticks(e).some((t) => Date.parse(JSON.parse(t.data).at) >= lastCommit));
    const times = ticks(got).map((t) => Date.parse(JSON.parse(t.data).at));
    expect(times.length).toBeLessThanOrEqual(sends + 1);
    for (let i = 2; i < times.length; i++) expect((times[i] as number) - (times[i - 1] as number), `${times}`).toBeGreaterThanOrEqual(49);
    expect(ticks(got).map((t) => Number(t.id))).toEqual(times.map((_, i) => i + 1));
    stream.close();
  });

  it('needs a token once there is one; ends with an error event when its token is revoked', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    const server = await started(db);
    const worker = orchOk(db, ['token', 'create', '--role', 'worker', '--agent', 'qa']);
    expect((await fetch(`${server.url}/v1/changes`)).status).toBe(401);
    // Any principal may have the stream: a worker token too.
    const stream = await changes(server.url, { authorization: `Bearer ${worker.token}` });
    await stream.next((e) => ticks(e).length >= 1);
    orchOk(db, ['token', 'revoke', '--token-id', worker.id]);
    const got = await stream.next((e) => e.some((x) => x.event === 'error'));
    expect(JSON.parse(got.find((x) => x.event === 'error')?.data ?? '').error.code).toBe('UNAUTHENTICATED');
    await stream.ended;
  });

  it('counts against --max-streams (429 past it, a slot back once one closes); ends when the server stops', async () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    const server = await started(db, ['--max-streams', '2']);
    const a = await changes(server.url);
    const b = await changes(server.url);
    await a.next((e) => e.length >= 1);
    await b.next((e) => e.length >= 1);
    const third = await fetch(`${server.url}/v1/changes`);
    expect(third.status).toBe(429);
    expect(((await third.json()) as any).error.code).toBe('RATE_LIMITED');
    // The run event streams share the same slots.
    expect((await fetch(`${server.url}/v1/runs/r/events`)).status).toBe(429);
    a.close();
    await a.ended;
    let c: Stream | undefined;
    // The slot is given back once the server notices the client went (at its next write or look).
    while (c === undefined) {
      try {
        c = await changes(server.url);
      } catch (err) {
        expect(String(err)).toMatch(/429/);
        await sleep(100);
      }
    }
    await c.next((e) => e.length >= 1);
    expect(await server.stop()).toBe(0);
    await b.ended;
    await c.ended;
    expect(server.stderr()).toMatch(/orch serve: stopped \(SIGTERM\)/);
  });
});

describe('what the board reads across runs (slow)', () => {
  /** A run `run` with task T dispatched to `agent`, claimed, and blocked on `question`; returns the thread. */
  function blockedTask(db: string, run: string, agent: string, question: string): string {
    orchOk(db, ['run', 'init', '--run', run, '--goal', `goal of ${run}`]);
    orchOk(db, ['task', 'add', '--run', run, '--task', 'T', '--title', `T of ${run}`, '--default-to', agent]);
    const d = orchOk(db, ['dispatch', '--run', run, '--task', 'T', '--execution-mode', 'analysis', '--body', 'go']);
    const claim = ok(db, ['claim', '--agent', agent, '--thread', d.attempt.thread_id]);
    ok(db, ['ask', '--thread', d.attempt.thread_id, '--lease', claim.lease.token, '--body', question]);
    return d.attempt.thread_id;
  }

  it('orch blocked without --run lists every active run, each item with its run; answer takes an item as it is', () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    blockedTask(db, 'r1', 'w1', 'first?');
    blockedTask(db, 'r2', 'w2', 'second?');
    blockedTask(db, 'r3', 'w3', 'third?');
    orchOk(db, ['cancel', '--run', 'r3']);
    // An active run without a live attempt has nothing to fold in or list (it is not even reconciled).
    orchOk(db, ['run', 'init', '--run', 'r4', '--goal', 'idle']);
    orchOk(db, ['task', 'add', '--run', 'r4', '--task', 'T', '--title', 'not dispatched']);
    const all = orchOk(db, ['blocked']);
    expect(all.run).toBeNull();
    expect(all.tasks.map((t: any) => [t.run, t.task.run, t.task.id, t.question.body])).toEqual([
      ['r1', 'r1', 'T', 'first?'],
      ['r2', 'r2', 'T', 'second?'],
    ]);
    // --run behaves as before, its items carrying the run too.
    const one = orchOk(db, ['blocked', '--run', 'r2']);
    expect(one.run).toBe('r2');
    expect(one.tasks.map((t: any) => [t.run, t.question.body])).toEqual([['r2', 'second?']]);
    // The text names each task's run.
    const text = orch(['--db', db, 'blocked']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^r1\/T \(attempt 1, w1,/m);
    expect(text.stdout).toMatch(/^r2\/T \(attempt 1, w2,/m);
    // An item of the list is answered with its run and task.
    const item = all.tasks[1];
    const answered = orchOk(db, ['answer', '--run', item.run, '--task', item.task.id, '--body', 'yes']);
    expect(answered.task).toMatchObject({ run: 'r2', id: 'T', state: 'running' });
    expect(orchOk(db, ['blocked']).tasks.map((t: any) => t.run)).toEqual(['r1']);
    expect(orch(['--db', db, 'blocked', '--run', 'nope']).code).toBe(3);
    // A database without runs: an empty list.
    const empty = freshDb(dir, 'empty.db');
    ok(empty, ['init']);
    expect(orchOk(empty, ['blocked'])).toEqual({ run: null, count: 0, tasks: [] });
    expect(orchOk(empty, ['blocked', '--count'])).toEqual({ run: null, count: 0, tasks: [] });
  });

  it("orch blocked --count counts without a question (the board's badge), across runs and in one", () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    blockedTask(db, 'r1', 'w1', 'x'.repeat(100_000));
    blockedTask(db, 'r2', 'w2', 'second?');
    const full = orchOk(db, ['blocked']);
    expect(full.count).toBe(2);
    expect(full.tasks).toHaveLength(2);
    expect(orchOk(db, ['blocked', '--count'])).toEqual({ run: null, count: 2, tasks: [] });
    expect(orchOk(db, ['blocked', '--count', '--run', 'r2'])).toEqual({ run: 'r2', count: 1, tasks: [] });
    const text = orch(['--db', db, 'blocked', '--count']);
    expect([text.code, text.stdout.trim()]).toEqual([0, '2 blocked tasks']);
    // A worker that asks after the count was taken is counted at the next look (it reconciles).
    blockedTask(db, 'r3', 'w3', 'third?');
    expect(orchOk(db, ['blocked', '--count']).count).toBe(3);
  });

  it("orch run list gives each run's last activity: its newest event's time", () => {
    const dir = tempDir();
    const db = freshDb(dir);
    ok(db, ['init']);
    orchOk(db, ['run', 'init', '--run', 'old', '--goal', 'g']);
    orchOk(db, ['run', 'init', '--run', 'new', '--goal', 'g']);
    orchOk(db, ['task', 'add', '--run', 'old', '--task', 'a', '--title', 'A']);
    const newest = (run: string) => {
      const events = orchOk(db, ['wait', '--run', run, '--after-event', '0', '--timeout-seconds', '0']).events;
      return events[events.length - 1].created_at as string;
    };
    const list = orchOk(db, ['run', 'list']).runs as { id: string; last_activity: string; created_at: string }[];
    expect(list.map((r) => r.id)).toEqual(['new', 'old']);
    for (const r of list) expect(r.last_activity).toBe(newest(r.id));
    // The task added to `old` is its newest event, later than its creation.
    const old = list.find((r) => r.id === 'old');
    expect(Date.parse(old?.last_activity ?? '')).toBeGreaterThanOrEqual(Date.parse(old?.created_at ?? ''));
    expect(old?.last_activity).toBe(newest('old'));
  });
});
