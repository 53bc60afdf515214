/**
 * Holes a second adversarial review found in the live web board (issue 18): leases kept on every
 * page and released at sign-out, the throttled ticks, the back-off, `orch blocked --count`. Browser
 * suites run in the sqlite project only (browser-harness.ts).
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { browserDescribe, byTestId, makeTokens, setField, signIn, visible, boardSession, until } from './browser-harness.ts';
import { expectJsonError, initDb, ok, orch, orchOk, snapshot } from './helpers.ts';
import { post } from './server-harness.ts';

const { board, tab } = boardSession();

browserDescribe('board adversary 2 (browser)', () => {
  // Found: sessionStorage is per tab, but the browser's "Duplicate tab" (and a link opened in a
  // new tab with its opener) copies it, leases and all. The copy heartbeated the same lease and, at
  // its sign-out, released it: the thread the first tab was still working on was open again for
  // its agents, and the first tab's next write was refused as lost. Now the copy finds the first
  // tab (work-leases.ts watchForCopy) and forgets the leases it copied, without releasing them.
  it("a duplicated tab's sign-out does not give back the lease the first tab still works on", async () => {
    const b = await board();
    const thread = ok<{ thread: { id: string } }>(b.db, ['send', '--to', 'keeper', '--subject', 'Keep me', '--body', 'Hold this.']).thread.id;
    const show = () => ok<{ thread: { state: string; claimed_by: string | null } }>(b.db, ['show', '--thread', thread]).thread;
    const first = await tab(b, { hash: '#/work' });
    const form = await visible(byTestId(first.page, 'work-page').locator('form.agent-form'));
    await setField(form, 'agent', 'keeper');
    await byTestId(first.page, 'work-thread', { thread }).getByRole('button', { name: 'Claim', exact: true }).click();
    await until('the thread claimed by keeper', () => show().claimed_by === 'keeper');

    // What the browser's "Duplicate tab" does: a new tab with a copy of this tab's sessionStorage.
    const stored = await first.page.evaluate(() => JSON.stringify(Object.fromEntries(Object.entries(sessionStorage))));
    const copy = await first.context.newPage();
    await copy.addInitScript((s: string) => {
      if (sessionStorage.length === 0) for (const [k, v] of Object.entries(JSON.parse(s) as Record<string, string>)) sessionStorage.setItem(k, v);
    }, stored);
    await copy.goto(`${b.url}/#/`);
    await visible(byTestId(copy, 'signout'));
    const copyLeases = (p: Page) => p.evaluate(() => sessionStorage.getItem('orch.leases') ?? '');
    await until('the copy to forget the lease it copied', async () => !(await copyLeases(copy)).includes(thread));

    await byTestId(copy, 'signout').click();
    await until('the copy to forget its leases', async () => (await copy.evaluate(() => sessionStorage.getItem('orch.leases'))) === null);
    // The first tab still holds its lease, and the thread is still claimed by it.
    expect(await first.page.evaluate(() => sessionStorage.getItem('orch.leases'))).toContain(thread);
    expect(show()).toMatchObject({ state: 'claimed', claimed_by: 'keeper' });

    // The first tab reloaded is still the original: it keeps the lease, and a new copy of it does not.
    await first.page.reload();
    await visible(byTestId(first.page, 'signout'));
    const again = await first.page.evaluate(() => JSON.stringify(Object.fromEntries(Object.entries(sessionStorage))));
    const copy2 = await first.context.newPage();
    await copy2.addInitScript((s: string) => {
      if (sessionStorage.length === 0) for (const [k, v] of Object.entries(JSON.parse(s) as Record<string, string>)) sessionStorage.setItem(k, v);
    }, again);
    await copy2.goto(`${b.url}/#/`);
    await until('the second copy to forget the lease', async () => !(await copyLeases(copy2)).includes(thread));
    expect(await copyLeases(first.page)).toContain(thread);
    expect(show()).toMatchObject({ state: 'claimed', claimed_by: 'keeper' });
  });

  // Attacked, held: sign-out while the server takes the release and never answers (a hung
  // server, a proxy holding the request) still signs out: the wait is bounded and the tab forgets
  // its leases (the lease then runs out on the server).
  it('sign-out while the release hangs still forgets the leases', async () => {
    const b = await board();
    const thread = ok<{ thread: { id: string } }>(b.db, ['send', '--to', 'keeper', '--subject', 'Keep me', '--body', 'Hold this.']).thread.id;
    const show = () => ok<{ thread: { state: string; claimed_by: string | null } }>(b.db, ['show', '--thread', thread]).thread;
    const t = await tab(b, { hash: '#/work' });
    const form = await visible(byTestId(t.page, 'work-page').locator('form.agent-form'));
    await setField(form, 'agent', 'keeper');
    await byTestId(t.page, 'work-thread', { thread }).getByRole('button', { name: 'Claim', exact: true }).click();
    await until('the thread claimed by keeper', () => show().claimed_by === 'keeper');
    let releases = 0;
    await t.context.route('**/v1/inbox/release', () => {
      releases += 1; // never answered
    });
    await byTestId(t.page, 'signout').click();
    await until('the tab to forget its leases', async () => (await t.page.evaluate(() => sessionStorage.getItem('orch.leases'))) === null);
    expect(releases).toBe(1);
    expect(show()).toMatchObject({ state: 'claimed', claimed_by: 'keeper' });
  });

  // Attacked, held: the tab holding the browser's one change stream is hidden (another tab in
  // front): it re-fetches nothing itself but still passes every change on to the visible tabs.
  it('a hidden stream-holding tab still passes changes to the visible tab', async () => {
    const b = await board();
    await post(b.url, '/v1/orch/run/init', { run: 'r1', goal: 'before hiding' });
    const holder = await tab(b);
    await visible(byTestId(holder.page, 'live', { state: 'connected' }));
    const other = await holder.context.newPage();
    await other.goto(`${b.url}/#/`);
    await visible(byTestId(other, 'runs').getByText('r1', { exact: true }));
    await visible(byTestId(other, 'live', { state: 'connected' }));
    const setVisibility = (state: 'hidden' | 'visible') =>
      holder.page.evaluate((v) => {
        Object.defineProperty(document, 'visibilityState', { value: v, configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      }, state);
    await setVisibility('hidden');
    for (let i = 2; i <= 6; i++) await post(b.url, '/v1/orch/run/init', { run: `r${i}`, goal: 'while the holder is hidden' });
    // The last of the burst shows in the visible tab (no trailing change lost).
    await visible(byTestId(other, 'runs').getByText('r6', { exact: true }));
    await setVisibility('visible');
    await visible(byTestId(holder.page, 'runs').getByText('r6', { exact: true }));
  });

  // Attacked, held: the tab holding the stream is closed in the middle of a burst of commits: the
  // other tab takes the stream over and shows the burst's last change (none lost in the handover).
  it('the stream-holding tab closed mid-burst: the other tab takes over and shows the last change', async () => {
    const b = await board();
    await post(b.url, '/v1/orch/run/init', { run: 'r00', goal: 'before the burst' });
    const holder = await tab(b);
    await visible(byTestId(holder.page, 'live', { state: 'connected' }));
    const other = await holder.context.newPage();
    await other.goto(`${b.url}/#/`);
    await visible(byTestId(other, 'runs').getByText('r00', { exact: true }));
    for (let i = 1; i <= 30; i++) {
      await post(b.url, '/v1/orch/run/init', { run: `r${String(i).padStart(2, '0')}`, goal: 'burst' });
      if (i === 15) await holder.page.close();
    }
    await visible(byTestId(other, 'runs').getByText('r30', { exact: true }));
    await visible(byTestId(other, 'live', { state: 'connected' }));
  });

  // Attacked, held: a server that refuses the page's change stream at once (`--max-streams 1`, the
  // one stream taken by another client of the same identity) is asked again with back-off, not
  // hammered: the waits double from 0.5 s, so the attempts in a spell are bounded by the spell.
  it('a server refusing the change stream (too many streams) is asked again with back-off, not hammered', async () => {
    const b = await board({ args: ['--max-streams', '1'] });
    const hold = new AbortController();
    const taken = await fetch(`${b.url}/v1/changes`, { headers: { Accept: 'text/event-stream' }, signal: hold.signal });
    expect(taken.status).toBe(200);
    try {
      const t = await tab(b);
      await visible(byTestId(t.page, 'live', { state: 'reconnecting' }));
      const start = Date.now();
      await new Promise((r) => setTimeout(r, 6000));
      const elapsed = Date.now() - start;
      const attempts = t.requests.filter((r) => r.startsWith('GET /v1/changes')).length;
      // Attempts a back-off of 0.5 s doubling to 10 s can make in `elapsed` (plus the first two).
      let bound = 2;
      for (let d = 500, sum = 500; sum <= elapsed + 1000; d = Math.min(d * 2, 10_000), sum += d) bound += 1;
      expect(attempts, `${attempts} stream requests in ${elapsed} ms`).toBeLessThanOrEqual(bound);
      // Freed, the stream opens and the page is live.
      hold.abort();
      await visible(byTestId(t.page, 'live', { state: 'connected' }), 30_000);
    } finally {
      hold.abort();
    }
  });

  // Attacked, held: the thread a tab holds is finished from the CLI (its lease used by another
  // process) while the tab shows another page: the tab's keeper learns it at its next heartbeat
  // and stops renewing it (the lease is forgotten), with no error on the page.
  it('a lease whose thread was finished from the CLI is forgotten by the tab on another page', async () => {
    const b = await board();
    const thread = ok<{ thread: { id: string } }>(b.db, ['send', '--to', 'keeper', '--subject', 'Keep me', '--body', 'Hold this.']).thread.id;
    const t = await tab(b, { hash: '#/work' });
    const form = await visible(byTestId(t.page, 'work-page').locator('form.agent-form'));
    await setField(form, 'agent', 'keeper');
    await setField(form, 'leaseSeconds', '3');
    await byTestId(t.page, 'work-thread', { thread }).getByRole('button', { name: 'Claim', exact: true }).click();
    const leases = () => t.page.evaluate(() => sessionStorage.getItem('orch.leases') ?? '');
    await until('the tab to hold the lease', async () => (await leases()).includes(thread));
    const token = (JSON.parse(await leases()) as Record<string, { token: string }>)[thread]!.token;
    await t.page.evaluate(() => {
      window.location.hash = '#/';
    });
    await visible(byTestId(t.page, 'create-run'));
    ok(b.db, ['result', '--thread', thread, '--lease', token, '--body', 'Done from the CLI.']);
    await until('the tab to forget the finished lease', async () => !(await leases()).includes(thread));
    expect(ok<{ thread: { state: string } }>(b.db, ['show', '--thread', thread]).thread.state).toBe('done');
    expect(t.errors.filter((e) => !/status of (401|4\d\d)/.test(e))).toEqual([]);
  });

  // Attacked, held: a worker token's tab holding a lease. Its sign-out gives the lease back (the
  // release is the worker's own, allowed); a revoked token's tab forgets its leases at the first
  // refusal (401) and shows the login form (the lease runs out on the server).
  it("a worker token's sign-out releases its lease, and a revoked token's tab forgets its lease", async () => {
    let tokens: ReturnType<typeof makeTokens> | undefined;
    const b = await board({ setup: (db) => (tokens = makeTokens(db)) });
    const { worker, workerAgent } = tokens!;
    const send = (subject: string) => ok<{ thread: { id: string } }>(b.db, ['send', '--to', workerAgent, '--subject', subject, '--body', 'Paint.']).thread.id;
    const show = (thread: string) => ok<{ thread: { state: string; claimed_by: string | null } }>(b.db, ['show', '--thread', thread]).thread;
    const first = send('First');
    const t = await tab(b, { hash: '#/work' });
    await signIn(t, worker);
    const leases = () => t.page.evaluate(() => sessionStorage.getItem('orch.leases') ?? '');
    const claim = async (thread: string) => {
      const form = await visible(byTestId(t.page, 'work-page').locator('form.agent-form'));
      await setField(form, 'leaseSeconds', '3');
      await byTestId(t.page, 'work-thread', { thread }).getByRole('button', { name: 'Claim', exact: true }).click();
      await until(`${thread} claimed`, () => show(thread).claimed_by === workerAgent);
      await until('the tab to hold the lease', async () => (await leases()).includes(thread));
    };
    await claim(first);
    await byTestId(t.page, 'signout').click();
    await visible(byTestId(t.page, 'login'));
    await until('the thread open again', () => show(first).state === 'open');
    expect(await leases()).toBe('');

    const second = send('Second');
    await signIn(t, worker);
    await t.page.evaluate(() => {
      window.location.hash = '#/work';
    });
    await claim(second);
    const id = orchOk<{ tokens: { id: string; agent: string | null }[] }>(b.db, ['token', 'list']).tokens.find((x) => x.agent === workerAgent)!.id;
    orchOk(b.db, ['token', 'revoke', '--token-id', id]);
    await visible(byTestId(t.page, 'login'));
    await until('the tab to forget the lease', async () => (await leases()) === '');
    expect(show(second).claimed_by).toBe(workerAgent);
  });

  // Attacked, held: the nav's badge (`orch blocked --count`) and the Blocked page agree across two
  // runs, and both drop a run cancelled from the CLI, live.
  it('the Blocked badge counts what the Blocked page lists, and drops a run cancelled from the CLI', async () => {
    const b = await board();
    const ask = async (run: string, question: string) => {
      await post(b.url, '/v1/orch/run/init', { run, goal: run });
      await post(b.url, '/v1/orch/task/add', { run, task: 'T1', title: 'asks', defaultTo: 'w' });
      const d = (await post(b.url, '/v1/orch/dispatch', { run, task: 'T1', executionMode: 'analysis', body: 'go' })).json;
      const thread = d.thread?.id ?? d.attempt?.thread_id;
      const claim = (await post(b.url, '/v1/inbox/claim', { agent: 'w', thread })).json;
      expect((await post(b.url, '/v1/inbox/ask', { thread, lease: claim.lease.token, body: question })).status).toBe(200);
    };
    await ask('ra', 'Which colour, <b>really</b>?');
    await ask('rb', "'; drop table orch_runs; --");
    const t = await tab(b, { hash: '#/blocked' });
    const badge = byTestId(t.page, 'blocked-count');
    await until('the badge to say 2', async () => (await badge.textContent())?.trim() === '2');
    await until('the page to list 2 questions', async () => (await byTestId(t.page, 'question').count()) === 2);
    await visible(byTestId(t.page, 'question-body').getByText('Which colour, <b>really</b>?'));
    orchOk(b.db, ['cancel', '--run', 'ra', '--reason', 'not needed']);
    await until('the badge to say 1', async () => (await badge.textContent())?.trim() === '1');
    await until('the page to list 1 question', async () => (await byTestId(t.page, 'question').count()) === 1);
    expect(await byTestId(t.page, 'question').getAttribute('data-run')).toBe('rb');
  });
});

// Attacked, held (both engines): `orch blocked --count` under hostile input: one clear message, the
// documented exit code, nothing written; a real count beside it.
describe('board adversary 2 (orch blocked --count)', () => {
  it('refuses hostile input with exit 2 or 3 and writes nothing', () => {
    const { db } = initDb();
    orchOk(db, ['run', 'init', '--run', 'r1', '--goal', 'g']);
    const before = snapshot(db);
    for (const [args, exit] of [
      [['--run', "x'; drop table orch_runs; --"], 2],
      [['--run', ''], 2],
      [['--run', '-x'], 2],
      [['--count=5'], 2],
      [['--run', 'no_such_run'], 3],
    ] as const) {
      const r = orch(['--db', db, '--json', 'blocked', '--count', ...args]);
      expectJsonError(r, exit);
    }
    expect(snapshot(db)).toEqual(before);
    expect(orchOk(db, ['blocked', '--count'])).toEqual({ run: null, count: 0, tasks: [] });
    expect(orchOk(db, ['blocked', '--count', '--run', 'r1'])).toEqual({ run: 'r1', count: 0, tasks: [] });
  });
});
