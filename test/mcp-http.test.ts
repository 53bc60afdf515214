// MCP over Streamable HTTP at /mcp of a real `orch serve` process (packages/server/src/mcp-http.ts)
// through the official SDK client, over loopback, authenticated with the server's tokens. A leader token gets the orch tools, a worker token the inbox tools as its agent only;
// the whole leader loop runs with tokens, and what the leader writes is recorded under its token's name.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterEach, describe, expect, it } from 'vitest';
import { initDb, ok, orchOk, rows, snapshot } from './helpers.ts';
import { serve } from './server-harness.ts';

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A real `orch serve` on `db` (the built CLI, over loopback); its /mcp URL. */
async function serveMcp(db: string, args: string[] = []): Promise<string> {
  const served = await serve(db, args);
  cleanups.push(async () => {
    await served.stop();
  });
  return `${served.url}/mcp`;
}

async function connect(url: string, token?: string): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(
    new URL(url),
    token === undefined ? {} : { requestInit: { headers: { Authorization: `Bearer ${token}` } } },
  );
  const client = new Client({ name: 'mcp-http-test', version: '1.0.0' });
  await client.connect(transport);
  cleanups.push(() => client.close());
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<{ isError: boolean; json: any }> {
  const r = (await client.callTool({ name, arguments: args })) as { isError?: boolean; content: { type: string; text: string }[] };
  return { isError: r.isError === true, json: JSON.parse(r.content[0]?.text ?? '') };
}

async function good(client: Client, name: string, args: Record<string, unknown>): Promise<any> {
  const r = await call(client, name, args);
  if (r.isError) throw new Error(`${name} ${JSON.stringify(args)} failed: ${JSON.stringify(r.json)}`);
  return r.json;
}

function token(db: string, args: string[]): string {
  return orchOk(db, ['token', 'create', ...args]).token as string;
}

describe('MCP over Streamable HTTP with tokens (slow)', () => {
  it('serves the leader tools without a token on loopback while the database has no token', async () => {
    const { db } = initDb();
    const client = await connect(await serveMcp(db));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['plan', 'status', 'dispatch', 'wait', 'blocked', 'answer', 'merge']);
    await good(client, 'plan', { action: 'run_init', run: 'r1', goal: 'local' });
  });

  it('refuses a client without a token, or with a revoked one, once the database has tokens', async () => {
    const { db } = initDb();
    const leaderToken = token(db, ['--role', 'leader']);
    const url = await serveMcp(db);
    await expect(connect(url)).rejects.toThrow(/401|UNAUTHENTICATED|needs a token/);
    orchOk(db, ['token', 'revoke', '--name', 'leader']);
    await expect(connect(url, leaderToken)).rejects.toThrow(/401|revoked/);
  });

  it('runs the leader loop: a leader token plans and answers, a worker token works as its agent only', async () => {
    const { db } = initDb();
    const leaderToken = token(db, ['--role', 'leader', '--name', 'ci-leader']);
    const workerToken = token(db, ['--role', 'worker', '--agent', 'w1']);
    const otherToken = token(db, ['--role', 'worker', '--agent', 'w2']);
    const url = await serveMcp(db);
    const o = await connect(url, leaderToken);
    const w = await connect(url, workerToken);
    const other = await connect(url, otherToken);

    expect((await o.listTools()).tools.map((t) => t.name)).toContain('plan');
    const workerTools = (await w.listTools()).tools;
    expect(workerTools.map((t) => t.name)).toEqual(['show', 'claim', 'heartbeat', 'post', 'wait', 'release']);
    for (const t of workerTools) expect(Object.keys(t.inputSchema.properties ?? {}), t.name).not.toContain('agent');

    await good(o, 'plan', { action: 'run_init', run: 'r1', goal: 'ship it' });
    await good(o, 'plan', { action: 'task_add', run: 'r1', task: 't1', title: 'first', default_to: 'w1' });
    const d = await good(o, 'dispatch', { action: 'dispatch', run: 'r1', task: 't1', execution_mode: 'analysis', body: 'count the words' });
    const thread = d.attempt.thread_id as string;

    // Another agent's worker token sees nothing to claim and cannot read or touch w1's thread.
    expect((await good(other, 'claim', {})).claimed).toBe(false);
    const before = snapshot(db);
    const peek = await call(other, 'show', { thread });
    expect(peek.isError).toBe(true);
    expect(peek.json.error.code).toBe('FORBIDDEN');
    expect(snapshot(db)).toEqual(before);

    const claimed = await good(w, 'claim', {});
    expect(claimed.thread.id).toBe(thread);
    expect(claimed.thread.claimed_by).toBe('w1');
    const lease = claimed.lease.token as string;
    await good(w, 'post', { action: 'ask', thread, lease, body: 'which files?' });
    await good(o, 'answer', { run: 'r1', task: 't1', body: 'only a' });
    const waited = await good(w, 'wait', { thread, lease, timeout_seconds: 10 });
    expect(waited.messages.map((m: { body: string }) => m.body)).toContain('only a');
    await good(w, 'post', { action: 'result', thread, lease, body: '42 words' });
    const status = await good(o, 'status', { action: 'status', run: 'r1' });
    expect(status.tasks[0].state).toBe('done');

    // What the leader wrote is recorded under its token's name; the worker's posts under its agent.
    const authors = rows<{ kind: string; author: string }>(db, 'select kind, author from inbox_messages where thread_id = ? order by id', thread);
    expect(authors).toEqual([
      { kind: 'task', author: 'ci-leader' },
      { kind: 'question', author: 'w1' },
      { kind: 'answer', author: 'ci-leader' },
      { kind: 'result', author: 'w1' },
    ]);
  });

  it("counts each running tool call against the token's long requests (429 past --max-streams)", async () => {
    const { db } = initDb();
    const workerToken = token(db, ['--role', 'worker', '--agent', 'w1']);
    const th = ok(db, ['send', '--to', 'w1', '--subject', 's', '--body', 'b']).thread.id as string;
    const url = await serveMcp(db, ['--max-streams', '1']);
    const w = await connect(url, workerToken);
    const claimed = await good(w, 'claim', {});
    expect(claimed.thread.id).toBe(th);
    // While one call waits for an answer, another call of the same token is refused (429); the
    // refusal is awaited, not timed: calls are tried until the wait holds the one slot.
    const waiting = good(w, 'wait', { thread: th, lease: claimed.lease.token, timeout_seconds: 60 });
    let refused: unknown;
    for (let i = 0; i < 200 && refused === undefined; i++) {
      refused = await w.listTools().then(
        () => new Promise((resolve) => setTimeout(() => resolve(undefined), 50)),
        (err: unknown) => err,
      );
    }
    expect(String(refused)).toMatch(/429|RATE_LIMITED/);
    ok(db, ['reply', '--thread', th, '--body', 'go on']);
    expect((await waiting).messages.map((m: { body: string }) => m.body)).toEqual(['go on']);
    expect((await w.listTools()).tools.length).toBeGreaterThan(0);
  });
});
