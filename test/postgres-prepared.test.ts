// The hot paths on PostgreSQL run as named prepared statements, planned once per connection
// (pg/open.ts). A table that changes shape under a long-lived process (a newer version migrating
// the schema while `inbox work` runs) makes such a statement fail with "cached plan must not change
// result type": the transaction must run again on a new connection, not fail. And a waiter whose
// LISTEN connection is up wakes on its own schema's commits, not on every commit of the server.
import { spawnSync } from 'node:child_process';
import { claim, openInbox, send } from '@orch/inbox';
import { systemClock, waitForChange } from '@orch/store';
import { expect, it } from 'vitest';
import { INBOX_BIN } from './helpers.ts';
import { describePg, freshSchema, pgClient, pgExec, pgRows } from './pg-server.ts';

function initSchema(url: string): void {
  const r = spawnSync(process.execPath, [INBOX_BIN, '--db', url, 'init'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`inbox init: ${r.stderr}`);
}

describePg('PostgreSQL: named prepared statements and quiet waiting', () => {
  it('a claim after the thread table gained a column (a migration by a newer version) runs again and succeeds', async () => {
    const { url, schema } = freshSchema();
    initSchema(url);
    const inbox = await openInbox({ path: url });
    try {
      for (const n of [1, 2, 3]) await send(inbox, { to: 'w', from: 'lead', subject: `job ${n}`, body: `do ${n}` });
      const first = await claim(inbox, { agent: 'w' });
      expect(first.claimed).toBe(true);
      // Planned and cached on this connection; now another process changes the table's shape.
      await pgExec(schema, 'alter table inbox_threads add column added_later text');
      const second = await claim(inbox, { agent: 'w' });
      expect(second.claimed && second.thread.subject).toBe('job 2');
      expect(second.claimed && second.messages.map((m) => m.body)).toEqual(['do 2']);
      const third = await claim(inbox, { agent: 'w' });
      expect(third.claimed && third.thread.subject).toBe('job 3');
    } finally {
      await inbox.close();
    }
    const rows = await pgRows<{ subject: string; claim_count: number }>(schema, 'select subject, claim_count from inbox_threads order by seq');
    expect(rows).toEqual([
      { subject: 'job 1', claim_count: 1 },
      { subject: 'job 2', claim_count: 1 },
      { subject: 'job 3', claim_count: 1 },
    ]);
  });

  it('the claim sends every message when they fit, and the pick (first, newest) when they do not', async () => {
    const { url } = freshSchema();
    initSchema(url);
    const inbox = await openInbox({ path: url });
    try {
      const small = await send(inbox, { to: 'w', from: 'lead', subject: 'small', body: 'task' });
      await send(inbox, { threadId: small.thread.id, from: 'lead', body: 'more' });
      const all = await claim(inbox, { agent: 'w', threadId: small.thread.id });
      expect(all.claimed && all.messages.map((m) => m.body)).toEqual(['task', 'more']);
      expect(all.claimed && all.omitted).toBeNull();
      const big = await send(inbox, { to: 'w', from: 'lead', subject: 'big', body: 'the task' });
      for (const n of [1, 2, 3, 4]) await send(inbox, { threadId: big.thread.id, from: 'lead', body: `${n}`.repeat(3000) });
      const picked = await claim(inbox, { agent: 'w', threadId: big.thread.id, maxBytes: 7000 });
      expect(picked.claimed && picked.messages.map((m) => m.body.slice(0, 8))).toEqual(['the task', '33333333', '44444444']);
      expect(picked.claimed && picked.omitted?.count).toBe(2);
    } finally {
      await inbox.close();
    }
  });

  it('a waiter whose LISTEN connection is up does not check again for commits in other schemas', async () => {
    const mine = freshSchema();
    const other = freshSchema();
    initSchema(mine.url);
    initSchema(other.url);
    const inbox = await openInbox({ path: mine.url });
    const neighbour = await pgClient(other.schema);
    try {
      const store = inbox.store;
      if (store.kind !== 'postgres') throw new Error('expected a PostgreSQL store');
      let checks = 0;
      let stop = false;
      // Commits in another schema of the same server, all along the wait.
      const busy = (async () => {
        while (!stop) {
          await neighbour.query(
            "insert into inbox_threads (id, subject, assigned_to, created_by, state, claim_count, created_at, updated_at) values (md5(random()::text), 's', 'x', 'y', 'open', 0, 0, 0)",
          );
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const result = await waitForChange(
        store,
        async () => {
          checks++;
          // Once the listener is up, wait a while: the neighbour commits about 50 times a second.
          if (checks === 1) while (!store.pg.listening()) await new Promise((r) => setTimeout(r, 10));
          return undefined;
        },
        { timeoutMs: 2000, clock: systemClock, recheckMs: 60_000 },
      );
      stop = true;
      await busy;
      expect(result).toBeUndefined();
      // The first check, and at most one more (a poll racing the listener's first connection).
      expect(checks).toBeLessThanOrEqual(2);
      const counted = await neighbour.query('select count(*)::int as n from inbox_threads');
      expect(counted.rows[0].n).toBeGreaterThan(10);
    } finally {
      await neighbour.end();
      await inbox.close();
    }
  });

  it('a waiter wakes for a commit in its own schema while listening', async () => {
    const { url } = freshSchema();
    initSchema(url);
    const waiter = await openInbox({ path: url });
    const writer = await openInbox({ path: url });
    try {
      const store = waiter.store;
      if (store.kind !== 'postgres') throw new Error('expected a PostgreSQL store');
      let sent = false;
      const woke = await waitForChange(
        store,
        async () => {
          if (!store.pg.listening()) return undefined;
          if (!sent) {
            sent = true;
            await send(writer, { to: 'w', from: 'lead', subject: 's', body: 'b' });
            return undefined;
          }
          return 'woke';
        },
        // No recheck within the test: only the NOTIFY (or the listener coming up) can wake it.
        { timeoutMs: 20_000, clock: systemClock, recheckMs: 60_000 },
      );
      expect(woke).toBe('woke');
    } finally {
      await writer.close();
      await waiter.close();
    }
  });
});
