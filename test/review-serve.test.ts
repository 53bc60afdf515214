// Review of issue 16 (orch serve, remote CLIs): one test per bug found, each against a real
// `orch serve` over loopback (or the real server module on a real database), written to fail
// before its fix.
import { openDatabase, type Store } from '@orch/store';
import { afterEach, describe, expect, it } from 'vitest';
import { Idempotency, ensureIdempotencyTable } from '../packages/server/src/idempotency.ts';
import { handleCommand } from '../packages/server/src/handle.ts';
import { DEFAULT_LIMITS, Limits } from '../packages/server/src/limits.ts';
import { routeTable } from '../packages/server/src/routes.ts';
import { randomIds, systemClock } from '@orch/store';
import { ORCH_BIN, initDb, ok, orchOk, rows } from './helpers.ts';
import { spawnSync } from 'node:child_process';
import { post, readEvents, type Served, serve } from './server-harness.ts';

const servers: Served[] = [];
const stores: Store[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

async function served(db: string, args: string[] = []): Promise<Served> {
  const s = await serve(db, args);
  servers.push(s);
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('idempotency keys (slow)', () => {
  it('two requests with one key at the same moment run the command once', async () => {
    const { db } = initDb();
    const store = await openDatabase({ path: db });
    stores.push(store);
    await ensureIdempotencyTable(store);
    const idempotency = new Idempotency(store, () => Date.now());
    let runs = 0;
    const work = async () => {
      runs++;
      await sleep(20);
      return { status: 200, headers: { 'Orch-Exit-Code': '0' }, body: '{}\n' };
    };
    const attempt = { principal: 'local', key: 'k'.repeat(22), command: 'inbox send', bodySha256: 'x' };
    const answers = await Promise.all([idempotency.run(attempt, true, work), idempotency.run(attempt, true, work)]);
    expect(runs).toBe(1);
    expect(answers.map((a) => a.headers['Idempotency-Replayed'] ?? 'first').sort()).toEqual(['first', 'true']);
  });

  it('over HTTP: the same send sent many times at once with one key opens one thread', async () => {
    const { db } = initDb();
    const server = await served(db);
    const key = 'same-key-for-every-copy-1';
    const body = { to: 'qa', subject: 'once', body: 'only once' };
    const answers = await Promise.all(Array.from({ length: 8 }, () => post(server.url, '/v1/inbox/send', body, { 'idempotency-key': key })));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    expect(new Set(answers.map((a) => a.json.thread.id)).size).toBe(1);
    expect(rows(db, "select id from inbox_threads where subject = 'once'")).toHaveLength(1);
  });

  it('a 429 (too many waits open) is not kept: the retry with the same key runs once the slot is free', async () => {
    const { db } = initDb();
    ok(db, ['send', '--to', 'qa', '--subject', 's', '--body', 'b']);
    const th = ok(db, ['list']).threads[0].id as string;
    const server = await served(db, ['--max-streams', '1']);
    const cut = new AbortController();
    const holding = fetch(`${server.url}/v1/inbox/wait`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ thread: th, timeoutSeconds: 600 }),
      signal: cut.signal,
    }).catch(() => undefined);
    await sleep(500);
    const key = 'claim-key-429-then-free-1';
    const body = { agent: 'qa', waitSeconds: 5 };
    const refused = await post(server.url, '/v1/inbox/claim', body, { 'idempotency-key': key });
    expect([refused.status, refused.json.error.code]).toEqual([429, 'RATE_LIMITED']);
    cut.abort();
    await holding;
    await sleep(500);
    const again = await post(server.url, '/v1/inbox/claim', body, { 'idempotency-key': key });
    expect([again.status, again.json.claimed, again.json.thread?.id]).toEqual([200, true, th]);
  });
});

describe('who is the local user (slow)', () => {
  it('behind a reverse proxy on this host (--host 127.0.0.1 --insecure-http): no tokenless leader, and no start without a token', async () => {
    const { db } = initDb();
    const refused = spawnSync(process.execPath, [ORCH_BIN, '--db', db, '--json', 'serve', '--port', '0', '--insecure-http'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect([refused.status, JSON.parse(refused.stderr || '{}').error?.message]).toEqual([2, expect.stringMatching(/no token/)]);
    orchOk(db, ['token', 'create', '--role', 'leader', '--name', 'proxied']);
    const server = await served(db, ['--insecure-http']);
    orchOk(db, ['token', 'revoke', '--name', 'proxied']);
    // What nginx sends by default: Host is the upstream's address, the peer is loopback.
    const r = await post(server.url, '/v1/inbox/send', { to: 'qa', subject: 'via proxy', body: 'anyone' });
    expect([r.status, r.json?.error?.code]).toEqual([401, 'UNAUTHENTICATED']);
    expect(rows(db, "select id from inbox_threads where subject = 'via proxy'")).toHaveLength(0);
  });

  it('a server bound beyond loopback never serves a tokenless request as the leader, even once its tokens are revoked', async () => {
    const { db } = initDb();
    orchOk(db, ['token', 'create', '--role', 'leader', '--name', 'only']);
    const server = await served(db, ['--host', '0.0.0.0', '--insecure-http']);
    const port = new URL(server.url).port;
    const url = `http://127.0.0.1:${port}`;
    expect((await post(url, '/v1/inbox/list', {})).status).toBe(401);
    orchOk(db, ['token', 'revoke', '--name', 'only']);
    const before = rows(db, 'select id from inbox_threads');
    const r = await post(url, '/v1/inbox/send', { to: 'qa', subject: 'as leader', body: 'from nobody' });
    expect([r.status, r.json?.error?.code]).toEqual([401, 'UNAUTHENTICATED']);
    expect(rows(db, 'select id from inbox_threads')).toEqual(before);
  });
});

describe('a token revoked while its stream is open (slow)', () => {
  it('ends the stream with UNAUTHENTICATED and sends nothing committed after the revocation', async () => {
    const { db } = initDb();
    const leader = orchOk(db, ['token', 'create', '--role', 'leader', '--name', 'watcher']);
    const server = await served(db);
    const as = { authorization: `Bearer ${leader.token}` };
    await post(server.url, '/v1/orch/run/init', { run: 'r', goal: 'g' }, as);
    const seen = readEvents(`${server.url}/v1/runs/r/events`, (e) => e.some((x) => x.event === 'error' || x.data.includes('"task":"late"')), as);
    await sleep(300);
    orchOk(db, ['token', 'revoke', '--name', 'watcher']);
    await sleep(300);
    const added = spawnSync(
      process.execPath,
      [ORCH_BIN, '--db', db, '--json', 'task', 'add', '--run', 'r', '--task', 'late', '--title', 'L', '--default-to', 'w'],
      {
        encoding: 'utf8',
      },
    );
    expect(added.status, added.stderr).toBe(0);
    const events = await seen;
    expect(events.some((e) => e.data.includes('"task":"late"'))).toBe(false);
    const last = events.at(-1);
    expect([last?.event, JSON.parse(last?.data ?? '{}').error?.code]).toEqual(['error', 'UNAUTHENTICATED']);
  });
});

/** The signals Node keeps referenced from `signal` for every AbortSignal.any() made with it (undefined where Node does not say). */
function dependants(signal: AbortSignal): number | undefined {
  const key = Object.getOwnPropertySymbols(signal).find((k) => k.description === 'kDependantSignals');
  const set = key === undefined ? undefined : (signal as unknown as Record<symbol, unknown>)[key];
  // Node's own Set (another realm under the test runner): recognised by its tag, not instanceof.
  return Object.prototype.toString.call(set) === '[object Set]' ? (set as Set<unknown>).size : undefined;
}

describe('the server signal every request waits on', () => {
  it('keeps nothing per request: a long-lived server does not grow with the requests it answered', async () => {
    const { db } = initDb();
    const store = await openDatabase({ path: db });
    stores.push(store);
    await ensureIdempotencyTable(store);
    const stopping = new AbortController();
    const env = {
      dbPath: db,
      cwd: process.cwd(),
      ids: randomIds,
      routes: routeTable(),
      idempotency: new Idempotency(store, () => Date.now()),
      limits: new Limits({ ...DEFAULT_LIMITS, ratePerSecond: 0 }, systemClock),
      stopping: stopping.signal,
    };
    for (let i = 0; i < 50; i++) {
      const answer = await handleCommand(env, {
        principal: { kind: 'local' },
        path: 'inbox/list',
        body: '{}',
        signal: new AbortController().signal,
        publicDb: 'http://127.0.0.1:1',
      });
      expect(answer.status).toBe(200);
    }
    // Node 20: a signal AbortSignal.any() made from the server's stays in its set of dependants for good.
    expect(dependants(stopping.signal) ?? 0).toBe(0);
  });
});
