// Leases across machines are judged by one clock, the database server's: a client whose own clock
// is minutes ahead or behind (libfaketime moves its wall clock) neither steals a live lease, nor
// keeps one past its end, nor has its heartbeats and posts refused.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { expect, it } from 'vitest';
import { type CliRun, INBOX_BIN } from './helpers.ts';
import { describePg, freshSchema, pgRows } from './pg-server.ts';

/** libfaketime, when installed: it shifts the wall clock of a process (Date.now) but not its monotonic clock. */
const FAKETIME = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
].find((f) => fs.existsSync(f));

type Skew = '+10m' | '-10m' | undefined;

/** The inbox CLI on a client whose wall clock is `skew` off (undefined: the real clock). */
function inboxAt(skew: Skew, db: string, args: string[]): CliRun {
  const fake = skew === undefined ? {} : { LD_PRELOAD: FAKETIME as string, FAKETIME: skew, FAKETIME_DONT_FAKE_MONOTONIC: '1' };
  const r = spawnSync(process.execPath, [INBOX_BIN, '--db', db, '--json', ...args], { encoding: 'utf8', env: { ...process.env, ...fake }, timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
function okAt(skew: Skew, db: string, args: string[]) {
  const r = inboxAt(skew, db, args);
  if (r.code !== 0) throw new Error(`inbox ${args.join(' ')} (clock ${skew ?? 'real'}) exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The server's clock, in ms. */
async function serverNow(schema: string): Promise<number> {
  return (await pgRows<{ now: number }>(schema, 'select (extract(epoch from clock_timestamp()) * 1000)::float8 as now'))[0]?.now as number;
}

/** Waits (polling the server) until the server's clock is past `ms`. */
async function serverPast(schema: string, ms: number): Promise<void> {
  while ((await serverNow(schema)) <= ms) await new Promise((r) => setTimeout(r, 200));
}

describePg('PostgreSQL: leases judged by the server clock, clients with skewed clocks (libfaketime) (slow)', () => {
  // Skipped below where libfaketime is missing; CI must run them (its image installs libfaketime).
  it.runIf(FAKETIME === undefined && (process.env.CI === 'true' || process.env.CI === '1'))(
    'finds libfaketime (CI=true: the skewed-clock tests must run)',
    () => {
      throw new Error('libfaketime.so.1 not found: install the libfaketime package');
    },
  );

  it.skipIf(FAKETIME === undefined)('libfaketime moves the wall clock of a client by 10 minutes either way', () => {
    for (const [skew, sign] of [
      ['+10m', 1],
      ['-10m', -1],
    ] as const) {
      const r = spawnSync(process.execPath, ['-e', 'console.log(Date.now())'], {
        encoding: 'utf8',
        env: { ...process.env, LD_PRELOAD: FAKETIME as string, FAKETIME: skew, FAKETIME_DONT_FAKE_MONOTONIC: '1' },
      });
      expect(sign * (Number(r.stdout) - Date.now())).toBeGreaterThan(9 * 60_000);
    }
  });

  it.skipIf(FAKETIME === undefined)(
    'a live lease is kept against clients 10 minutes ahead or behind, its skewed holder may heartbeat and post, and a lease that really ran out is claimable',
    async () => {
      const { url, schema } = freshSchema();
      okAt(undefined, url, ['init']);
      const send = (subject: string) => okAt(undefined, url, ['send', '--to', subject, '--subject', subject, '--body', 'go']).thread.id as string;

      for (const holder of ['+10m', '-10m', undefined] as const) {
        const agent = `w${holder === undefined ? 'real' : holder === '+10m' ? 'ahead' : 'behind'}`;
        const thread = send(agent);
        const before = await serverNow(schema);
        const c = okAt(holder, url, ['claim', '--agent', agent, '--lease-seconds', '60']);
        const after = await serverNow(schema);
        expect(c.thread.id).toBe(thread);
        // The lease runs 60 s on the server's clock, whatever the holder's clock says.
        const expires = Date.parse(c.lease.expires_at);
        expect(expires, `lease of a holder ${holder ?? 'on time'}`).toBeGreaterThanOrEqual(before + 60_000 - 1000);
        expect(expires, `lease of a holder ${holder ?? 'on time'}`).toBeLessThanOrEqual(after + 60_000 + 1000);
        // No client, whatever its clock, may claim it while it is live.
        for (const other of ['+10m', '-10m', undefined] as const) {
          expect(
            okAt(other, url, ['claim', '--agent', agent]).claimed,
            `claim by a client ${other ?? 'on time'} of a live lease held ${holder ?? 'on time'}`,
          ).toBe(false);
        }
        // The holder's heartbeat and progress are accepted and extend the lease on the server's clock.
        const hb = okAt(holder, url, ['heartbeat', '--thread', thread, '--lease', c.lease.token, '--lease-seconds', '60']);
        expect(Date.parse(hb.lease.expires_at)).toBeLessThanOrEqual((await serverNow(schema)) + 61_000);
        okAt(holder, url, ['progress', '--thread', thread, '--lease', c.lease.token, '--body', 'still here']);
        const row = (
          await pgRows<{ state: string; claimed_by: string; lease_expires_at: number }>(
            schema,
            'select state, claimed_by, lease_expires_at from inbox_threads where id = $1',
            [thread],
          )
        )[0];
        expect(row?.state).toBe('claimed');
        expect(row?.lease_expires_at).toBeLessThanOrEqual((await serverNow(schema)) + 61_000);
        okAt(holder, url, ['result', '--thread', thread, '--lease', c.lease.token, '--body', 'done']);
      }

      // Short leases: once one has really run out on the server's clock, it is claimable by a client
      // whose clock is behind (to it the lease still has 10 minutes), and the client ahead that held
      // it has lost it (to it, the new lease has long run out too).
      for (const [holder, next] of [
        ['+10m', undefined],
        [undefined, '-10m'],
        ['+10m', '-10m'],
      ] as const) {
        const agent = `s${Math.random().toString(36).slice(2, 8)}`;
        const thread = send(agent);
        const c = okAt(holder, url, ['claim', '--agent', agent, '--lease-seconds', '2']);
        await serverPast(schema, Date.parse(c.lease.expires_at));
        const again = okAt(next, url, ['claim', '--agent', agent, '--lease-seconds', '60']);
        expect(again.claimed, `claim by a client ${next ?? 'on time'} after the lease of ${holder ?? 'on time'} ran out`).toBe(true);
        expect(again.thread.id).toBe(thread);
        expect(again.thread.claim_count).toBe(2);
        const late = inboxAt(holder, url, ['progress', '--thread', thread, '--lease', c.lease.token, '--body', 'too late']);
        expect(late.code, late.stderr).toBe(5);
        expect(JSON.parse(late.stderr).error.code).toBe('LEASE_LOST');
        okAt(next, url, ['result', '--thread', thread, '--lease', again.lease.token, '--body', 'done']);
      }
      expect(await pgRows(schema, "select count(*) as n from inbox_messages where body = 'too late'")).toEqual([{ n: 0 }]);
    },
    600_000,
  );
});
