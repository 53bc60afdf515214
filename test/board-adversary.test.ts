/**
 * Holes an adversarial review found in the live web board (issue 18), each kept as a test: the
 * board's runs list, its timeline under huge agent text, and the change stream's ids. Browser
 * suites run in the sqlite project only (browser-harness.ts); the change stream's runs on both.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { type Board, browserDescribe, byTestId, unexpectedErrors, visible, boardSession } from './browser-harness.ts';
import { initDb, ORCH_BIN, orchOk, watchRun } from './helpers.ts';
import { post, readEvents } from './server-harness.ts';

const { board, tab } = boardSession();

/** POSTs a command to the served board's API as the local user; fails the test on a refusal. */
async function act(b: Board, command: string, input: Record<string, unknown>): Promise<any> {
  const r = await post(b.url, `/v1/${command}`, input);
  if (r.status !== 200) throw new Error(`${command}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
  return r.json;
}

browserDescribe('board adversary (browser)', () => {
  // Found: the runs page asked `orch run list` with its default limit (100) and said nothing, so
  // the 101st newest run (an active run among many finished ones) vanished from the board.
  it('the runs page reaches a run older than the newest 100', async () => {
    const b = await board();
    await act(b, 'orch/run/init', { run: 'old_active', goal: 'the oldest run, still active' });
    for (let i = 0; i < 100; i++) await act(b, 'orch/run/init', { run: `newer_${i}`, goal: `newer ${i}` });
    const t = await tab(b);
    const list = await visible(byTestId(t.page, 'runs'));
    await visible(list.getByText('newer_99', { exact: true }));
    const old = list.getByText('old_active', { exact: true });
    if ((await old.count()) === 0) await t.page.getByRole('button', { name: 'Show more', exact: true }).click();
    await visible(old);
    expect(unexpectedErrors(t)).toEqual([]);
  });

  // Found: every tab held its own change stream, and a browser keeps at most six HTTP/1.1
  // connections to one host: with six board tabs open, every request of every tab waited behind
  // the six streams, so no page loaded or updated, and a seventh tab never opened.
  it('seven tabs of one browser all load and update', async () => {
    const b = await board();
    await act(b, 'orch/run/init', { run: 'r1', goal: 'many tabs' });
    const first = await tab(b);
    await visible(byTestId(first.page, 'runs'));
    const pages = [first.page];
    for (let i = 0; i < 6; i++) {
      const p = await first.context.newPage();
      await p.goto(`${b.url}/#/`);
      await visible(byTestId(p, 'runs'));
      pages.push(p);
    }
    // A run made now shows in every tab, live.
    await act(b, 'orch/run/init', { run: 'r2', goal: 'seen everywhere' });
    for (const p of pages) await visible(byTestId(p, 'runs').getByText('r2', { exact: true }));
    expect(unexpectedErrors(first)).toEqual([]);
    // The first tab held the one stream; closed, another takes it over and every tab stays live.
    await first.page.close();
    await act(b, 'orch/run/init', { run: 'r3', goal: 'after the first tab closed' });
    for (const p of pages.slice(1)) await visible(byTestId(p, 'runs').getByText('r3', { exact: true }));
  });

  // Found, not fixed: the nav's Blocked badge is `orch blocked` in full (every pending question's
  // body and payload, and a reconcile of every active run), re-read by every tab at every commit
  // anywhere, on every page: with a few big questions pending, the runs page downloads megabytes
  // per commit to draw one number.
  it('a commit elsewhere costs the runs page no question bodies', async () => {
    const b = await board();
    await act(b, 'orch/run/init', { run: 'asks', goal: 'a big question' });
    await act(b, 'orch/task/add', { run: 'asks', task: 'T1', title: 'asks', defaultTo: 'w' });
    const d = await act(b, 'orch/dispatch', { run: 'asks', task: 'T1', executionMode: 'analysis', body: 'go' });
    const thread = d.thread?.id ?? d.attempt?.thread_id;
    const claim = await act(b, 'inbox/claim', { agent: 'w', thread });
    await act(b, 'inbox/ask', { thread, lease: claim.lease.token, body: `which? ${'Q'.repeat(500_000)}` });
    const t = await tab(b);
    await visible(byTestId(t.page, 'runs').getByText('asks', { exact: true }));
    // The first load's reads are done (the change stream keeps the network busy for good).
    await new Promise((r) => setTimeout(r, 1500));
    let bytes = 0;
    t.page.on(
      'response',
      (r) =>
        void r.body().then(
          (body) => (bytes += body.length),
          () => undefined,
        ),
    );
    await act(b, 'orch/run/init', { run: 'other', goal: 'an unrelated commit' });
    await visible(byTestId(t.page, 'runs').getByText('other', { exact: true }));
    await new Promise((r) => setTimeout(r, 1500));
    expect(bytes).toBeLessThan(100_000);
  });

  // Found: the timeline put every string of an event's data in its one-line summary, in full: a
  // worker's 900 KB progress note became 900 KB of DOM text per event (13 MB for a busy run), and
  // the run page stalled for seconds at every change.
  it('a huge progress note is a short line in the timeline', async () => {
    const b = await board();
    await act(b, 'orch/run/init', { run: 'loud', goal: 'huge notes' });
    await act(b, 'orch/task/add', { run: 'loud', task: 'T1', title: 'one', defaultTo: 'w' });
    const d = await act(b, 'orch/dispatch', { run: 'loud', task: 'T1', executionMode: 'analysis', body: 'go' });
    const thread = d.thread?.id ?? d.attempt?.thread_id;
    const claim = await act(b, 'inbox/claim', { agent: 'w', thread });
    for (let i = 0; i < 3; i++) await act(b, 'inbox/progress', { thread, lease: claim.lease.token, body: `note ${i} ${'P'.repeat(900_000)}` });
    const t = await tab(b, { hash: '#/runs/loud' });
    const timeline = await visible(byTestId(t.page, 'timeline'));
    await visible(byTestId(timeline, 'event').filter({ hasText: 'note 2' }));
    const size = await timeline.evaluate(
      (el) => (el.textContent ?? '').length + [...el.querySelectorAll('[title]')].reduce((n, e) => n + (e.getAttribute('title') ?? '').length, 0),
    );
    expect(size).toBeLessThan(20_000);
    expect(unexpectedErrors(t)).toEqual([]);
  });
});

describe('board adversary (change stream)', () => {
  // Found: a Last-Event-ID of 2^53 - 1 was accepted, and the ids after it stopped growing (2^53 + 1
  // is not a double), so a client could no longer tell one tick from the next.
  it('a Last-Event-ID near 2^53 is refused or the ids after it still grow', async () => {
    const b = await board();
    const headers = { 'Last-Event-ID': String(Number.MAX_SAFE_INTEGER) };
    const first = await fetch(`${b.url}/v1/changes`, { headers });
    if (first.status === 400) {
      expect((await first.json()).error.code).toBe('VALIDATION');
      return;
    }
    await first.body?.cancel();
    const reading = readEvents(`${b.url}/v1/changes`, (es) => es.length >= 2, headers);
    // The stream's first tick goes out at once; a commit makes the second.
    await new Promise((r) => setTimeout(r, 300));
    await act(b, 'orch/run/init', { run: 'tick', goal: 'a commit' });
    const ids = (await reading).map((e) => e.id);
    expect(ids).toHaveLength(2);
    expect(ids[1]).not.toBe(ids[0]);
  });
  // Found: each open stream or wait listened on the server's one "stopping" signal, so an eleventh
  // open at once (eleven board tabs of several people, or eleven waits) made Node print a
  // MaxListenersExceededWarning ("possible memory leak") on the server's stderr.
  it('a dozen change streams at once put no leak warning on the server log', async () => {
    const b = await board();
    const open = new AbortController();
    const readers: Promise<unknown>[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await fetch(`${b.url}/v1/changes`, { signal: open.signal });
      expect(r.status).toBe(200);
      const reader = r.body?.getReader();
      await reader?.read();
      readers.push(
        (async () => {
          for (;;) if ((await reader?.read())?.done !== false) return;
        })().catch(() => undefined),
      );
    }
    open.abort();
    await Promise.all(readers);
    await b.stop();
    expect(b.server.stderr()).not.toMatch(/MaxListenersExceeded/);
  });
});

describe('board adversary (status --watch)', () => {
  // Found, not fixed: piped, a watch whose reader went away notices only at its next write, so on a
  // quiet run `orch status --run R --watch | head -3` never returns (the shell waits for the watch,
  // which waits for an event that may never come). WAIT_MS is a deadline for the hang, not a goal.
  // A pipe tells its writer that the reader went away only when the writer next writes (as with
  // `tail -f | head`): on a quiet run the watch learns it at the next event, then ends with exit 7.
  it('piped: a reader that goes away ends the watch at the next event, with exit 7 and one line', async () => {
    const { db } = initDb();
    orchOk(db, ['run', 'init', '--run', 'r1', '--goal', 'a quiet run']);
    orchOk(db, ['task', 'add', '--run', 'r1', '--task', 't1', '--title', 'nothing happens']);
    const w = watchRun(
      spawn(process.execPath, [ORCH_BIN, '--db', db, 'status', '--run', 'r1', '--watch'], { stdio: ['ignore', 'pipe', 'pipe'] }),
      'status --watch',
      60_000,
    );
    let out = '';
    let err = '';
    w.child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    w.child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const deadline = Date.now() + 20_000;
    while (!out.includes('t1') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(out).toContain('t1');
    w.child.stdout?.destroy();
    try {
      orchOk(db, ['task', 'add', '--run', 'r1', '--task', 't2', '--title', 'an event to write']);
      const r = await w.done;
      expect(r.code).toBe(7);
      expect(err.trim().split('\n')).toHaveLength(1);
    } finally {
      if (w.child.exitCode === null) w.child.kill('SIGKILL');
    }
  });
});
