import {
  ConflictError,
  ForbiddenError,
  LeaseLostError,
  ManualClock,
  NotFoundError,
  ValidationError,
  migrate,
  openDatabase,
  sequentialIds,
  writeTransaction,
} from '@orch/store';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freshDb, rawSql, rows } from '../../../test/engine.ts';
import { initInbox, openInbox, type Inbox } from './inbox.ts';
import { claimPick, firstPage } from './message-pages.ts';
import { inboxMigrations } from './migrations.ts';
import { cancelThreadIn, reply } from './leader-side.ts';
import { ask, claim, heartbeat, postFailure, postResult, progress, release } from './leases.ts';
import type { InboxDatabase } from './schema.ts';
import { send, showThread } from './threads.ts';
import { waitForMessages } from './waiting.ts';

let dir: string;
let clock: ManualClock;
let inbox: Inbox;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inbox-lib-'));
  clock = new ManualClock();
  const dbPath = freshDb(dir);
  await initInbox({ path: dbPath, clock });
  inbox = await openInbox({ path: dbPath, clock, ids: sequentialIds() });
});

afterEach(async () => {
  await inbox.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function openThread(to = 'w1', subject = 'task') {
  return (await send(inbox, { to, subject, from: 'leader', body: 'do the thing' })).thread.id;
}

async function claimed(agent = 'w1', leaseSeconds?: number) {
  const r = await claim(inbox, { agent, leaseSeconds });
  if (!r.claimed) throw new Error(`expected a claim: ${r.reason}`);
  return r;
}

describe('claim', () => {
  it('claims the oldest open thread for the agent and issues a lease', async () => {
    const first = await openThread();
    await openThread('w2');
    await openThread();
    const r = await claimed();
    expect(r.thread.id).toBe(first);
    expect(r.thread.state).toBe('claimed');
    expect(r.thread.claimed_by).toBe('w1');
    expect(r.thread.claim_count).toBe(1);
    expect(r.messages.map((m) => m.kind)).toEqual(['task']);
    expect(r.lease.expires_at).toBe(new Date(clock.now() + 900_000).toISOString());
  });

  it('answers {claimed: false} when nothing is claimable, and waits for a thread to appear', async () => {
    expect(await claim(inbox, { agent: 'w1' })).toMatchObject({ claimed: false, agent: 'w1' });
    // With the manual clock the wait times out instantly: nothing appeared.
    expect(await claim(inbox, { agent: 'w1', waitSeconds: 5 })).toMatchObject({ claimed: false });
  });

  it('refuses a thread assigned to someone else (4) and an unknown thread (3)', async () => {
    const t = await openThread('w2');
    await expect(claim(inbox, { agent: 'w1', threadId: t })).rejects.toBeInstanceOf(ConflictError);
    await expect(claim(inbox, { agent: 'w1', threadId: 'th_nope' })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('does not hand out a thread whose lease is live', async () => {
    const t = await openThread();
    await claimed();
    const again = await claim(inbox, { agent: 'w1', threadId: t });
    expect(again).toMatchObject({ claimed: false, thread_id: t });
  });
});

describe('leases', () => {
  it('expire by the clock: the thread is claimable again, the claim count goes up, the old token is dead', async () => {
    const t = await openThread();
    const first = await claimed('w1', 60);
    clock.advance(59_000);
    expect(await claim(inbox, { agent: 'w1' })).toMatchObject({ claimed: false });
    clock.advance(1_000);
    // The expired token is refused even before anyone re-claims.
    await expect(progress(inbox, { threadId: t, lease: first.lease.token, body: 'late' })).rejects.toBeInstanceOf(LeaseLostError);
    const second = await claimed('w1', 60);
    expect(second.thread.id).toBe(t);
    expect(second.thread.claim_count).toBe(2);
    expect(second.lease.token).not.toBe(first.lease.token);
    await expect(postResult(inbox, { threadId: t, lease: first.lease.token, body: 'stale' })).rejects.toBeInstanceOf(LeaseLostError);
    const shown = await showThread(inbox, { threadId: t });
    expect(shown.messages.map((m) => m.kind)).toEqual(['task']);
    await postResult(inbox, { threadId: t, lease: second.lease.token, body: 'fresh' });
    expect((await showThread(inbox, { threadId: t })).thread.state).toBe('done');
  });

  it('heartbeat and progress extend the lease by its claimed length', async () => {
    const t = await openThread();
    const c = await claimed('w1', 60);
    clock.advance(50_000);
    const hb = await heartbeat(inbox, { threadId: t, lease: c.lease.token });
    expect(hb.lease.expires_at).toBe(new Date(clock.now() + 60_000).toISOString());
    clock.advance(50_000);
    const p = await progress(inbox, { threadId: t, lease: c.lease.token, body: 'half way', payload: { pct: 50 } });
    expect(p.lease?.expires_at).toBe(new Date(clock.now() + 60_000).toISOString());
    expect(p.message.payload).toEqual({ pct: 50 });
    const longer = await heartbeat(inbox, { threadId: t, lease: c.lease.token, leaseSeconds: 600 });
    expect(longer.lease.seconds).toBe(600);
  });

  it('a foreign token changes nothing', async () => {
    const t = await openThread();
    await claimed();
    const before = await showThread(inbox, { threadId: t });
    await expect(ask(inbox, { threadId: t, lease: 'ls_forged', body: 'q?' })).rejects.toBeInstanceOf(LeaseLostError);
    expect(await showThread(inbox, { threadId: t })).toEqual(before);
  });

  it('release opens the thread again and kills the token', async () => {
    const t = await openThread();
    const c = await claimed();
    const r = await release(inbox, { threadId: t, lease: c.lease.token });
    expect(r.thread).toMatchObject({ state: 'open', claimed_by: null });
    await expect(heartbeat(inbox, { threadId: t, lease: c.lease.token })).rejects.toBeInstanceOf(LeaseLostError);
    expect((await claimed()).thread.claim_count).toBe(2);
  });

  it('a cancelled thread revokes the lease (5) and cannot be claimed', async () => {
    const t = await openThread();
    const c = await claimed();
    await writeTransaction<InboxDatabase, unknown>(inbox.store, (trx) => cancelThreadIn(trx, inbox, { threadId: t, by: 'leader', reason: 'not needed' }));
    await expect(progress(inbox, { threadId: t, lease: c.lease.token, body: 'x' })).rejects.toBeInstanceOf(LeaseLostError);
    await expect(claim(inbox, { agent: 'w1', threadId: t })).rejects.toBeInstanceOf(ConflictError);
  });

  it('result and fail end the thread; a second result is a conflict (4)', async () => {
    const t1 = await openThread();
    const c1 = await claimed();
    await postResult(inbox, { threadId: t1, lease: c1.lease.token, body: 'done' });
    await expect(postResult(inbox, { threadId: t1, lease: c1.lease.token, body: 'again' })).rejects.toBeInstanceOf(ConflictError);
    const t2 = await openThread();
    const c2 = await claimed();
    const f = await postFailure(inbox, { threadId: t2, lease: c2.lease.token, body: 'broken' });
    expect(f.thread.state).toBe('failed');
    expect(f.message.kind).toBe('failure');
    await expect(reply(inbox, { threadId: t2, from: 'leader', body: 'too late' })).rejects.toBeInstanceOf(ConflictError);
  });
});

describe('questions', () => {
  it('ask blocks, reply unblocks, and wait returns an answer that arrived before it was called', async () => {
    const t = await openThread();
    const c = await claimed();
    const q = await ask(inbox, { threadId: t, lease: c.lease.token, body: 'v1 or v2?' });
    expect(q.thread.state).toBe('blocked');
    const a = await reply(inbox, { threadId: t, from: 'leader', body: 'v2', payload: { choice: 'v2' } });
    expect(a.thread.state).toBe('claimed');
    const w = await waitForMessages(inbox, { threadId: t, timeoutSeconds: 0 });
    expect(w.timed_out).toBe(false);
    expect(w.messages.map((m) => [m.kind, m.body])).toEqual([['answer', 'v2']]);
    expect(w.last_message_id).toBe(a.message.id);
    // Continuing from the cursor: nothing new, so the wait times out.
    const again = await waitForMessages(inbox, { threadId: t, timeoutSeconds: 1, afterMessage: w.last_message_id });
    expect(again).toMatchObject({ timed_out: true, messages: [], last_message_id: a.message.id });
  });

  it('a blocked thread whose lease expired keeps its question for the next claimer', async () => {
    const t = await openThread();
    const c = await claimed('w1', 30);
    await ask(inbox, { threadId: t, lease: c.lease.token, body: 'which db?' });
    clock.advance(31_000);
    const next = await claimed();
    expect(next.thread).toMatchObject({ id: t, state: 'blocked', claim_count: 2 });
    expect(next.messages.map((m) => m.kind)).toEqual(['task', 'question']);
  });

  it('wait with a lease refuses a dead lease and keeps a live one alive', async () => {
    const t = await openThread();
    const c = await claimed('w1', 30);
    await expect(waitForMessages(inbox, { threadId: t, timeoutSeconds: 1, lease: 'ls_other' })).rejects.toBeInstanceOf(LeaseLostError);
    // 120 s of waiting on a 30 s lease: the waiter heartbeats, so the lease is still live afterwards.
    const w = await waitForMessages(inbox, { threadId: t, timeoutSeconds: 120, lease: c.lease.token });
    expect(w.timed_out).toBe(true);
    await expect(progress(inbox, { threadId: t, lease: c.lease.token, body: 'still here' })).resolves.toBeDefined();
  });

  it('wait with a lease heartbeats on monotonic time: the wall clock set back an hour mid-wait does not stop it', async () => {
    const t = await openThread();
    const c = await claimed('w1', 30);
    const sleep = clock.sleep.bind(clock);
    let stepped = false;
    clock.sleep = async (ms: number) => {
      if (!stepped) {
        stepped = true;
        clock.setWall(clock.now() - 3_600_000);
      }
      return sleep(ms);
    };
    const w = await waitForMessages(inbox, { threadId: t, timeoutSeconds: 120, lease: c.lease.token });
    expect(w.timed_out).toBe(true);
    // The last heartbeat was at most a third of the lease ago, on the clock as it now reads.
    const left = Date.parse(w.thread.lease_expires_at ?? '') - clock.now();
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(30_000);
  });

  it('wait wakes when the thread is cancelled', async () => {
    const t = await openThread();
    await claimed();
    await writeTransaction<InboxDatabase, unknown>(inbox.store, (trx) => cancelThreadIn(trx, inbox, { threadId: t, by: 'leader' }));
    const w = await waitForMessages(inbox, { threadId: t, timeoutSeconds: 60 });
    expect(w).toMatchObject({ timed_out: false, messages: [], thread: { state: 'cancelled' } });
  });
});

describe('send', () => {
  it('appends a note to a live thread and refuses a finished one', async () => {
    const t = await openThread();
    const note = await send(inbox, { threadId: t, from: 'leader', body: 'extra detail' });
    expect(note).toMatchObject({ created: false, message: { kind: 'note', thread_id: t } });
    await expect(send(inbox, { threadId: t, to: 'w9', from: 'leader', body: 'x' })).rejects.toBeInstanceOf(ConflictError);
    const c = await claimed();
    await postResult(inbox, { threadId: t, lease: c.lease.token, body: 'ok' });
    await expect(send(inbox, { threadId: t, from: 'leader', body: 'x' })).rejects.toBeInstanceOf(ConflictError);
  });
});

describe('roles and delivery marks', () => {
  it('records who wrote each message by the call that wrote it, whatever the author names', async () => {
    const t = (await send(inbox, { to: 'leader', subject: 's', from: 'leader', body: 'task' })).thread.id;
    const c = await claimed('leader');
    const q = await ask(inbox, { threadId: t, lease: c.lease.token, body: 'q?' });
    const note = await send(inbox, { threadId: t, from: 'ana', body: 'a person writes', role: 'person' });
    const a = await reply(inbox, { threadId: t, from: 'leader', body: 'a' });
    const r = await progress(inbox, { threadId: t, lease: c.lease.token, body: 'log line', role: 'runner' });
    expect([q.message.role, note.message.role, a.message.role, r.message.role]).toEqual(['worker', 'person', 'leader', 'runner']);
    // The holder (named `leader`) waits for the leader side: the note and the answer, not its own or its runner's.
    const w = await waitForMessages(inbox, { threadId: t, timeoutSeconds: 0, lease: c.lease.token });
    expect(w.messages.map((m) => m.id)).toEqual([note.message.id, a.message.id]);
    // The leader's wait gets the worker side: the question and the runner's line.
    const l = await waitForMessages(inbox, { threadId: t, timeoutSeconds: 0, afterMessage: 0, as: 'leader' });
    expect(l.messages.map((m) => m.id)).toEqual([q.message.id, r.message.id]);
    // Named, the leader is anyone but the thread's agent; the agent itself (named `leader` here) is the worker side.
    expect((await waitForMessages(inbox, { threadId: t, timeoutSeconds: 0, afterMessage: 0, agent: 'boss' })).messages.map((m) => m.id)).toEqual([
      q.message.id,
      r.message.id,
    ]);
    expect((await waitForMessages(inbox, { threadId: t, timeoutSeconds: 0, afterMessage: q.message.id, agent: 'leader' })).messages.map((m) => m.id)).toEqual([
      note.message.id,
      a.message.id,
    ]);
  });

  it('claim, wait and show --lease advance what the lease was given; a new claim starts from the newest message', async () => {
    const t = await openThread();
    const c = await claimed();
    const n1 = await send(inbox, { threadId: t, from: 'leader', body: 'n1' });
    const shown = await showThread(inbox, { threadId: t, lease: c.lease.token });
    expect(shown.last_message_id).toBe(n1.message.id);
    expect((await waitForMessages(inbox, { threadId: t, timeoutSeconds: 0, lease: c.lease.token })).timed_out).toBe(true);
    // A page that starts past what was given leaves the mark where it was.
    const n2 = await send(inbox, { threadId: t, from: 'leader', body: 'n2' });
    const n3 = await send(inbox, { threadId: t, from: 'leader', body: 'n3' });
    await showThread(inbox, { threadId: t, lease: c.lease.token, afterMessage: n2.message.id });
    expect((await waitForMessages(inbox, { threadId: t, timeoutSeconds: 0, lease: c.lease.token })).messages.map((m) => m.id)).toEqual([
      n2.message.id,
      n3.message.id,
    ]);
    await release(inbox, { threadId: t, lease: c.lease.token });
    const again = await claimed();
    expect((await waitForMessages(inbox, { threadId: t, timeoutSeconds: 0, lease: again.lease.token })).timed_out).toBe(true);
    // A stale lease cannot read with show --lease.
    await expect(showThread(inbox, { threadId: t, lease: c.lease.token })).rejects.toBeInstanceOf(LeaseLostError);
  });

  it('a release keeps a blocked thread blocked, nobody holding it; an answer then opens it', async () => {
    const t = await openThread();
    const c = await claimed();
    const q = await ask(inbox, { threadId: t, lease: c.lease.token, body: 'which?' });
    const r = await release(inbox, { threadId: t, lease: c.lease.token });
    expect(r.thread).toMatchObject({ state: 'blocked', claimed_by: null, lease_expires_at: null, lease_expired: false });
    const a = await reply(inbox, { threadId: t, from: 'leader', body: 'this one' });
    expect(a.thread.state).toBe('open');
    const next = await claimed();
    expect(next.thread).toMatchObject({ id: t, state: 'claimed', claim_count: 2 });
    expect(next.messages.map((m) => m.id)).toEqual([next.messages[0]?.id, q.message.id, a.message.id]);
  });

  it('a library caller cannot store a payload deeper than 64 levels; stored rows that are read back as a marker', async () => {
    const t = await openThread();
    const c = await claimed();
    let deep: unknown = {};
    for (let i = 0; i < 100_000; i++) deep = { d: deep };
    const before = await showThread(inbox, { threadId: t });
    await expect(progress(inbox, { threadId: t, lease: c.lease.token, body: 'x', payload: deep as Record<string, unknown> })).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(send(inbox, { threadId: t, from: 'leader', body: 'x', payload: deep as Record<string, unknown> })).rejects.toBeInstanceOf(ValidationError);
    expect(await showThread(inbox, { threadId: t })).toEqual(before);
    rawSql(freshDb(dir), 'update inbox_messages set payload = ? where thread_id = ?', ['[1, 2]', t]);
    expect((await showThread(inbox, { threadId: t })).messages[0]?.payload).toEqual({
      unreadable_json: { reason: 'not a JSON object', bytes: 6, raw: '[1, 2]' },
    });
  });
});

describe('message pages', () => {
  const sizes = (...bytes: number[]) => bytes.map((b, i) => ({ id: i + 1, kind: i === 0 ? ('task' as const) : ('note' as const), bytes: b }));

  it('firstPage: the longest prefix within the budget and the limit, never empty', () => {
    expect(firstPage(sizes(5, 5, 5), { maxBytes: 10 })).toEqual({ count: 2, throughId: 2, more: true });
    expect(firstPage(sizes(50, 5), { maxBytes: 10 })).toEqual({ count: 1, throughId: 1, more: true });
    expect(firstPage(sizes(1, 1, 1), { maxBytes: 10, limit: 2 })).toEqual({ count: 2, throughId: 2, more: true });
    expect(firstPage(sizes(1, 1), { maxBytes: 10 })).toEqual({ count: 2, throughId: 2, more: false });
    expect(firstPage([], { maxBytes: 10 })).toEqual({ count: 0, throughId: undefined, more: false });
  });

  it('claimPick: the task and a pending question always, then the newest that fit', () => {
    expect(claimPick(sizes(1, 1, 1), { maxBytes: 100, blocked: false })).toEqual({ pinned: [], recentFrom: 1, omitted: null });
    expect(claimPick(sizes(1, 5, 5, 5, 5), { maxBytes: 11, blocked: false })).toEqual({
      pinned: [1],
      recentFrom: 4,
      omitted: { count: 2, first_id: 2, last_id: 3 },
    });
    // The newest is returned even when it alone is over the budget.
    expect(claimPick(sizes(1, 5, 50), { maxBytes: 10, blocked: false })).toEqual({
      pinned: [1],
      recentFrom: 3,
      omitted: { count: 1, first_id: 2, last_id: 2 },
    });
    const withQuestion = [
      ...sizes(1, 5),
      { id: 3, kind: 'question' as const, bytes: 5 },
      ...sizes(0, 5, 5, 5)
        .slice(1)
        .map((m, i) => ({ ...m, id: 4 + i })),
    ];
    expect(claimPick(withQuestion, { maxBytes: 16, blocked: true })).toEqual({ pinned: [1, 3], recentFrom: 5, omitted: { count: 2, first_id: 2, last_id: 4 } });
  });
});

describe('migration v4', () => {
  it("backfills roles by kind and the held lease's delivery mark from a v3 database; running it again changes nothing", async () => {
    const file = freshDb(dir, 'old.db');
    const store = await openDatabase({ path: file, create: true, initHint: 'init' });
    await migrate(store, { ...inboxMigrations, migrations: inboxMigrations.migrations.slice(0, 3) }, clock);
    await store.close();
    const thread = (...values: unknown[]) =>
      rawSql(
        file,
        'insert into inbox_threads (id, subject, assigned_to, created_by, state, claimed_by, lease_token, lease_expires_at, lease_ms, claim_count, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        values,
      );
    thread('th_held', 's', 'w', 'leader', 'claimed', 'w', 'ls_x', clock.now() + 60_000, 60_000, 1, 1, 1);
    thread('th_open', 's', 'w', 'leader', 'open', null, null, null, null, 0, 1, 1);
    const msg = (...values: unknown[]) => rawSql(file, 'insert into inbox_messages (thread_id, author, kind, body, created_at) values (?, ?, ?, ?, 1)', values);
    for (const [t, author, kind] of [
      ['th_held', 'leader', 'task'],
      ['th_held', 'w', 'question'],
      ['th_held', 'leader', 'answer'],
      ['th_held', 'w', 'progress'],
      ['th_held', 'leader', 'note'],
      ['th_open', 'leader', 'task'],
    ] as const)
      msg(t, author, kind, 'b');
    const first = await initInbox({ path: file, clock });
    expect(first.applied).toEqual([{ package: 'inbox', version: 4, name: 'message_roles_and_delivery_marks' }]);
    expect(rows(file, 'select kind, role from inbox_messages order by id')).toEqual([
      { kind: 'task', role: 'leader' },
      { kind: 'question', role: 'worker' },
      { kind: 'answer', role: 'leader' },
      { kind: 'progress', role: 'worker' },
      { kind: 'note', role: 'leader' },
      { kind: 'task', role: 'leader' },
    ]);
    expect(rows(file, 'select id, delivered_message_id as d from inbox_threads order by seq')).toEqual([
      { id: 'th_held', d: 4 },
      { id: 'th_open', d: null },
    ]);
    expect((await initInbox({ path: file, clock })).applied).toEqual([]);
    // The worker that held the lease across the upgrade gets the note it had not seen, not the answer it had.
    const old = await openInbox({ path: file, clock });
    try {
      expect((await waitForMessages(old, { threadId: 'th_held', timeoutSeconds: 0, lease: 'ls_x' })).messages.map((m) => m.kind)).toEqual(['note']);
    } finally {
      await old.close();
    }
  });
});

// The rule `inbox mcp --agent NAME` (and a server's worker tokens) rest on: an inbox limited to one
// agent touches only that agent's threads, whatever the operation, and a refusal writes nothing.
describe('an inbox acting as one agent', () => {
  it("refuses every thread-addressed operation on another agent's thread (FORBIDDEN), and a claim as another agent", async () => {
    const mine = await openThread('w1');
    const theirs = await openThread('w2');
    const theirLease = (await claim(inbox, { agent: 'w2', threadId: theirs })) as { lease: { token: string } };
    const dbPath = inbox.store.path;
    const scoped = await openInbox({ path: dbPath, clock, ids: sequentialIds(), actingAgent: 'w1' });
    try {
      const lease = theirLease.lease.token;
      const before = await rowsOf(dbPath);
      const refusals: [string, () => Promise<unknown>][] = [
        ['claim as w2', () => claim(scoped, { agent: 'w2' })],
        ['claim their thread', () => claim(scoped, { agent: 'w1', threadId: theirs })],
        ['show', () => showThread(scoped, { threadId: theirs })],
        ['show with lease', () => showThread(scoped, { threadId: theirs, lease })],
        ['heartbeat', () => heartbeat(scoped, { threadId: theirs, lease })],
        ['progress', () => progress(scoped, { threadId: theirs, lease, body: 'x' })],
        ['ask', () => ask(scoped, { threadId: theirs, lease, body: 'x' })],
        ['result', () => postResult(scoped, { threadId: theirs, lease, body: 'x' })],
        ['fail', () => postFailure(scoped, { threadId: theirs, lease, body: 'x' })],
        ['release', () => release(scoped, { threadId: theirs, lease })],
        ['wait', () => waitForMessages(scoped, { threadId: theirs, timeoutSeconds: 0 })],
        ['wait with lease', () => waitForMessages(scoped, { threadId: theirs, lease, timeoutSeconds: 0 })],
      ];
      for (const [what, op] of refusals) {
        const err = await op().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, what).toBeInstanceOf(ForbiddenError);
        expect((err as ForbiddenError).code, what).toBe('FORBIDDEN');
        expect((err as ForbiddenError).exitCode, what).toBe(4);
      }
      expect(await rowsOf(dbPath)).toEqual(before);
      // Its own thread works as ever.
      const r = await claim(scoped, { agent: 'w1' });
      expect(r.claimed && r.thread.id).toBe(mine);
    } finally {
      await scoped.close();
    }
  });
});

async function rowsOf(dbPath: string) {
  return { threads: rows(dbPath, 'select * from inbox_threads order by id'), messages: rows(dbPath, 'select * from inbox_messages order by id') };
}
