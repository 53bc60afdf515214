import { ConflictError, LeaseLostError, ManualClock, NotFoundError, sequentialIds, writeTransaction } from '@orch/store';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initInbox, openInbox, type Inbox } from './inbox.ts';
import { ask, cancelThreadIn, claim, heartbeat, postFailure, postResult, progress, release, reply } from './leases.ts';
import type { InboxDatabase } from './schema.ts';
import { send, showThread } from './threads.ts';
import { waitForMessages } from './waiting.ts';

let dir: string;
let clock: ManualClock;
let inbox: Inbox;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inbox-lib-'));
  clock = new ManualClock();
  const dbPath = path.join(dir, 'coord.db');
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
