// The MCP servers (`orch mcp`, `inbox mcp --agent NAME`) through the official SDK client over
// stdio, spawning the built executables: the tool lists and their token cost, the whole leader
// loop through MCP alone (then read back through the CLI), every tool's refusals (changing
// nothing), the worker scope, and how the process ends.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { spawn, spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { freshDb } from './engine.ts';
import { INBOX_BIN, ORCH_BIN, initDb, ok, orchOk, snapshot, tempDir } from './helpers.ts';

/** The budget of each tool set's `tools/list`, in tokens counted as JSON characters / 4. */
const TOKEN_BUDGET = 3000;

const open: Client[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
});

async function connect(bin: string, args: string[]): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [bin, ...args],
    env: { ...process.env } as Record<string, string>,
    stderr: 'pipe',
  });
  const client = new Client({ name: 'mcp-test', version: '1.0.0' });
  await client.connect(transport);
  open.push(client);
  return client;
}

const leader = (db: string) => connect(ORCH_BIN, ['--db', db, 'mcp']);
const worker = (db: string, agent: string) => connect(INBOX_BIN, ['--db', db, 'mcp', '--agent', agent]);

interface Outcome {
  isError: boolean;
  json: any;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<Outcome> {
  const r = (await client.callTool({ name, arguments: args })) as { isError?: boolean; content: { type: string; text: string }[]; structuredContent?: unknown };
  const text = r.content[0]?.text ?? '';
  const json = JSON.parse(text);
  // The text and the structured content are the same document.
  expect(r.structuredContent).toEqual(json);
  return { isError: r.isError === true, json };
}

/** A successful call's document. */
async function good(client: Client, name: string, args: Record<string, unknown>): Promise<any> {
  const r = await call(client, name, args);
  if (r.isError) throw new Error(`${name} ${JSON.stringify(args)} failed: ${JSON.stringify(r.json)}`);
  return r.json;
}

/** A refused call: isError, the documented code, and the database exactly as before. */
async function refused(db: string, client: Client, name: string, args: Record<string, unknown>, code: string, message?: RegExp): Promise<void> {
  const before = snapshot(db);
  const r = await call(client, name, args);
  expect(r.isError, `${name} ${JSON.stringify(args)} should be refused: ${JSON.stringify(r.json)}`).toBe(true);
  expect(r.json.error.code, `${name} ${JSON.stringify(args)}: ${r.json.error.message}`).toBe(code);
  expect(typeof r.json.error.message).toBe('string');
  if (message) expect(r.json.error.message).toMatch(message);
  expect(snapshot(db), `${name} ${JSON.stringify(args)} changed the database`).toEqual(before);
}

/** A run with one task, dispatched in analysis mode to `agent`, through the CLI. */
function dispatched(db: string, run: string, task: string, agent: string): { thread: string } {
  orchOk(db, ['run', 'init', '--run', run, '--goal', `goal of ${run}`]);
  orchOk(db, ['task', 'add', '--run', run, '--task', task, '--title', `title of ${task}`, '--default-to', agent]);
  const d = orchOk(db, ['dispatch', '--run', run, '--task', task, '--execution-mode', 'analysis', '--body', `please do ${task}`]);
  return { thread: d.attempt.thread_id };
}

describe('MCP tool lists (slow)', () => {
  it('lists the leader and worker tools within the token budget', async () => {
    const { db } = initDb();
    const sets = { orch: await leader(db), inbox: await worker(db, 'w1') };
    const names: Record<string, string[]> = {};
    for (const [set, client] of Object.entries(sets)) {
      const { tools } = await client.listTools();
      names[set] = tools.map((t) => t.name);
      const tokens = Math.ceil(JSON.stringify({ tools }).length / 4);
      console.log(`MCP ${set}: ${tools.length} tools, tools/list ≈ ${tokens} tokens (JSON characters / 4; budget ${TOKEN_BUDGET})`);
      expect(tokens).toBeLessThanOrEqual(TOKEN_BUDGET);
      for (const t of tools) {
        expect(t.description?.length ?? 0, t.name).toBeGreaterThan(10);
        expect(t.inputSchema.type).toBe('object');
      }
    }
    expect(names.orch).toEqual(['plan', 'status', 'dispatch', 'wait', 'blocked', 'answer', 'merge']);
    expect(names.inbox).toEqual(['show', 'claim', 'heartbeat', 'post', 'wait', 'release']);
    expect(names.orch?.length).toBeLessThanOrEqual(12);
    expect(names.inbox?.length).toBeLessThanOrEqual(7);
    // The worker's agent is fixed by the server: no tool offers it.
    const { tools } = await sets.inbox.listTools();
    for (const t of tools) expect(Object.keys(t.inputSchema.properties ?? {}), t.name).not.toContain('agent');
  });
});

describe('the leader loop through MCP alone (slow)', () => {
  it('plans, dispatches, claims, asks, answers, posts a result; the CLI reads the same state', async () => {
    const { db } = initDb();
    const o = await leader(db);
    const w = await worker(db, 'w1');

    await good(o, 'plan', { action: 'run_init', run: 'r1', goal: 'ship the thing' });
    await good(o, 'plan', { action: 'task_add', run: 'r1', task: 't1', title: 'first task', default_to: 'w1', priority: 5 });
    await good(o, 'plan', { action: 'task_add', run: 'r1', task: 't2', title: 'second task', default_to: 'w1' });
    await good(o, 'plan', { action: 'dep_add', run: 'r1', task: 't2', depends_on: 't1' });
    const ready = await good(o, 'status', { action: 'ready', run: 'r1' });
    expect(ready.tasks.map((t: { id: string }) => t.id)).toEqual(['t1']);
    const d = await good(o, 'dispatch', { action: 'dispatch', run: 'r1', task: 't1', execution_mode: 'analysis', body: 'count the words' });
    const start = (await good(o, 'status', { action: 'status', run: 'r1' })).last_event;

    const claimed = await good(w, 'claim', {});
    expect(claimed.claimed).toBe(true);
    expect(claimed.thread.id).toBe(d.attempt.thread_id);
    expect(claimed.messages[0].body).toContain('count the words');
    const lease = claimed.lease.token;
    const thread = claimed.thread.id;
    await good(w, 'post', { action: 'progress', thread, lease, body: 'reading' });
    const asked = await good(w, 'post', { action: 'ask', thread, lease, body: 'which files?', payload_json: '{"options": ["a", "b"]}' });
    expect(asked.thread.state).toBe('blocked');

    const events = await good(o, 'wait', { run: 'r1', for: 'task_blocked', after_event: start, timeout_seconds: 30 });
    expect(events.timed_out).toBe(false);
    expect(events.events.map((e: { type: string }) => e.type)).toContain('task_blocked');
    const blocked = await good(o, 'blocked', { run: 'r1' });
    expect(blocked.tasks).toHaveLength(1);
    expect(blocked.tasks[0].question.body).toBe('which files?');
    await good(o, 'answer', { run: 'r1', task: 't1', body: 'only a' });

    const answer = await good(w, 'wait', { thread, lease, timeout_seconds: 30 });
    expect(answer.timed_out).toBe(false);
    expect(answer.messages.map((m: { body: string }) => m.body)).toEqual(['only a']);
    // A JSON-text argument may also be given as the JSON itself.
    const done = await good(w, 'post', { action: 'result', thread, lease, body: '42 words', payload_json: { words: 42 } });
    expect(done.thread.state).toBe('done');
    expect(done.message.payload).toEqual({ words: 42 });
    // A tool's result is exactly what the CLI prints with --json.
    expect(await good(w, 'show', { thread })).toEqual(ok(db, ['show', '--thread', thread]));
    expect(await good(o, 'status', { action: 'task_show', run: 'r1', task: 't1' })).toEqual(orchOk(db, ['task', 'show', '--run', 'r1', '--task', 't1']));

    const status = await good(o, 'status', { action: 'status', run: 'r1' });
    const states = Object.fromEntries(status.tasks.map((t: { id: string; state: string }) => [t.id, t.state]));
    expect(states.t1).toBe('done');
    expect(status.tasks.find((t: { id: string }) => t.id === 't2').ready).toBe(true);
    // The CLI on the same database agrees with what the tools said.
    const cli = orchOk(db, ['status', '--run', 'r1']);
    expect(Object.fromEntries(cli.tasks.map((t: { id: string; state: string }) => [t.id, t.state]))).toEqual(states);
    expect(cli.tasks.find((t: { id: string }) => t.id === 't1').latest_message.body).toBe('42 words');
    expect(cli.last_event).toBe(status.last_event);
    const shown = ok(db, ['show', '--thread', thread]);
    expect(shown.messages.map((m: { kind: string }) => m.kind)).toEqual(['task', 'progress', 'question', 'answer', 'result']);
  });

  it('a wait that finds nothing says timed_out with the cursor to call again with', async () => {
    const { db } = initDb();
    const { thread } = dispatched(db, 'r1', 't1', 'w1');
    const w = await worker(db, 'w1');
    const o = await leader(db);
    const waited = await good(w, 'wait', { thread, timeout_seconds: 1 });
    expect(waited).toMatchObject({ timed_out: true, messages: [] });
    expect(typeof waited.last_message_id).toBe('number');
    const events = await good(o, 'wait', { run: 'r1', timeout_seconds: 1 });
    expect(events).toMatchObject({ timed_out: true, events: [] });
    expect(typeof events.last_event).toBe('number');
  });
});

describe('a cancelled MCP call (slow)', () => {
  it('a wait the client gave up on stops, and marks nothing as delivered to the lease', async () => {
    const { db } = initDb();
    const { thread } = dispatched(db, 'r1', 't1', 'w1');
    const w = await worker(db, 'w1');
    const lease = (await good(w, 'claim', {})).lease.token;
    await good(w, 'post', { action: 'ask', thread, lease, body: 'which one?' });
    const gaveUp = new AbortController();
    const waiting = w.callTool({ name: 'wait', arguments: { thread, lease, timeout_seconds: 120 } }, undefined, { signal: gaveUp.signal });
    await new Promise((resolve) => setTimeout(resolve, 500));
    gaveUp.abort();
    await expect(waiting).rejects.toThrow();
    // The answer comes after the client gave up: a wait still running would take it (and mark it
    // given to the lease) with nobody to hand it to.
    orchOk(db, ['answer', '--run', 'r1', '--task', 't1', '--body', 'the first']);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const next = await good(w, 'wait', { thread, lease, timeout_seconds: 10 });
    expect(next.timed_out).toBe(false);
    expect(next.messages.map((m: { body: string }) => m.body)).toEqual(['the first']);
  });
});

describe('MCP refusals: isError with the documented code, nothing changed (slow)', () => {
  it('worker tools', async () => {
    const { db } = initDb();
    const mine = dispatched(db, 'r1', 't1', 'w1').thread;
    orchOk(db, ['task', 'add', '--run', 'r1', '--task', 't2', '--title', 'other', '--default-to', 'w2']);
    const theirs = orchOk(db, ['dispatch', '--run', 'r1', '--task', 't2', '--execution-mode', 'analysis', '--body', 'not yours']).attempt.thread_id;
    const w = await worker(db, 'w1');
    const lease = (await good(w, 'claim', { thread: mine })).lease.token;

    // Bad input.
    await refused(db, w, 'claim', { lease_seconds: 0 }, 'VALIDATION', /lease_seconds/);
    await refused(db, w, 'claim', { agent: 'w2' }, 'VALIDATION', /agent: is not an argument/);
    await refused(db, w, 'claim', { wait_seconds: 301 }, 'VALIDATION', /wait_seconds: must be at most 300/);
    await refused(db, w, 'show', {}, 'VALIDATION', /thread: is required/);
    await refused(db, w, 'show', { thread: 'bad id!' }, 'VALIDATION', /thread/);
    await refused(db, w, 'post', { thread: mine, lease, body: 'x' }, 'VALIDATION', /action: must be one of progress, ask, result, fail/);
    await refused(db, w, 'post', { action: 'reply', thread: mine, lease, body: 'x' }, 'VALIDATION', /action/);
    await refused(db, w, 'post', { action: 'progress', thread: mine, lease, body: '   ' }, 'VALIDATION', /body/);
    await refused(db, w, 'post', { action: 'progress', thread: mine, lease, body: 'x', payload_json: '[1]' }, 'VALIDATION', /payload_json/);
    await refused(
      db,
      w,
      'post',
      { action: 'progress', thread: mine, lease, body: 'x', payload_json: [1] },
      'VALIDATION',
      /payload_json: must be a JSON object/,
    );
    await refused(db, w, 'post', { action: 'progress', thread: mine, lease, body: 'x', payload_json: '{' }, 'VALIDATION', /payload_json: is not valid JSON/);
    await refused(db, w, 'post', { action: 'result', thread: mine, lease, body_file: '/etc/passwd' }, 'VALIDATION', /body_file: is not an argument/);
    await refused(db, w, 'wait', { thread: mine, lease, timeout_seconds: 301 }, 'VALIDATION', /timeout_seconds: must be at most 300/);
    await refused(db, w, 'wait', { thread: mine, as: 'leader' }, 'VALIDATION', /as: is not an argument/);
    await refused(db, w, 'heartbeat', { thread: mine, lease, lease_seconds: 'ten' }, 'VALIDATION', /lease_seconds/);
    await refused(db, w, 'nope', {}, 'VALIDATION', /unknown tool/);
    // Not found.
    await refused(db, w, 'claim', { thread: 'th_missing' }, 'NOT_FOUND');
    await refused(db, w, 'show', { thread: 'th_missing' }, 'NOT_FOUND');
    await refused(db, w, 'release', { thread: 'th_missing', lease }, 'NOT_FOUND');
    // Another agent's thread: FORBIDDEN, whatever the tool.
    for (const [tool, args] of [
      ['claim', { thread: theirs }],
      ['show', { thread: theirs }],
      ['heartbeat', { thread: theirs, lease }],
      ['post', { action: 'progress', thread: theirs, lease, body: 'x' }],
      ['post', { action: 'result', thread: theirs, lease, body: 'x' }],
      ['wait', { thread: theirs, timeout_seconds: 0 }],
      ['wait', { thread: theirs, lease, timeout_seconds: 0 }],
      ['release', { thread: theirs, lease }],
    ] as const) {
      await refused(db, w, tool, args, 'FORBIDDEN', /acts only as w1/);
    }
    // Lease lost.
    await refused(db, w, 'heartbeat', { thread: mine, lease: 'ls_stale' }, 'LEASE_LOST');
    await refused(db, w, 'post', { action: 'ask', thread: mine, lease: 'ls_stale', body: 'x' }, 'LEASE_LOST');
    await refused(db, w, 'show', { thread: mine, lease: 'ls_stale' }, 'LEASE_LOST');
    await refused(db, w, 'wait', { thread: mine, lease: 'ls_stale', timeout_seconds: 1 }, 'LEASE_LOST');
    await refused(db, w, 'release', { thread: mine, lease: 'ls_stale' }, 'LEASE_LOST');
    // Conflict: the thread is finished.
    await good(w, 'post', { action: 'result', thread: mine, lease, body: 'done' });
    await refused(db, w, 'post', { action: 'fail', thread: mine, lease, body: 'x' }, 'CONFLICT');
    await refused(db, w, 'claim', { thread: mine }, 'CONFLICT');
    // The same worker server serves its own threads still; the other agent's server serves theirs.
    const w2 = await worker(db, 'w2');
    expect((await good(w2, 'claim', {})).thread.id).toBe(theirs);
    await refused(db, w2, 'show', { thread: mine }, 'FORBIDDEN', /acts only as w2/);
  });

  it('leader tools', async () => {
    const { db } = initDb();
    dispatched(db, 'r1', 't1', 'w1');
    orchOk(db, ['task', 'add', '--run', 'r1', '--task', 't2', '--title', 'later', '--default-to', 'w1']);
    orchOk(db, ['dep', 'add', '--run', 'r1', '--task', 't2', '--depends-on', 't1']);
    const o = await leader(db);
    // The status tool reconciles (a write when workers did something): settle it first.
    await good(o, 'status', { action: 'status', run: 'r1' });

    await refused(db, o, 'plan', { run: 'r2', goal: 'g' }, 'VALIDATION', /action/);
    await refused(db, o, 'plan', { action: 'run_init', run: 'r 2', goal: 'g' }, 'VALIDATION', /run/);
    await refused(db, o, 'plan', { action: 'task_add', run: 'r1', task: 't3' }, 'VALIDATION', /title: is required/);
    await refused(db, o, 'plan', { action: 'task_add', run: 'r1', task: 't3', title: 'x', priority: 1.5 }, 'VALIDATION', /priority/);
    await refused(db, o, 'plan', { action: 'run_init', run: 'r1', goal: 'again' }, 'CONFLICT');
    await refused(db, o, 'plan', { action: 'task_add', run: 'nope', task: 't3', title: 'x' }, 'NOT_FOUND');
    await refused(db, o, 'plan', { action: 'dep_add', run: 'r1', task: 't1', depends_on: 't2' }, 'CONFLICT', /cycle/);
    await refused(db, o, 'status', { action: 'status', run: 'nope' }, 'NOT_FOUND');
    await refused(db, o, 'status', { action: 'task_show', run: 'r1', task: 'nope' }, 'NOT_FOUND');
    await refused(db, o, 'dispatch', { action: 'dispatch', run: 'r1', task: 't2', body: 'x' }, 'VALIDATION', /execution_mode/);
    await refused(db, o, 'dispatch', { action: 'dispatch', run: 'r1', task: 't2', execution_mode: 'analysis', body: 'x' }, 'CONFLICT');
    await refused(db, o, 'dispatch', { action: 'dispatch', run: 'r1', task: 'nope', execution_mode: 'analysis', body: 'x' }, 'NOT_FOUND');
    await refused(db, o, 'dispatch', { action: 'retry', run: 'r1', task: 't1' }, 'CONFLICT');
    await refused(db, o, 'dispatch', { action: 'cancel', run: 'nope' }, 'NOT_FOUND');
    await refused(db, o, 'wait', { run: 'r1', timeout_seconds: 301 }, 'VALIDATION', /at most 300/);
    await refused(db, o, 'wait', { run: 'r1', for: 'lunch' }, 'VALIDATION', /for/);
    await refused(db, o, 'wait', { run: 'nope', timeout_seconds: 0 }, 'NOT_FOUND');
    await refused(db, o, 'blocked', { run: 'nope' }, 'NOT_FOUND');
    await refused(db, o, 'answer', { run: 'r1', task: 't1', body: 'not asked' }, 'CONFLICT');
    await refused(db, o, 'answer', { run: 'r1', task: 't1', body_file: 'x' }, 'VALIDATION', /body_file: is not an argument/);
    await refused(db, o, 'merge', { action: 'merge', run: 'r1', task: 't1' }, 'CONFLICT');
    await refused(db, o, 'merge', { action: 'cleanup', run: 'r1' }, 'VALIDATION', /give exactly one of all_completed or attempt/);
    await refused(db, o, 'merge', { action: 'cleanup', run: 'nope', all_completed: true }, 'NOT_FOUND');
  });
});

describe('MCP resources (slow)', () => {
  it("a run's status and a thread, as the CLI prints them; another agent's thread is refused", async () => {
    const { db } = initDb();
    const mine = dispatched(db, 'r1', 't1', 'w1').thread;
    orchOk(db, ['task', 'add', '--run', 'r1', '--task', 't2', '--title', 'other', '--default-to', 'w2']);
    const theirs = orchOk(db, ['dispatch', '--run', 'r1', '--task', 't2', '--execution-mode', 'analysis', '--body', 'x']).attempt.thread_id;
    const o = await leader(db);
    const w = await worker(db, 'w1');
    expect((await o.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate)).toEqual(['orch://runs/{run}/status']);
    expect((await w.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate)).toEqual(['inbox://threads/{thread}']);
    const read = async (client: Client, uri: string) => {
      const r = await client.readResource({ uri });
      expect(r.contents[0]?.mimeType).toBe('application/json');
      return JSON.parse((r.contents[0] as { text: string }).text);
    };
    const status = await read(o, 'orch://runs/r1/status');
    expect(status).toEqual(orchOk(db, ['status', '--run', 'r1']));
    expect(await read(w, `inbox://threads/${mine}`)).toEqual(ok(db, ['show', '--thread', mine]));
    const before = snapshot(db);
    const refusal = async (client: Client, uri: string) => {
      const err = await client.readResource({ uri }).then(
        () => undefined,
        (e: { data?: { error?: { code?: string } } }) => e,
      );
      expect(err, uri).toBeDefined();
      return err?.data?.error?.code;
    };
    expect(await refusal(w, `inbox://threads/${theirs}`)).toBe('FORBIDDEN');
    expect(await refusal(w, 'inbox://threads/th_missing')).toBe('NOT_FOUND');
    expect(await refusal(w, 'inbox://threads/bad%20id')).toBe('VALIDATION');
    expect(await refusal(o, 'orch://runs/nope/status')).toBe('NOT_FOUND');
    expect(await refusal(o, 'orch://elsewhere')).toBe('NOT_FOUND');
    expect(snapshot(db)).toEqual(before);
  });
});

describe('the MCP process ends cleanly (slow)', () => {
  function start(db: string): { child: ReturnType<typeof spawn>; out: () => string; err: () => string; exited: Promise<number | null> } {
    const child = spawn(process.execPath, [INBOX_BIN, '--db', db, 'mcp', '--agent', 'w1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { child, out: () => out, err: () => err, exited };
  }
  const rpc = (id: number, method: string, params: unknown) => `${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`;
  const hello = rpc(1, 'initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } });

  it('refuses to start on a database it cannot use, or a bad --agent: one line, the exit code, nothing on stdout', () => {
    const dir = tempDir();
    const db = freshDb(dir);
    for (const [bin, args, code, error] of [
      [INBOX_BIN, ['--db', db, '--json', 'mcp', '--agent', 'w1'], 6, /"code":"DB_MISSING"/],
      [ORCH_BIN, ['--db', db, '--json', 'mcp'], 6, /"code":"DB_MISSING"/],
      [INBOX_BIN, ['--db', db, 'mcp', '--agent', 'bad agent'], 2, /--agent/],
      [INBOX_BIN, ['--db', db, 'mcp'], 2, /--agent/],
    ] as const) {
      const r = spawnSync(process.execPath, [bin, ...args], { input: '', encoding: 'utf8' });
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(error);
    }
  });

  it('on stdin EOF, answering the calls that came before it, with only protocol on stdout', async () => {
    const { db } = initDb();
    const { thread } = dispatched(db, 'r1', 't1', 'w1');
    const p = start(db);
    // A client that writes its requests and closes its side at once still gets every answer.
    p.child.stdin?.end(`${hello}${rpc(2, 'tools/list', {})}${rpc(3, 'tools/call', { name: 'claim', arguments: {} })}`);
    expect(await p.exited).toBe(0);
    const lines = p.out().trim().split('\n');
    const messages = lines.map((l) => JSON.parse(l));
    expect(messages.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(messages[0]).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: { name: 'inbox' } } });
    expect(messages[2].result.structuredContent).toMatchObject({ claimed: true, thread: { id: thread } });
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal}, even in the middle of a wait`, async () => {
      const { db } = initDb();
      const { thread } = dispatched(db, 'r1', 't1', 'w1');
      const p = start(db);
      p.child.stdin?.write(hello);
      p.child.stdin?.write(rpc(2, 'tools/call', { name: 'wait', arguments: { thread, timeout_seconds: 120 } }));
      // The wait has started once the reply to initialize is out and a moment has passed.
      await new Promise<void>((resolve) => {
        const look = () => (p.out().includes('"id":1') ? setTimeout(resolve, 300) : setTimeout(look, 20));
        look();
      });
      const sent = performance.now();
      p.child.kill(signal);
      expect(await p.exited).toBe(0);
      // Before the wait would have ended: the process does not sit out its calls; the wait
      // answered as timed out (the client, still there, can call again elsewhere).
      expect(performance.now() - sent).toBeLessThan(120_000);
      const answer = p
        .out()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .find((m) => m.id === 2);
      expect(answer?.result.structuredContent).toMatchObject({ timed_out: true, messages: [] });
      expect(p.err()).not.toMatch(/Unhandled|at .*\.js:\d+/);
    });
  }

  it('a closed stdout does not crash it with an unhandled error', async () => {
    const { db } = initDb();
    const p = start(db);
    p.child.stdout?.destroy();
    p.child.stdin?.write(hello);
    p.child.stdin?.write(rpc(2, 'tools/list', {}));
    setTimeout(() => p.child.stdin?.end(), 300);
    const code = await p.exited;
    expect(p.err()).not.toMatch(/Unhandled|EPIPE.*\n\s+at /);
    // A client gone before its answers could be written: exit 0 (ended) or 7 (output failed), never a crash.
    expect([0, 7]).toContain(code);
  });
});
