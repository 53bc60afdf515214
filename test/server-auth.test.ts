// Who may do what on `orch serve` (packages/server/src/auth.ts), on both engines: authenticate()
// against tokens made by the real CLI, authorize() for each role, and the commands run with the
// context a principal gets (principalContext): a worker token of agent A is refused on B's thread
// with nothing written, and what a leader token writes is recorded under its name, not the name
// the client gives.
import { inboxCli } from '@orch/inbox';
import { orchCli } from '@orch/orch';
import { AppError, ManualClock, openDatabase, randomIds, type CliSpec, type CommandContext, type Store } from '@orch/store';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { authenticate, authorize, countActiveTokens, isLoopbackHost, principalContext, type Principal } from '../packages/server/src/auth.ts';
import { createToken, newTokenText } from '../packages/server/src/tokens.ts';
import { initDb, ok, orchOk, rows, snapshot } from './helpers.ts';
import { post, serve, type Served } from './server-harness.ts';

const stores: Store[] = [];
const servers: Served[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function served(db: string): Promise<Served> {
  const s = await serve(db);
  servers.push(s);
  return s;
}

async function open(db: string): Promise<Store> {
  const store = await openDatabase({ path: db });
  stores.push(store);
  return store;
}

const LOOPBACK = { loopback: true, tls: false };
const REMOTE_TLS = { loopback: false, tls: true };
const bearer = (token: string) => `Bearer ${token}`;

/** The AppError `work` throws (it must throw one). */
async function refusal(work: () => Promise<unknown> | unknown): Promise<AppError> {
  try {
    await work();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

/** Runs a command of `spec` as the CLI would after parsing its flags (camelCase input), with `ctx`. */
async function run(spec: CliSpec, name: string, ctx: CommandContext, raw: Record<string, unknown>): Promise<any> {
  const entry = spec.commands.find((c) => c.name === name);
  if (!entry) throw new Error(`no command ${name}`);
  const def = await entry.load();
  return def.run(ctx, def.input.parse(raw));
}

function context(db: string, principal: Principal): CommandContext {
  return { dbPath: db, ids: randomIds, cwd: process.cwd(), ...principalContext(principal) };
}

describe('authenticate', () => {
  it('lets loopback in without a token only while the database has no live token', async () => {
    const { db } = initDb();
    const store = await open(db);
    expect(await countActiveTokens(store)).toBe(0);
    expect(await authenticate(store, undefined, LOOPBACK)).toEqual({ kind: 'local' });
    expect((await refusal(() => authenticate(store, undefined, REMOTE_TLS))).code).toBe('UNAUTHENTICATED');
    // A token that was never made is refused even on a database without tokens.
    expect((await refusal(() => authenticate(store, bearer(newTokenText()), LOOPBACK))).code).toBe('UNAUTHENTICATED');

    const t = orchOk(db, ['token', 'create', '--role', 'leader']);
    expect(await countActiveTokens(store)).toBe(1);
    const noToken = await refusal(() => authenticate(store, undefined, LOOPBACK));
    expect(noToken.code).toBe('UNAUTHENTICATED');
    expect(noToken.exitCode).toBe(4);
    expect(noToken.message).toMatch(/needs a token/);
    // Revoked: the server is tokenless again (loopback only).
    orchOk(db, ['token', 'revoke', '--token-id', t.id]);
    expect(await authenticate(store, undefined, LOOPBACK)).toEqual({ kind: 'local' });
  });

  it('refuses a tokenless request that names another host (DNS rebinding from a web page)', async () => {
    const { db } = initDb();
    const store = await open(db);
    for (const host of ['127.0.0.1:7420', 'localhost:7420', 'LOCALHOST', '[::1]:7420', '127.1.2.3', 'app.localhost:80']) {
      expect(isLoopbackHost(host), host).toBe(true);
      expect(await authenticate(store, undefined, { ...LOOPBACK, host })).toEqual({ kind: 'local' });
    }
    for (const host of ['evil.example:7420', 'evil.example', '127.0.0.1.evil.example', '', '[::2]:80', 'localhost.evil.example', '10.0.0.1']) {
      expect(isLoopbackHost(host), host).toBe(false);
      const err = await refusal(() => authenticate(store, undefined, { ...LOOPBACK, host }));
      expect(err.code, host).toBe('UNAUTHENTICATED');
    }
  });

  it('accepts a live token and refuses revoked, expired, unknown and malformed ones', async () => {
    const { db } = initDb();
    const store = await open(db);
    const leader = orchOk(db, ['token', 'create', '--role', 'leader', '--name', 'ci']);
    const worker = orchOk(db, ['token', 'create', '--role', 'worker', '--agent', 'qa']);
    expect(await authenticate(store, bearer(leader.token), LOOPBACK)).toEqual({ kind: 'token', id: leader.id, name: 'ci', role: 'leader' });
    expect(await authenticate(store, `bearer   ${worker.token}`, REMOTE_TLS)).toEqual({
      kind: 'token',
      id: worker.id,
      name: 'qa',
      role: 'worker',
      agent: 'qa',
    });
    // Using a token records when (for token list).
    expect(rows<{ last_used_at: unknown }>(db, 'select last_used_at from server_tokens where id = ?', leader.id)[0]?.last_used_at).not.toBeNull();

    // An hour-long token made two hours ago (a clock in the past) has expired.
    const past = new ManualClock(store.clock.now() - 2 * 3600_000);
    const expired = await createToken(store, { clock: past, ids: randomIds }, { role: 'leader', name: 'old', expiresInMs: 3600_000 });
    expect((await refusal(() => authenticate(store, bearer(expired.token), LOOPBACK))).message).toMatch(/expired at/);

    orchOk(db, ['token', 'revoke', '--name', 'qa']);
    expect((await refusal(() => authenticate(store, bearer(worker.token), LOOPBACK))).message).toMatch(/revoked/);

    for (const header of [
      bearer(newTokenText()),
      bearer(`${leader.token}x`),
      bearer(leader.token.toUpperCase()),
      `Basic ${leader.token}`,
      leader.token,
      'Bearer',
      `Bearer ${leader.token} extra`,
    ]) {
      const err = await refusal(() => authenticate(store, header, LOOPBACK));
      expect(err.code, header).toBe('UNAUTHENTICATED');
    }
  });

  it('refuses a token over plain HTTP from another machine unless --insecure-http', async () => {
    const { db } = initDb();
    const store = await open(db);
    const t = orchOk(db, ['token', 'create', '--role', 'leader']);
    const err = await refusal(() => authenticate(store, bearer(t.token), { loopback: false, tls: false }));
    expect(err.code).toBe('UNAUTHENTICATED');
    expect(err.message).toMatch(/only over TLS/);
    expect((await authenticate(store, bearer(t.token), { loopback: false, tls: false, insecureHttp: true })).kind).toBe('token');
    expect((await authenticate(store, bearer(t.token), REMOTE_TLS)).kind).toBe('token');
  });
});

describe('authorize', () => {
  const leader: Principal = { kind: 'token', id: 'tok_1', name: 'ci', role: 'leader' };
  const worker: Principal = { kind: 'token', id: 'tok_2', name: 'qa', role: 'worker', agent: 'qa' };

  it('lets the local user and leader tokens run everything, worker tokens only their inbox commands', async () => {
    for (const p of [{ kind: 'local' } as Principal, leader]) {
      for (const [program, command] of [
        ['orch', 'run init'],
        ['orch', 'dispatch'],
        ['inbox', 'send'],
        ['inbox', 'reply'],
        ['orch-worker-brief', '$0'],
      ] as const)
        expect(() => authorize(p, program, command)).not.toThrow();
    }
    for (const command of ['claim', 'show', 'heartbeat', 'progress', 'ask', 'result', 'fail', 'release', 'wait', 'list']) {
      expect(() => authorize(worker, 'inbox', command)).not.toThrow();
    }
    for (const [program, command] of [
      ['inbox', 'send'],
      ['inbox', 'reply'],
      ['inbox', 'doctor'],
      ['orch', 'status'],
      ['orch', 'answer'],
      ['orch', 'token create'],
      ['orch-worker-brief', '$0'],
    ] as const) {
      const err = await refusal(() => authorize(worker, program, command));
      expect(err.code, `${program} ${command}`).toBe('FORBIDDEN');
      expect(err.exitCode).toBe(4);
    }
  });
});

describe('what a principal may do to the data', () => {
  it("refuses a worker token of agent A every read and write of B's thread, writing nothing", async () => {
    const { db } = initDb();
    const th = ok(db, ['send', '--to', 'bob', '--subject', "bob's", '--body', 'for bob']).thread.id as string;
    const mine = ok(db, ['send', '--to', 'alice', '--subject', "alice's", '--body', 'for alice']).thread.id as string;
    const lease = ok(db, ['claim', '--agent', 'bob']).lease.token as string;
    const store = await open(db);
    const made = orchOk(db, ['token', 'create', '--role', 'worker', '--agent', 'alice']);
    const alice = await authenticate(store, bearer(made.token), LOOPBACK);
    const ctx = context(db, alice);
    const before = snapshot(db);
    for (const [name, raw] of [
      ['show', { thread: th }],
      ['heartbeat', { thread: th, lease }],
      ['progress', { thread: th, lease, body: 'not mine' }],
      ['ask', { thread: th, lease, body: 'not mine' }],
      ['result', { thread: th, lease, body: 'not mine' }],
      ['fail', { thread: th, lease, body: 'not mine' }],
      ['release', { thread: th, lease }],
      ['wait', { thread: th, lease, timeoutSeconds: '1' }],
      ['claim', { agent: 'bob' }],
      ['claim', { agent: 'alice', thread: th }],
      ['list', { agent: 'bob' }],
      ['send', { thread: th, body: 'a note' }],
      ['send', { to: 'bob', subject: 'x', body: 'a task' }],
      ['reply', { thread: th, body: 'an answer' }],
    ] as const) {
      const err = await refusal(() => run(inboxCli, name, ctx, raw));
      expect(err.code, `${name} ${JSON.stringify(raw)}: ${err.message}`).toBe('FORBIDDEN');
    }
    expect(snapshot(db)).toEqual(before);
    // Its own thread, and a list of its own threads only.
    expect((await run(inboxCli, 'list', ctx, {})).threads.map((t: { id: string }) => t.id)).toEqual([mine]);
    expect((await run(inboxCli, 'claim', ctx, { agent: 'alice' })).thread.id).toBe(mine);
  });

  it("records a leader token's name as the author, whatever name the client gives", async () => {
    const { db } = initDb();
    const store = await open(db);
    const made = orchOk(db, ['token', 'create', '--role', 'leader', '--name', 'ci-leader']);
    const ctx = context(db, await authenticate(store, bearer(made.token), LOOPBACK));
    const sent = await run(inboxCli, 'send', ctx, { to: 'w1', subject: 's', body: 'b', from: 'mallory' });
    await run(inboxCli, 'reply', ctx, { thread: sent.thread.id, body: 'answer', from: 'someone-else' });
    await run(orchCli, 'run init', ctx, { run: 'r1', goal: 'g' });
    await run(orchCli, 'task add', ctx, { run: 'r1', task: 't1', title: 't', defaultTo: 'w2' });
    const d = await run(orchCli, 'dispatch', ctx, { run: 'r1', task: 't1', executionMode: 'analysis', body: 'go' });
    const lease = ok(db, ['claim', '--agent', 'w2']).lease.token as string;
    ok(db, ['ask', '--thread', d.attempt.thread_id, '--lease', lease, '--body', 'why?']);
    await run(orchCli, 'answer', ctx, { run: 'r1', task: 't1', body: 'because' });
    await run(orchCli, 'cancel', ctx, { run: 'r1', task: 't1', reason: 'enough' });
    const authors = rows<{ thread_id: string; kind: string; author: string; role: string }>(
      db,
      'select thread_id, kind, author, role from inbox_messages order by id',
    ).map((m) => `${m.kind}:${m.author}:${m.role}`);
    expect(authors).toEqual([
      'task:ci-leader:leader',
      'answer:ci-leader:leader',
      'task:ci-leader:leader',
      'question:w2:worker',
      'answer:ci-leader:leader',
      'note:ci-leader:leader',
    ]);
    const answered = rows<{ data: string }>(db, "select data from orch_events where type = 'task_answered'");
    expect(JSON.parse(answered[0]?.data ?? '{}').author).toBe('ci-leader');
    // Without a token (the CLI, the local user) the client's name stands.
    const local = await run(inboxCli, 'send', context(db, { kind: 'local' }), { to: 'w1', subject: 's', body: 'b', from: 'alice' });
    expect(rows<{ author: string }>(db, 'select author from inbox_messages where id = ?', local.message.id)).toEqual([{ author: 'alice' }]);
  });
});

/** A POST with a Host header of our choosing (fetch does not let one set it). */
function postWithHost(url: string, path: string, host: string): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path, method: 'POST', headers: { host, 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end('{}');
  });
}

describe('over HTTP: a real orch serve (slow)', () => {
  it('answers 401 without a live token and 403 for what the token may not do, writing nothing', async () => {
    const { db } = initDb();
    const th = ok(db, ['send', '--to', 'bob', '--subject', "bob's", '--body', 'for bob']).thread.id as string;
    const lease = ok(db, ['claim', '--agent', 'bob']).lease.token as string;
    const leader = orchOk(db, ['token', 'create', '--role', 'leader', '--name', 'ci-leader']);
    const alice = orchOk(db, ['token', 'create', '--role', 'worker', '--agent', 'alice']);
    const gone = orchOk(db, ['token', 'create', '--role', 'leader', '--name', 'gone']);
    orchOk(db, ['token', 'revoke', '--name', 'gone']);
    const server = await served(db);
    const as = (t: string) => ({ authorization: `Bearer ${t}` });
    // A refused request changes no data; a valid token's last use is recorded (token list shows it).
    const data = () => JSON.parse(JSON.stringify(snapshot(db), (key, value) => (key === 'last_used_at' ? null : value)));
    const before = data();
    const refusals: [string, unknown, Record<string, string>, number, string][] = [
      ['/v1/inbox/list', {}, {}, 401, 'UNAUTHENTICATED'],
      ['/v1/inbox/list', {}, as(gone.token), 401, 'UNAUTHENTICATED'],
      ['/v1/inbox/list', {}, { authorization: 'Bearer orch_not-a-real-token' }, 401, 'UNAUTHENTICATED'],
      ['/v1/orch/run/list', {}, as(alice.token), 403, 'FORBIDDEN'],
      ['/v1/inbox/send', { to: 'alice', subject: 's', body: 'b' }, as(alice.token), 403, 'FORBIDDEN'],
      ['/v1/inbox/show', { thread: th }, as(alice.token), 403, 'FORBIDDEN'],
      ['/v1/inbox/progress', { thread: th, lease, body: 'mine now' }, as(alice.token), 403, 'FORBIDDEN'],
      ['/v1/inbox/claim', { agent: 'bob' }, as(alice.token), 403, 'FORBIDDEN'],
    ];
    for (const [route, body, headers, status, code] of refusals) {
      const r = await post(server.url, route, body, headers);
      expect([r.status, r.exit, r.json?.error?.code], `${route} ${JSON.stringify(headers)}: ${r.text}`).toEqual([status, 4, code]);
      if (status === 401) expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    for (const path of [`/v1/threads/${th}/messages`, '/v1/runs/r1/events']) {
      const r = await fetch(`${server.url}${path}`, { headers: as(alice.token) });
      expect(r.status, `${path}: ${await r.text()}`).toBe(403);
    }
    expect(data()).toEqual(before);

    // A leader token may; what it writes carries its name, not the client's --from.
    const sent = await post(server.url, '/v1/inbox/send', { to: 'alice', subject: 's', body: 'b', from: 'mallory' }, as(leader.token));
    expect(sent.status, sent.text).toBe(200);
    expect(sent.json.message.author).toBe('ci-leader');
    // Alice's token lists and claims her own thread only.
    const listed = await post(server.url, '/v1/inbox/list', {}, as(alice.token));
    expect(listed.json.threads.map((t: { id: string }) => t.id)).toEqual([sent.json.thread.id]);
    const claimed = await post(server.url, '/v1/inbox/claim', { agent: 'alice' }, as(alice.token));
    expect(claimed.json.thread.id).toBe(sent.json.thread.id);
  });

  it('serves a tokenless loopback request only when it names this machine as its host', async () => {
    const { db } = initDb();
    const server = await served(db);
    const port = new URL(server.url).port;
    expect(await postWithHost(server.url, '/v1/inbox/list', `127.0.0.1:${port}`)).toBe(200);
    expect(await postWithHost(server.url, '/v1/inbox/list', `localhost:${port}`)).toBe(200);
    expect(await postWithHost(server.url, '/v1/inbox/list', `rebound.example:${port}`)).toBe(401);
    expect(await postWithHost(server.url, '/mcp', `rebound.example:${port}`)).toBe(401);
  });
});
