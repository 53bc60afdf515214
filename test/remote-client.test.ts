import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { INBOX_BIN, ORCH_BIN, expectJsonError, initDb, ok, tempDir, type CliRun } from './helpers.ts';

/**
 * Remote mode of the CLIs (`--db http://...`) against a stub server on loopback that follows
 * CONTRACT.md's HTTP API: the client's side alone (what it sends, how it reads answers, retries,
 * refusals before any network). The real `orch serve` is driven in test/remote.test.ts.
 */

const TOKEN = 'orch_secret-token-never-printed-0123456789abcdefghij';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Reply = { status: number; body: string; headers?: Record<string, string> } | 'reset';

interface Stub {
  url: string;
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

const stubs: Stub[] = [];
afterEach(async () => {
  while (stubs.length > 0) await stubs.pop()?.close();
});

/** A loopback server answering each request with `reply(request, n)` (n counts from 1). */
async function stub(reply: (req: Seen, n: number) => Reply, port = 0): Promise<Stub> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      const r = reply(s, seen.length);
      if (r === 'reset') {
        req.socket.destroy();
        return;
      }
      res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
      res.end(r.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const p = (server.address() as AddressInfo).port;
  const s: Stub = {
    url: `http://127.0.0.1:${p}`,
    port: p,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  stubs.push(s);
  return s;
}

/** A port nothing listens on (bound once, then let go). */
async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Runs a built CLI as a process without blocking this process (the stub answers in it). */
function run(bin: string, args: string[], env: Record<string, string | undefined> = {}, cwd?: string): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: cwd ?? process.cwd(),
      env: { ...process.env, NO_COLOR: '1', ORCH_TOKEN: undefined, ORCH_RETRY_SECONDS: '5', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
const inboxRemote = (args: string[], env?: Record<string, string | undefined>, cwd?: string) => run(INBOX_BIN, args, env, cwd);

const ok200 = (doc: unknown, exit = 0): Reply => ({ status: 200, body: JSON.stringify(doc), headers: { 'orch-exit-code': String(exit) } });
const errorReply = (status: number, exit: number, error: Record<string, unknown>, headers: Record<string, string> = {}): Reply => ({
  status,
  body: JSON.stringify({ error }),
  headers: { 'orch-exit-code': String(exit), ...headers },
});

describe('remote mode of the CLIs against a stub server (slow)', () => {
  it('checks flags locally exactly as on a file: the same usage and validation errors, exit 2, and no request', async () => {
    const s = await stub(() => ok200({}));
    const { db } = initDb();
    for (const args of [
      ['claim'],
      ['claim', '--agent', 'a b'],
      ['progress', '--thread', 't', '--lease', 'l'],
      ['show', '--thread', 'x', '--limit', '0'],
      ['nosuch'],
    ]) {
      const local = await inboxRemote(['--db', db, '--json', ...args]);
      const remote = await inboxRemote(['--db', s.url, '--json', ...args], { ORCH_TOKEN: TOKEN });
      expect(remote.code, args.join(' ')).toBe(2);
      expect(remote, args.join(' ')).toEqual(local);
    }
    expect(s.seen).toEqual([]);
  });

  it('sends the raw flags as camelCase JSON with a token, an idempotency key and the files the command reads; prints the answer as the command does', async () => {
    const { db, dir } = initDb();
    ok(db, ['send', '--to', 'qa', '--subject', 'Check it', '--body', 'the task']);
    const claimed = ok(db, ['claim', '--agent', 'qa']);
    const bodyFile = path.join(dir, 'result.md');
    fs.writeFileSync(bodyFile, 'all done\n');
    // The real answers, from the same commands on a file: the stub hands them back.
    const localJson = await inboxRemote(
      ['--db', db, '--json', 'result', '--thread', claimed.thread.id, '--lease', claimed.lease.token, '--body-file', 'result.md'],
      {},
      dir,
    );
    expect(localJson.code).toBe(0);
    const doc = JSON.parse(localJson.stdout);
    const s = await stub((req) => ok200(req.url.endsWith('/show') ? showDoc : doc));
    const args = ['result', '--thread', claimed.thread.id, '--lease', claimed.lease.token, '--body-file', 'result.md', '--payload-json', '{"n":1}'];
    const asJson = await inboxRemote(['--db', s.url, '--json', ...args], { ORCH_TOKEN: TOKEN }, dir);
    expect(asJson).toEqual({ code: 0, stdout: localJson.stdout, stderr: '' });
    // Text: the command's own renderer over the returned document, as on a file.
    const showArgs = ['show', '--thread', claimed.thread.id];
    const localText = await inboxRemote(['--db', db, ...showArgs]);
    const showDoc = JSON.parse((await inboxRemote(['--db', db, '--json', ...showArgs])).stdout);
    const asText = await inboxRemote(['--db', `${s.url}/`, ...showArgs], { ORCH_TOKEN: TOKEN }, dir);
    expect(asText).toEqual(localText);

    const [first, second] = s.seen;
    expect(first?.method).toBe('POST');
    expect(first?.url).toBe('/v1/inbox/result');
    expect(first?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(first?.headers['content-type']).toBe('application/json');
    expect(first?.headers['idempotency-key']).toMatch(/^[A-Za-z0-9_-]{22,}$/);
    // Each invocation has a key of its own.
    expect(second?.url).toBe('/v1/inbox/show');
    expect(second?.headers['idempotency-key']).not.toBe(first?.headers['idempotency-key']);
    expect(JSON.parse(first?.body ?? '')).toEqual({
      thread: claimed.thread.id,
      lease: claimed.lease.token,
      bodyFile: 'result.md',
      payloadJson: '{"n":1}',
      $files: { 'result.md': 'all done\n' },
    });
  });

  it("prints the server's error document as the CLI prints errors and exits with Orch-Exit-Code", async () => {
    const error = { code: 'LEASE_LOST', message: 'the lease is gone', details: { thread: 'th_1' } };
    const s = await stub(() => errorReply(409, 5, error));
    const r = await inboxRemote(['--db', s.url, '--json', 'heartbeat', '--thread', 'th_1', '--lease', 'ls_1'], { ORCH_TOKEN: TOKEN });
    expect(expectJsonError(r, 5, 'LEASE_LOST')).toEqual(error);
    const text = await inboxRemote(['--db', s.url, 'heartbeat', '--thread', 'th_1', '--lease', 'ls_1'], { ORCH_TOKEN: TOKEN });
    expect(text).toEqual({ code: 5, stdout: '', stderr: 'inbox: the lease is gone\n' });
  });

  it('an unknown route is UNKNOWN_COMMAND (2); a 401 is exit 4; a body that is not an orch answer is SERVER_BAD_ANSWER (6)', async () => {
    const s = await stub((req) =>
      req.url.endsWith('/show')
        ? errorReply(404, 2, { code: 'NOT_FOUND', message: 'no such route' })
        : req.url.endsWith('/list')
          ? errorReply(401, 4, { code: 'UNAUTHENTICATED', message: 'a valid token is needed' })
          : { status: 200, body: '<html>hello</html>' },
    );
    expectJsonError(await inboxRemote(['--db', s.url, '--json', 'show', '--thread', 'th_1']), 2, 'UNKNOWN_COMMAND', /does not serve `inbox show`/);
    expectJsonError(await inboxRemote(['--db', s.url, '--json', 'list']), 4, 'UNAUTHENTICATED');
    expectJsonError(await inboxRemote(['--db', s.url, '--json', 'heartbeat', '--thread', 't', '--lease', 'l']), 6, 'SERVER_BAD_ANSWER');
  });

  it('retries 503, 429 and cut connections with the same idempotency key, then succeeds', async () => {
    const doc = { thread: { id: 'th_1' }, lease: { token: 'ls_1', expires_at: 'x', seconds: 900 } };
    const s = await stub((_req, n) =>
      n === 1
        ? errorReply(503, 6, { code: 'UNAVAILABLE', message: 'starting' })
        : n === 2
          ? 'reset'
          : n === 3
            ? errorReply(429, 6, { code: 'RATE_LIMITED', message: 'slow down' }, { 'retry-after': '1' })
            : ok200(doc),
    );
    const r = await inboxRemote(['--db', s.url, '--json', 'heartbeat', '--thread', 'th_1', '--lease', 'ls_1'], { ORCH_TOKEN: TOKEN });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(doc);
    expect(s.seen.length).toBe(4);
    expect(new Set(s.seen.map((x) => x.headers['idempotency-key'])).size).toBe(1);
  });

  it("a command's own DB_ error with exit 6 is an answer, not retried", async () => {
    const s = await stub(() => errorReply(503, 6, { code: 'DB_BUSY', message: 'database is busy' }));
    expectJsonError(await inboxRemote(['--db', s.url, '--json', 'list']), 6, 'DB_BUSY');
    expect(s.seen.length).toBe(1);
  });

  it('server down at the start and up within the budget: succeeds; down past the budget: exit 6 SERVER_UNREACHABLE naming the URL, never the token', async () => {
    const port = await freePort();
    const late = inboxRemote(['--db', `http://127.0.0.1:${port}`, '--json', 'list'], { ORCH_TOKEN: TOKEN, ORCH_RETRY_SECONDS: '20' });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const s = await stub(() => ok200({ threads: [] }), port);
    const r = await late;
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ threads: [] });
    expect(s.seen.length).toBe(1);

    const gone = await freePort();
    const down = await inboxRemote(['--db', `http://127.0.0.1:${gone}`, '--json', 'list'], { ORCH_TOKEN: TOKEN, ORCH_RETRY_SECONDS: '1' });
    const e = expectJsonError(down, 6, 'SERVER_UNREACHABLE', new RegExp(`http://127\\.0\\.0\\.1:${gone}`));
    expect(e.message).toMatch(/connection refused/);
    expect(down.stderr).not.toContain(TOKEN);
    const text = await inboxRemote(['--db', `http://127.0.0.1:${gone}`, 'list'], { ORCH_TOKEN: TOKEN, ORCH_RETRY_SECONDS: '0' });
    expect(text.code).toBe(6);
    expect(text.stderr).toMatch(/^inbox: cannot reach the server at http:\/\/127\.0\.0\.1:\d+: connection refused/);
    expect(text.stderr).not.toContain(TOKEN);
  });

  it('refuses before any network: a token over plain http to a host that is not loopback, a URL with credentials, a token file others may read, an unserved command', async () => {
    const dir = tempDir();
    const refused = await inboxRemote(['--db', 'http://coordination.invalid:7420', '--json', 'list'], { ORCH_TOKEN: TOKEN });
    expectJsonError(refused, 2, 'USAGE', /refusing to send a token over plain http/);
    expect(refused.stderr).not.toContain(TOKEN);
    expectJsonError(await inboxRemote(['--db', 'http://me:pw@127.0.0.1:1', '--json', 'list']), 2, 'USAGE', /must not carry a user name or password/);
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o644 });
    fs.chmodSync(tokenFile, 0o644);
    const open = await inboxRemote(['--db', 'http://127.0.0.1:1', '--token-file', tokenFile, '--json', 'list']);
    expectJsonError(open, 2, 'USAGE', /group or others may read it/);
    expect(open.stderr).not.toContain(TOKEN);
    expectJsonError(await inboxRemote(['--db', 'http://127.0.0.1:1', '--json', 'init']), 2, 'USAGE', /does not run against a server URL/);
    expectJsonError(await run(ORCH_BIN, ['--db', 'http://127.0.0.1:1', '--json', 'mcp']), 2, 'USAGE', /does not run against a server URL/);
    expectJsonError(await run(ORCH_BIN, ['--db', 'http://127.0.0.1:1', '--json', 'token', 'list']), 2, 'USAGE', /tokens are listed where the server runs/);
    expectJsonError(await run(ORCH_BIN, ['--db', 'http://127.0.0.1:1', '--json', 'serve']), 2, 'USAGE', /does not run against a server URL/);
    expectJsonError(await inboxRemote(['--db', 'http://127.0.0.1:1', '--json', 'mcp', '--agent', 'qa']), 2, 'USAGE', /does not run against a server URL/);
  });

  it('a call on a file never loads the HTTP client; a call on a URL does', async () => {
    const { db, dir } = initDb();
    const preload = path.join(dir, 'loaded.cjs');
    fs.writeFileSync(
      preload,
      "process.on('exit', () => require('node:fs').writeFileSync(process.env.LOADED_LIST, process.moduleLoadList.filter((m) => /^NativeModule (http|https|_http_client)$/.test(m)).join('\\n')));\n",
    );
    const list = path.join(dir, 'loaded.txt');
    const loaded = async (args: string[]) => {
      // `node -r PRELOAD inbox.cjs ...`: the preload lists the HTTP modules loaded when the process exits.
      const r = await run('-r', [preload, INBOX_BIN, ...args], { LOADED_LIST: list, ORCH_RETRY_SECONDS: '0' });
      expect(r.stderr).not.toMatch(/internal error/);
      return fs.readFileSync(list, 'utf8');
    };
    expect(await loaded(['--db', db, 'list'])).toBe('');
    expect(await loaded(['--db', 'http://127.0.0.1:1', 'list'])).toContain('NativeModule http');
  });

  it('https: the server certificate is checked (a private CA through NODE_EXTRA_CA_CERTS); an unknown one is refused at once, exit 6', async () => {
    const dir = tempDir();
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { encoding: 'utf8' },
    );
    expect(made.status, made.stderr).toBe(0);
    const seen: string[] = [];
    const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
      seen.push(`${req.url} ${req.headers.authorization}`);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'orch-exit-code': '0' }).end(JSON.stringify({ threads: [] })));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const trusted = await inboxRemote(['--db', url, '--json', 'list'], { ORCH_TOKEN: TOKEN, NODE_EXTRA_CA_CERTS: cert });
      expect(trusted.code, trusted.stderr).toBe(0);
      expect(JSON.parse(trusted.stdout)).toEqual({ threads: [] });
      expect(seen).toEqual([`/v1/inbox/list Bearer ${TOKEN}`]);
      const unknown = await inboxRemote(['--db', url, '--json', 'list'], { ORCH_TOKEN: TOKEN, ORCH_RETRY_SECONDS: '30' });
      const e = expectJsonError(unknown, 6, 'SERVER_UNREACHABLE', /certificate/);
      expect(e.message).toContain(url);
      expect(unknown.stderr).not.toContain(TOKEN);
      // Nothing reached the server without a trusted certificate (the token never left).
      expect(seen).toHaveLength(1);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('an answer that cannot be written after a write committed on the server: exit 7, saying how to see it on the server', async () => {
    const doc = { thread: { id: 'th_1', state: 'done' }, message: { id: 9, kind: 'result' } };
    const s = await stub(() => ok200(doc));
    const full = fs.openSync('/dev/full', 'w');
    // Not spawnSync: the stub answers from this process.
    const child = spawn(process.execPath, [INBOX_BIN, '--db', s.url, '--json', 'result', '--thread', 'th_1', '--lease', 'ls_1', '--body', 'x'], {
      stdio: ['ignore', full, 'pipe'],
      env: { ...process.env, ORCH_TOKEN: undefined },
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const r = { status, stderr };
    fs.closeSync(full);
    expect(r.status).toBe(7);
    const e = JSON.parse(r.stderr).error;
    expect(e.code).toBe('OUTPUT_FAILED');
    expect(e.details.committed).toBe(true);
    expect(e.details.see).toBe(`inbox --db ${s.url} show --thread th_1 --after-message 8`);
  });

  it('reads the token from an owner-only --token-file', async () => {
    const dir = tempDir();
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const s = await stub(() => ok200({ threads: [] }));
    const r = await inboxRemote(['--db', s.url, '--token-file', tokenFile, '--json', 'list'], { ORCH_TOKEN: 'orch_other' });
    expect(r.code, r.stderr).toBe(0);
    expect(s.seen[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('waits as long as the command may wait: no client timeout shorter than its wait + 30 s', async () => {
    // The stub answers a `wait --timeout-seconds 2` after 3 s of silence: longer than 2 s, well under 32 s.
    const s = await stub(() => ok200({ thread: { id: 't' }, messages: [], timed_out: true }));
    const slow = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => setTimeout(() => res.writeHead(200, { 'orch-exit-code': '0' }).end(JSON.stringify({ messages: [], timed_out: true })), 3000));
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
      const r = await inboxRemote(['--db', url, '--json', 'wait', '--thread', 'th_1', '--timeout-seconds', '2'], { ORCH_RETRY_SECONDS: '0' });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ messages: [], timed_out: true });
    } finally {
      slow.closeAllConnections();
      await new Promise((resolve) => slow.close(resolve));
    }
    expect(s.seen).toEqual([]);
  });
});
