/**
 * The live web board (issue 18) in a real browser: Debian's chromium, driven by playwright-core,
 * against a real `orch serve` on a temporary database, with a scripted `inbox work` agent as the
 * worker. The tests act as a person on the page (forms, buttons, links) and assert on what the page
 * shows and on the database rows. See test/browser-harness.ts for what every tab records (console
 * errors, dialogs, requests leaving the origin).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Locator } from 'playwright-core';
import { afterEach, expect, it } from 'vitest';
import {
  AGENTS,
  browserDescribe,
  byTestId,
  makeTokens,
  markDocument,
  type Outage,
  outageProxy,
  overflowsHorizontally,
  reloaded,
  screenshot,
  setField,
  signIn,
  startWorker,
  submitForm,
  type Tab,
  unexpectedErrors,
  visible,
  boardSession,
  until,
} from './browser-harness.ts';
import { git, initGitRepo, ok, orchOk, rows, type WatchedRun } from './helpers.ts';
import { post } from './server-harness.ts';

const NODE = process.execPath;

const { board, tab, browser } = boardSession();
const workers: WatchedRun[] = [];
const proxies: Outage[] = [];

function worker(...args: Parameters<typeof startWorker>): WatchedRun {
  const w = startWorker(...args);
  workers.push(w);
  return w;
}

/** Goes to `hash` in the page without loading it again (what a click on a link does). */
async function go(t: Tab, hash: string): Promise<void> {
  await t.page.evaluate((h) => {
    window.location.hash = h;
  }, hash);
}

async function text(locator: Locator): Promise<string> {
  return (await locator.first().innerText()).trim();
}

function taskStates(db: string, run: string): Record<string, string> {
  const list = rows<{ id: string; state: string }>(db, 'select id, state from orch_tasks where run_id = ? order by id', run);
  return Object.fromEntries(list.map((r) => [r.id, r.state]));
}

/** The run's state in the database (undefined before orch's tables or the run exist). */
function runState(db: string, run: string): string | undefined {
  try {
    return rows<{ state: string }>(db, 'select state from orch_runs where id = ?', run)[0]?.state;
  } catch (err) {
    if (/no such table/.test(String(err))) return undefined;
    throw err;
  }
}

/** The card of `task` in the kanban column `state`. */
function cardIn(t: Tab, state: string, task: string): Locator {
  return byTestId(byTestId(t.page, 'column', { state }), 'card', { task });
}

/** Dispatches `task` of `run` from its task page (as a person: the card's link, then the form). */
async function dispatchFromTaskPage(t: Tab, db: string, run: string, task: string, to: string): Promise<void> {
  await go(t, `#/runs/${run}/tasks/${task}`);
  await visible(byTestId(t.page, 'task-page'));
  const form = await visible(byTestId(t.page, 'dispatch'));
  await setField(form, 'to', to);
  await setField(form, 'mode', 'analysis');
  // The instructions, when the form asks for them (dispatch needs a body; the page may supply one).
  if ((await form.locator('[name=body]').count()) > 0) await setField(form, 'body', `Please do ${task}.`);
  await form.getByRole('button', { name: 'Dispatch', exact: true }).click();
  await until(
    `an attempt of ${run}/${task} in the database`,
    () => rows(db, 'select 1 from orch_attempts where run_id = ? and task_id = ?', run, task).length > 0,
  );
}

/** Strings an agent might write to break a page that renders its text as HTML. */
const SCRIPT = '<script>alert("xss-script")</script>';
const IMG = '<img src=x onerror="alert(\'xss-img\')">';
const LINK = '<a href="javascript:alert(\'xss-link\')">click me</a>';
const HOSTILE = `${SCRIPT} ${IMG} ${LINK}`;

/** Nothing hostile ran or reached out: no dialog, no request elsewhere, no `/x` fetched, no injected element. */
async function expectInert(t: Tab): Promise<void> {
  expect(t.dialogs, 'dialogs that opened').toEqual([]);
  expect(t.offsite, 'requests that tried to leave the origin').toEqual([]);
  expect(
    t.requests.filter((r) => / \/x(\?|$)/.test(r)),
    'the injected <img src=x> was fetched',
  ).toEqual([]);
  const injected = await t.page.evaluate(() => ({
    scripts: [...document.querySelectorAll('script')].filter((s) => !s.src.endsWith('/assets/board.js')).length,
    imgs: document.querySelectorAll('img[src="x"], img[onerror]').length,
    jsLinks: [...document.querySelectorAll('a[href]')].filter((a) => /^\s*javascript:/i.test(a.getAttribute('href') ?? '')).length,
    handlers: [...document.querySelectorAll('*')].filter((el) => [...el.attributes].some((a) => /^on/i.test(a.name))).length,
  }));
  expect(injected).toEqual({ scripts: 0, imgs: 0, jsLinks: 0, handlers: 0 });
  expect(unexpectedErrors(t), 'console errors (a CSP violation is one)').toEqual([]);
}

browserDescribe('the board in a real browser (slow)', () => {
  // Runs before the session's own (hooks run last-registered first): workers killed and proxies
  // closed before the tabs close and the servers stop.
  afterEach(async () => {
    for (const w of workers.splice(0)) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    for (const p of proxies.splice(0)) await p.close();
  });

  it('end to end: a person plans a run on the page, a worker asks, the person answers in the Blocked box, and the run ends done', async () => {
    const b = await board();
    const t = await tab(b);
    const { page } = t;

    // Runs: the empty list (its form), then a run made with the form.
    await visible(byTestId(page, 'create-run'));
    await submitForm(page, 'create-run', { run: 'r1', goal: 'Ship the live board', summary: 'Three tasks, one dependency.' }, 'Create run');
    await until('run r1 in the database', () => runState(b.db, 'r1') === 'active');
    await go(t, '#/runs/r1');
    await visible(byTestId(page, 'run-page'));
    await markDocument(t);

    // Three tasks and a dependency, all through the page's forms.
    for (const [task, title] of [
      ['T1', 'Design the page'],
      ['T2', 'Build the page'],
      ['T3', 'Write the docs'],
    ] as const) {
      await submitForm(page, 'add-task', { task, title, summary: `${title}.` }, 'Add task');
      await visible(byTestId(page, 'card', { task }));
    }
    await submitForm(page, 'add-dep', { task: 'T2', dependsOn: 'T1' }, 'Add dependency');
    await visible(byTestId(page, 'dag-edge'));
    expect(rows(b.db, 'select task_id, depends_on from orch_dependencies where run_id = ?', 'r1')).toEqual([{ task_id: 'T2', depends_on: 'T1' }]);
    expect(taskStates(b.db, 'r1')).toEqual({ T1: 'pending', T2: 'pending', T3: 'pending' });
    await visible(byTestId(page, 'dag-node', { task: 'T2', ready: 'false' }));
    await visible(byTestId(page, 'dag-node', { task: 'T1', ready: 'true' }));
    await visible(cardIn(t, 'ready', 'T1'));
    await visible(cardIn(t, 'ready', 'T3'));
    expect(await cardIn(t, 'ready', 'T2').count()).toBe(0);
    expect(await byTestId(page, 'dag-node').count()).toBe(3);
    expect(await byTestId(page, 'dag-edge').count()).toBe(1);

    // Dispatch T1 from its task page (reached through its card's link), then a worker claims it and asks.
    await byTestId(page, 'card', { task: 'T1' }).first().getByRole('link').first().click();
    await visible(byTestId(page, 'task-page'));
    await dispatchFromTaskPage(t, b.db, 'r1', 'T1', 'painter');
    const asker = worker(b.db, path.join(b.dir, 'work'), 'painter', [NODE, path.join(AGENTS, 'ask.mjs')]);

    // The question shows without a reload: on the task page, and in the nav's count.
    await visible(byTestId(page, 'message', { kind: 'question' }), 40_000);
    expect(await text(byTestId(page, 'message', { kind: 'question' }))).toContain('Which colour should the button be?');
    await until('the Blocked count to say 1', async () => (await text(byTestId(page, 'blocked-count'))).includes('1'));
    await visible(byTestId(page, 'task-state', { state: 'blocked' }));
    expect(taskStates(b.db, 'r1').T1).toBe('blocked');

    // The person answers in the Blocked panel.
    await go(t, '#/blocked');
    const question = await visible(byTestId(page, 'question', { run: 'r1', task: 'T1' }));
    expect(await text(question)).toContain('Which colour should the button be?');
    const shot = await screenshot(await browser(), page, 'board-blocked.png');
    expect(shot.colours, `${shot.file} looks blank`).toBeGreaterThan(8);
    expect(shot.commonest).toBeLessThan(0.98);
    await submitForm(question, 'answer', { body: 'Teal, please.' }, 'Answer');

    // The worker gets the answer and finishes.
    const done = await asker.done;
    expect(done.code, done.stderr).toBe(0);
    const thread = rows<{ thread_id: string }>(b.db, "select thread_id from orch_attempts where run_id = 'r1' and task_id = 'T1'")[0]!.thread_id;
    // The runner also posts the agent's output as progress; the conversation is these.
    const messages = rows<{ kind: string; body: string }>(
      b.db,
      "select kind, body from inbox_messages where thread_id = ? and kind <> 'progress' order by id",
      thread,
    );
    expect(messages.map((m) => m.kind)).toEqual(['task', 'question', 'answer', 'result']);
    expect(messages[2]!.body).toBe('Teal, please.');
    expect(messages[3]!.body).toBe('The leader answered: Teal, please.\n');

    // The card moves to done and T2 is ready, on the run page, live.
    await go(t, '#/runs/r1');
    await visible(cardIn(t, 'done', 'T1'));
    await visible(cardIn(t, 'ready', 'T2'));
    await visible(byTestId(page, 'dag-node', { task: 'T2', ready: 'true' }));
    await visible(byTestId(page, 'dag-node', { task: 'T1', state: 'done' }));
    await until('the Blocked count to drop', async () => !(await text(byTestId(page, 'blocked-count'))).includes('1'));
    expect(taskStates(b.db, 'r1')).toEqual({ T1: 'done', T2: 'pending', T3: 'pending' });
    const runShot = await screenshot(await browser(), page, 'board-run.png');
    expect(runShot.colours, `${runShot.file} looks blank`).toBeGreaterThan(8);
    expect(runShot.commonest).toBeLessThan(0.98);

    await go(t, '#/runs/r1/tasks/T1');
    await visible(byTestId(page, 'message', { kind: 'result' }));
    await visible(byTestId(page, 'task-state', { state: 'done' }));
    expect(await byTestId(page, 'attempt', { state: 'done' }).count()).toBe(1);
    const taskShot = await screenshot(await browser(), page, 'board-task.png');
    expect(taskShot.colours, `${taskShot.file} looks blank`).toBeGreaterThan(8);
    expect(taskShot.commonest).toBeLessThan(0.98);

    // The rest: both dispatched from the page, one worker does them, and the run ends done.
    await dispatchFromTaskPage(t, b.db, 'r1', 'T2', 'builder');
    // T3 from its card on the run page (a ready card carries the Dispatch form).
    await go(t, '#/runs/r1');
    const card = byTestId(cardIn(t, 'ready', 'T3'), 'dispatch');
    await visible(card);
    await setField(card, 'to', 'builder');
    await setField(card, 'mode', 'analysis');
    await card.getByRole('button', { name: 'Dispatch', exact: true }).click();
    await until('an attempt of T3', () => rows(b.db, "select 1 from orch_attempts where run_id = 'r1' and task_id = 'T3'").length > 0);
    expect(rows(b.db, "select assigned_to, execution_mode from orch_attempts where run_id = 'r1' and task_id = 'T3'")).toEqual([
      { assigned_to: 'builder', execution_mode: 'analysis' },
    ]);
    const builder = await worker(
      b.db,
      path.join(b.dir, 'work'),
      'builder',
      [NODE, path.join(AGENTS, 'echo.mjs')],
      ['--concurrency', '2', '--idle-exit-seconds', '2'],
    ).done;
    expect(builder.code, builder.stderr).toBe(0);
    await go(t, '#/runs/r1');
    await visible(cardIn(t, 'done', 'T2'));
    await visible(cardIn(t, 'done', 'T3'));
    await until('the run state to show done', async () => (await text(byTestId(page, 'run-state'))) === 'done');
    expect(taskStates(b.db, 'r1')).toEqual({ T1: 'done', T2: 'done', T3: 'done' });
    expect(runState(b.db, 'r1')).toBe('done');
    expect(await reloaded(t), 'the page loaded itself again').toBe(false);
    expect(unexpectedErrors(t)).toEqual([]);
    expect(t.offsite).toEqual([]);
    expect(t.dialogs).toEqual([]);
  });

  it('updates live from a CLI commit on the same database (no reload)', async () => {
    const b = await board();
    orchOk(b.db, ['run', 'init', '--run', 'live', '--goal', 'Watch it move']);
    orchOk(b.db, ['task', 'add', '--run', 'live', '--task', 'a', '--title', 'First']);
    const t = await tab(b, { hash: '#/runs/live' });
    await visible(byTestId(t.page, 'card', { task: 'a' }));
    await visible(byTestId(t.page, 'live', { state: 'connected' }));
    await markDocument(t);

    orchOk(b.db, ['task', 'add', '--run', 'live', '--task', 'b', '--title', 'Added from a terminal']);
    await visible(byTestId(t.page, 'card', { task: 'b' }));
    expect(await text(byTestId(t.page, 'card', { task: 'b' }))).toContain('Added from a terminal');
    orchOk(b.db, ['dep', 'add', '--run', 'live', '--task', 'b', '--depends-on', 'a']);
    await visible(byTestId(t.page, 'dag-edge'));
    orchOk(b.db, ['dispatch', '--run', 'live', '--task', 'a', '--execution-mode', 'analysis', '--to', 'w', '--body', 'go']);
    await visible(cardIn(t, 'dispatched', 'a'));
    await visible(byTestId(t.page, 'event', { type: 'task_dispatched' }).or(byTestId(t.page, 'event', { type: 'attempt_created' })));
    expect(await reloaded(t)).toBe(false);
    expect(unexpectedErrors(t)).toEqual([]);
  });

  it('shows when the change stream drops, resumes it with Last-Event-ID and catches up on what changed meanwhile', async () => {
    const b = await board();
    const proxy = await outageProxy(b.url);
    proxies.push(proxy);
    orchOk(b.db, ['run', 'init', '--run', 'net', '--goal', 'Lose the network']);
    orchOk(b.db, ['task', 'add', '--run', 'net', '--task', 'a', '--title', 'Before']);
    const t = await tab({ ...b, url: proxy.url }, { hash: '#/runs/net' });
    await visible(byTestId(t.page, 'card', { task: 'a' }));
    await visible(byTestId(t.page, 'live', { state: 'connected' }));
    await markDocument(t);

    proxy.down();
    await visible(byTestId(t.page, 'live', { state: 'reconnecting' }));
    orchOk(b.db, ['task', 'add', '--run', 'net', '--task', 'b', '--title', 'While the page was cut off']);
    proxy.up();
    await visible(byTestId(t.page, 'live', { state: 'connected' }));
    await visible(byTestId(t.page, 'card', { task: 'b' }));
    expect(await reloaded(t)).toBe(false);
    const streams = t.requests.filter((r) => r.startsWith('GET /v1/changes'));
    expect(streams.length, JSON.stringify(streams)).toBeGreaterThanOrEqual(2);
    expect(streams.at(-1)).toMatch(/ last-event-id=\d+$/);
    // What the browser logs for the refused connections is expected here; nothing else.
    expect(unexpectedErrors(t, /status of 401|net::ERR_|Failed to fetch|network/i)).toEqual([]);
  });

  it('renders agent-written text as text: <script>, <img onerror> and javascript: links in a subject, bodies and payloads run nothing and fetch nothing', async () => {
    const b = await board();
    const repo = initGitRepo(path.join(b.dir, 'repo'), { 'README.md': 'hello\n' });
    const payload = JSON.stringify({ html: HOSTILE, link: "javascript:alert('xss-payload')", [SCRIPT]: IMG });
    orchOk(b.db, ['run', 'init', '--run', 'x', '--goal', `Goal ${HOSTILE}`, '--summary', `Summary ${HOSTILE}`]);
    orchOk(b.db, ['task', 'add', '--run', 'x', '--task', 'a', '--title', `Title ${HOSTILE}`, '--summary', `Task summary ${HOSTILE}`]);
    orchOk(b.db, ['task', 'add', '--run', 'x', '--task', 'c', '--title', `Code ${IMG}`]);
    orchOk(b.db, ['dispatch', '--run', 'x', '--task', 'a', '--execution-mode', 'analysis', '--to', 'evil', '--body', `Body ${HOSTILE}`]);
    const claim = ok<{ thread: { id: string }; lease: { token: string } }>(b.db, ['claim', '--agent', 'evil']);
    const lease = ['--thread', claim.thread.id, '--lease', claim.lease.token];
    ok(b.db, ['progress', ...lease, '--body', `Progress ${HOSTILE}`, '--payload-json', payload]);
    ok(b.db, ['ask', ...lease, '--body', `Question ${HOSTILE}`, '--payload-json', payload]);
    // A code attempt whose worker committed a file with a hostile name.
    const d = orchOk<{ attempt: { worktree_path: string } }>(b.db, [
      'dispatch',
      '--run',
      'x',
      '--task',
      'c',
      '--execution-mode',
      'code',
      '--to',
      'evil',
      '--repo-path',
      repo,
      '--body',
      'code',
    ]);
    const hostileFile = '<img src=x onerror=alert(1)>.txt';
    fs.writeFileSync(path.join(d.attempt.worktree_path, hostileFile), `${SCRIPT}\n`);
    git(d.attempt.worktree_path, 'add', '-A');
    git(d.attempt.worktree_path, '-c', 'user.name=Evil', '-c', 'user.email=evil@example.com', 'commit', '-q', '-m', `commit ${HOSTILE}`);

    const t = await tab(b);
    await visible(byTestId(t.page, 'run-row', { run: 'x' }));
    expect(await text(byTestId(t.page, 'run-row', { run: 'x' }))).toContain(`Goal ${SCRIPT}`);

    await go(t, '#/runs/x');
    await visible(byTestId(t.page, 'card', { task: 'a' }));
    expect(await text(byTestId(t.page, 'card', { task: 'a' }))).toContain(`Title ${SCRIPT}`);
    await visible(byTestId(t.page, 'dag-node', { task: 'a' }));

    await go(t, '#/runs/x/tasks/a');
    await visible(byTestId(t.page, 'message', { kind: 'question' }));
    expect(await text(byTestId(t.page, 'thread-subject'))).toContain(`Title ${SCRIPT} ${IMG} ${LINK}`);
    const bodies = await byTestId(t.page, 'message-body').allInnerTexts();
    expect(bodies.some((x) => x.includes(`Body ${HOSTILE}`))).toBe(true);
    expect(bodies.some((x) => x.includes(`Progress ${HOSTILE}`))).toBe(true);
    expect(bodies.some((x) => x.includes(`Question ${HOSTILE}`))).toBe(true);
    const payloads = (await byTestId(t.page, 'message-payload').allInnerTexts()).join('\n');
    expect(payloads).toContain("javascript:alert('xss-payload')");
    expect(payloads).toContain('xss-img');
    await expectInert(t);

    await go(t, '#/blocked');
    const q = await visible(byTestId(t.page, 'question', { run: 'x', task: 'a' }));
    expect(await text(q)).toContain(`Question ${SCRIPT}`);
    expect(await text(q)).toContain("javascript:alert('xss-payload')");
    await expectInert(t);

    await go(t, '#/runs/x/tasks/c');
    const diff = await visible(byTestId(t.page, 'diff'));
    await until('the hostile file name in the diff', async () => (await diff.first().innerText()).includes(hostileFile));
    await expectInert(t);

    await go(t, '#/work');
    await visible(byTestId(t.page, 'work-page'));
    await setField(t.page.locator('body'), 'agent', 'evil');
    await visible(byTestId(t.page, 'work-thread'));
    expect((await byTestId(t.page, 'work-page').innerText()).includes(`Title ${SCRIPT}`)).toBe(true);
    await expectInert(t);
  });

  it('auth: with a token on the database the API refuses without one and the page asks for it; a wrong token is refused; sign in and out; the token stays out of URLs', async () => {
    let tokens: ReturnType<typeof makeTokens> | undefined;
    const b = await board({ setup: (db) => (tokens = makeTokens(db)) });
    const { leader } = tokens!;

    const refused = await post(b.url, '/v1/orch/run/list', {});
    expect(refused.status).toBe(401);
    expect(refused.json.error.code).toBe('UNAUTHENTICATED');
    expect((await fetch(`${b.url}/v1/whoami`)).status).toBe(401);

    const t = await tab(b);
    const login = await visible(byTestId(t.page, 'login'));
    expect(await login.locator('input[name=token]').getAttribute('type')).toBe('password');
    expect(await byTestId(t.page, 'signout').count()).toBe(0);
    expect(await byTestId(t.page, 'create-run').count()).toBe(0);

    // A wrong token: refused with the server's message, still on the login form.
    const WRONG = 'orch_thisisnotatokenthisisnotatokenthisisnot1';
    await submitForm(t.page, 'login', { token: WRONG }, 'Sign in');
    const error = await visible(byTestId(t.page, 'error'));
    const said = (await (await fetch(`${b.url}/v1/whoami`, { headers: { authorization: `Bearer ${WRONG}` } })).json()) as { error: { message: string } };
    expect(said.error.message.length).toBeGreaterThan(0);
    expect(await text(error)).toContain(said.error.message);
    await visible(byTestId(t.page, 'login'));
    expect(await byTestId(t.page, 'signout').count()).toBe(0);

    await signIn(t, leader);
    await visible(byTestId(t.page, 'create-run'));
    expect(await t.page.evaluate(() => sessionStorage.getItem('orch.token'))).toBe(leader);
    expect(await t.page.evaluate(() => JSON.stringify(localStorage))).not.toContain(leader);
    expect(t.page.url()).not.toContain(leader);
    expect(t.requests.filter((r) => r.includes(leader))).toEqual([]);

    // The session survives a reload of the tab, and an action works with the token.
    await t.page.reload();
    await visible(byTestId(t.page, 'signout'));
    await submitForm(t.page, 'create-run', { run: 'authed', goal: 'Made while signed in', summary: '' }, 'Create run');
    await until('run authed in the database', () => runState(b.db, 'authed') === 'active');

    await byTestId(t.page, 'signout').click();
    await visible(byTestId(t.page, 'login'));
    expect(await t.page.evaluate(() => sessionStorage.getItem('orch.token'))).toBe(null);
    expect(t.page.url()).not.toContain(leader);
    expect(unexpectedErrors(t)).toEqual([]);
    expect(t.offsite).toEqual([]);
  });

  it('a worker token sees only My work, fixed to its agent', async () => {
    let tokens: ReturnType<typeof makeTokens> | undefined;
    const b = await board({ setup: (db) => (tokens = makeTokens(db)) });
    const { worker: token, workerAgent } = tokens!;
    const mine = ok<{ thread: { id: string } }>(b.db, ['send', '--to', workerAgent, '--subject', 'Paint the fence', '--body', 'White.']).thread.id;
    const theirs = ok<{ thread: { id: string } }>(b.db, ['send', '--to', 'someone-else', '--subject', 'Not yours', '--body', 'x']).thread.id;

    const t = await tab(b);
    await signIn(t, token);
    await visible(byTestId(t.page, 'work-page'));
    const agent = t.page.locator('[data-testid=work-page] input[name=agent]');
    expect(await agent.inputValue()).toBe(workerAgent);
    expect(await agent.isEditable()).toBe(false);
    await visible(byTestId(t.page, 'work-thread', { thread: mine }));
    expect(await byTestId(t.page, 'work-thread', { thread: theirs }).count()).toBe(0);

    // The leader's pages are not there for a worker.
    await go(t, '#/');
    await visible(byTestId(t.page, 'work-page'));
    expect(await byTestId(t.page, 'runs').count()).toBe(0);
    expect(await byTestId(t.page, 'create-run').count()).toBe(0);
    expect(await t.page.getByRole('link', { name: /^Runs/ }).count()).toBe(0);

    // Claiming works through the page, as the token's agent.
    await byTestId(t.page, 'work-thread', { thread: mine }).getByRole('button', { name: 'Claim', exact: true }).click();
    await until(
      'the thread claimed by the worker',
      () => rows<{ claimed_by: string | null }>(b.db, 'select claimed_by from inbox_threads where id = ?', mine)[0]?.claimed_by === workerAgent,
    );

    // The person works the thread as its agent: progress, a question the leader answers, the result.
    const kinds = () => rows<{ kind: string }>(b.db, 'select kind from inbox_messages where thread_id = ? order by id', mine).map((m) => m.kind);
    const post = async (body: string, button: string, kind: string) => {
      const form = byTestId(t.page, 'work-page').locator('form', { has: t.page.locator('textarea[name=body]') });
      await form.locator('textarea[name=body]').fill(body);
      await form.getByRole('button', { name: button, exact: true }).click();
      await until(`a ${kind} on the thread`, () => kinds().at(-1) === kind);
    };
    await post('Half the fence is white.', 'Post progress', 'progress');
    await post('Gloss or matt?', 'Ask', 'question');
    await until('the thread blocked', () => rows<{ state: string }>(b.db, 'select state from inbox_threads where id = ?', mine)[0]?.state === 'blocked');
    ok(b.db, ['reply', '--thread', mine, '--body', 'Matt.']);
    await until('the answer on the page', async () => (await byTestId(t.page, 'work-page').innerText()).includes('Matt.'));
    await post('Painted, matt.', 'Post result', 'result');
    expect(kinds().slice(1)).toEqual(['progress', 'question', 'answer', 'result']);
    expect(rows(b.db, 'select state, claimed_by from inbox_threads where id = ?', mine)).toEqual([{ state: 'done', claimed_by: workerAgent }]);
    const authors = rows<{ author: string }>(
      b.db,
      "select author from inbox_messages where thread_id = ? and kind in ('progress', 'question', 'result')",
      mine,
    );
    expect(authors.map((a) => a.author)).toEqual([workerAgent, workerAgent, workerAgent]);
    expect(unexpectedErrors(t)).toEqual([]);
  });

  it('the leader acts on a task from its page: reassign, retry after a failure, cancel; each lands in the database', async () => {
    const b = await board();
    orchOk(b.db, ['run', 'init', '--run', 'act', '--goal', 'Lead from the page']);
    orchOk(b.db, ['task', 'add', '--run', 'act', '--task', 'a', '--title', 'Fix the login']);
    orchOk(b.db, ['dispatch', '--run', 'act', '--task', 'a', '--execution-mode', 'analysis', '--to', 'w1', '--body', 'go']);
    const attempts = () =>
      rows<{ number: number; assigned_to: string; state: string }>(
        b.db,
        "select number, assigned_to, state from orch_attempts where run_id = 'act' and task_id = 'a' order by number",
      );
    const t = await tab(b, { hash: '#/runs/act/tasks/a' });
    await visible(byTestId(t.page, 'task-state', { state: 'dispatched' }));

    await submitForm(t.page, 'reassign', { to: 'w2' }, 'Reassign');
    await until('a second attempt for w2', () => attempts().length === 2);
    expect(attempts().map((a) => [a.number, a.assigned_to])).toEqual([
      [1, 'w1'],
      [2, 'w2'],
    ]);
    expect(attempts()[0]!.state).toBe('cancelled');
    await visible(byTestId(t.page, 'attempt', { state: 'cancelled' }));

    // w2 gives up; the page offers Retry, which makes attempt 3.
    const claim = ok<{ thread: { id: string }; lease: { token: string } }>(b.db, ['claim', '--agent', 'w2']);
    ok(b.db, ['fail', '--thread', claim.thread.id, '--lease', claim.lease.token, '--body', 'Cannot reproduce.']);
    await visible(byTestId(t.page, 'task-state', { state: 'failed' }));
    await t.page.getByRole('button', { name: 'Retry', exact: true }).click();
    await until('a third attempt', () => attempts().length === 3);
    await visible(byTestId(t.page, 'task-state', { state: 'dispatched' }));

    await submitForm(t.page, 'cancel', { reason: 'Not needed after all.' }, 'Cancel');
    await until('the task cancelled', () => taskStates(b.db, 'act').a === 'cancelled');
    await visible(byTestId(t.page, 'task-state', { state: 'cancelled' }));
    expect(attempts().map((a) => a.state)).toEqual(['cancelled', 'failed', 'cancelled']);
    expect(unexpectedErrors(t)).toEqual([]);
  });

  it('code mode from the page: dispatch into a repository, the diff, Merge and Clean up', async () => {
    const b = await board();
    const repo = initGitRepo(path.join(b.dir, 'repo'), { 'README.md': 'hello\n' });
    orchOk(b.db, ['run', 'init', '--run', 'code', '--goal', 'Land a change']);
    orchOk(b.db, ['task', 'add', '--run', 'code', '--task', 'c', '--title', 'Add the feature']);
    const t = await tab(b, { hash: '#/runs/code/tasks/c' });
    const form = await visible(byTestId(t.page, 'task-page').locator('[data-testid=dispatch]'));
    await setField(form, 'to', 'coder');
    await setField(form, 'mode', 'code');
    await setField(form, 'repoPath', repo);
    await form.getByRole('button', { name: 'Dispatch', exact: true }).click();
    await until('a code attempt', () => rows(b.db, "select 1 from orch_attempts where run_id = 'code' and task_id = 'c'").length > 0);
    const [attempt] = rows<{ worktree_path: string; branch: string; execution_mode: string }>(
      b.db,
      "select worktree_path, branch, execution_mode from orch_attempts where run_id = 'code' and task_id = 'c'",
    );
    expect(attempt!.execution_mode).toBe('code');

    // The worker commits in its worktree and posts its result.
    const claim = ok<{ thread: { id: string }; lease: { token: string } }>(b.db, ['claim', '--agent', 'coder']);
    fs.writeFileSync(path.join(attempt!.worktree_path, 'feature.txt'), 'the feature\n');
    git(attempt!.worktree_path, 'add', '-A');
    git(attempt!.worktree_path, '-c', 'user.name=Coder', '-c', 'user.email=coder@example.com', 'commit', '-q', '-m', 'Add the feature');
    ok(b.db, ['result', '--thread', claim.thread.id, '--lease', claim.lease.token, '--body', 'Done.']);
    await visible(byTestId(t.page, 'task-state', { state: 'done' }));
    const diff = await visible(byTestId(t.page, 'diff'));
    await until('feature.txt in the diff', async () => (await diff.first().innerText()).includes('feature.txt'));

    await diff.getByRole('button', { name: 'Merge', exact: true }).click();
    await until(
      'the attempt merged',
      () => rows<{ merged_at: number | null }>(b.db, "select merged_at from orch_attempts where run_id = 'code'")[0]?.merged_at != null,
    );
    expect(fs.readFileSync(path.join(repo, 'feature.txt'), 'utf8')).toBe('the feature\n');
    expect(git(repo, 'log', '--format=%s', 'main')).toContain('Add the feature');
    await visible(diff.getByText(/Merged into main/));

    await diff.getByRole('button', { name: 'Clean up', exact: true }).click();
    await until(
      'the worktree removed',
      () =>
        rows<{ worktree_removed_at: number | null }>(b.db, "select worktree_removed_at from orch_attempts where run_id = 'code'")[0]?.worktree_removed_at !=
        null,
    );
    expect(fs.existsSync(attempt!.worktree_path)).toBe(false);
    expect(unexpectedErrors(t)).toEqual([]);
  });

  it("a refused action shows the CLI's error text next to the control (a dependency cycle, named)", async () => {
    const b = await board();
    orchOk(b.db, ['run', 'init', '--run', 'cy', '--goal', 'Cycles']);
    for (const task of ['a', 'b']) orchOk(b.db, ['task', 'add', '--run', 'cy', '--task', task, '--title', task.toUpperCase()]);
    orchOk(b.db, ['dep', 'add', '--run', 'cy', '--task', 'b', '--depends-on', 'a']);
    const t = await tab(b, { hash: '#/runs/cy' });
    await visible(byTestId(t.page, 'dag-edge'));
    const form = await submitForm(t.page, 'add-dep', { task: 'a', dependsOn: 'b' }, 'Add dependency');
    const error = await visible(byTestId(form, 'error').or(byTestId(form.locator('xpath=..'), 'error')));
    expect(await text(error)).toContain('would close a cycle: a -> b -> a');
    expect(rows(b.db, 'select task_id, depends_on from orch_dependencies where run_id = ?', 'cy')).toEqual([{ task_id: 'b', depends_on: 'a' }]);
    expect(unexpectedErrors(t, /status of (401|409|4\d\d)/)).toEqual([]);
  });

  it('a lease claimed on My work is renewed while the tab shows another page, and sign-out gives it back and forgets it', async () => {
    const b = await board();
    const thread = ok<{ thread: { id: string } }>(b.db, ['send', '--to', 'keeper', '--subject', 'Keep me', '--body', 'Hold this.']).thread.id;
    const show = () =>
      ok<{ thread: { state: string; claimed_by: string | null; lease_expires_at: string | null; lease_expired: boolean } }>(b.db, ['show', '--thread', thread])
        .thread;
    const t = await tab(b, { hash: '#/work' });
    const form = await visible(byTestId(t.page, 'work-page').locator('form.agent-form'));
    await setField(form, 'agent', 'keeper');
    await setField(form, 'leaseSeconds', '3');
    await byTestId(t.page, 'work-thread', { thread }).getByRole('button', { name: 'Claim', exact: true }).click();
    await until('the thread claimed by keeper', () => show().claimed_by === 'keeper');
    expect(await t.page.evaluate(() => sessionStorage.getItem('orch.leases'))).toContain(thread);

    // On the Runs page the 3 s lease keeps moving on, well past its first expiry.
    await go(t, '#/');
    await visible(byTestId(t.page, 'create-run'));
    const first = Date.parse(show().lease_expires_at!);
    await until('the lease renewed 4 s past its first expiry', () => Date.parse(show().lease_expires_at ?? '0') >= first + 4000, 30_000);
    expect(show()).toMatchObject({ state: 'claimed', claimed_by: 'keeper', lease_expired: false });

    // Sign out: the lease is released (the thread is open again at once) and forgotten by the tab.
    await byTestId(t.page, 'signout').click();
    await until('the thread open again', () => show().state === 'open');
    await until('the tab to forget its leases', async () => (await t.page.evaluate(() => sessionStorage.getItem('orch.leases'))) === null);
    expect(unexpectedErrors(t)).toEqual([]);
  });

  it('a burst of commits does not turn into a refetch storm: each query refetches at most once per 250 ms, and the final state shows', async () => {
    const b = await board();
    orchOk(b.db, ['run', 'init', '--run', 'burst', '--goal', 'Many commits at once']);
    orchOk(b.db, ['task', 'add', '--run', 'burst', '--task', 't00', '--title', 'First']);
    const t = await tab(b, { hash: '#/runs/burst' });
    await visible(byTestId(t.page, 'card', { task: 't00' }));
    await visible(byTestId(t.page, 'live', { state: 'connected' }));
    await new Promise((r) => setTimeout(r, 500));
    const before = t.requests.length;
    const start = Date.now();
    // 60 commits over the API, a little apart: the server sends a change tick for nearly each.
    for (let i = 1; i <= 60; i++) {
      const r = await post(b.url, '/v1/orch/task/add', { run: 'burst', task: `t${String(i).padStart(2, '0')}`, title: `Task ${i}` });
      expect(r.status).toBe(200);
      await new Promise((res) => setTimeout(res, 30));
    }
    await visible(byTestId(t.page, 'card', { task: 't60' }));
    await until('the kanban to show all 61 tasks', async () => (await byTestId(t.page, 'card').count()) === 61);
    const elapsed = Date.now() - start;
    const made = t.requests.slice(before).filter((r) => r.startsWith('POST '));
    const byCommand = new Map<string, number>();
    for (const r of made) byCommand.set(r, (byCommand.get(r) ?? 0) + 1);
    // One refetch per 250 ms window per query, plus the first of the burst and one for a slow answer.
    const bound = Math.ceil(elapsed / 250) + 2;
    const summary = `${made.length} requests in ${elapsed} ms: ${JSON.stringify(Object.fromEntries(byCommand))}`;
    expect(byCommand.get('POST /v1/orch/status') ?? 0, summary).toBeGreaterThan(0);
    for (const [command, n] of byCommand) expect(n, `${command}: ${summary}`).toBeLessThanOrEqual(bound);
    expect(unexpectedErrors(t)).toEqual([]);
  });

  it('a hidden tab asks nothing on a change, and catches up once it is shown again', async () => {
    const b = await board();
    orchOk(b.db, ['run', 'init', '--run', 'bg', '--goal', 'In the background']);
    orchOk(b.db, ['task', 'add', '--run', 'bg', '--task', 't0', '--title', 'First']);
    const t = await tab(b, { hash: '#/runs/bg' });
    await visible(byTestId(t.page, 'card', { task: 't0' }));
    await visible(byTestId(t.page, 'live', { state: 'connected' }));
    await new Promise((r) => setTimeout(r, 600));
    // What the browser does when another tab comes to the front: the page is hidden.
    const setVisibility = (state: 'hidden' | 'visible') =>
      t.page.evaluate((v) => {
        Object.defineProperty(document, 'visibilityState', { value: v, configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      }, state);
    await setVisibility('hidden');
    const before = t.requests.filter((r) => r.startsWith('POST ')).length;
    for (let i = 1; i <= 5; i++) orchOk(b.db, ['task', 'add', '--run', 'bg', '--task', `t${i}`, '--title', `Task ${i}`]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(t.requests.filter((r) => r.startsWith('POST ')).length, 'requests of a hidden tab').toBe(before);
    expect(await byTestId(t.page, 'card').count()).toBe(1);
    await setVisibility('visible');
    await until('the kanban to show all 6 tasks', async () => (await byTestId(t.page, 'card').count()) === 6);
    expect(unexpectedErrors(t)).toEqual([]);
  });

  it('the runs list says it shows the newest 100 runs and shows more on request', async () => {
    const b = await board();
    for (let i = 1; i <= 104; i++) {
      const r = await post(b.url, '/v1/orch/run/init', { run: `r${String(i).padStart(3, '0')}`, goal: `Run ${i}` });
      expect(r.status).toBe(200);
    }
    const t = await tab(b);
    await visible(byTestId(t.page, 'runs'));
    await until('100 run rows', async () => (await byTestId(t.page, 'run-row').count()) === 100);
    expect(await text(byTestId(t.page, 'runs-shown'))).toContain('Showing the newest 100 runs.');
    await byTestId(t.page, 'runs-shown').getByRole('button', { name: 'Show more', exact: true }).click();
    await until('all 104 run rows', async () => (await byTestId(t.page, 'run-row').count()) === 104);
    await visible(byTestId(t.page, 'run-row', { run: 'r001' }));
    expect(await text(byTestId(t.page, 'runs-shown'))).toBe('104 runs.');
    expect(unexpectedErrors(t)).toEqual([]);
  });

  it('the nav counts blocked tasks without their questions; the Blocked page shows them, and an answer clears both live', async () => {
    const b = await board();
    orchOk(b.db, ['run', 'init', '--run', 'q', '--goal', 'Questions']);
    orchOk(b.db, ['task', 'add', '--run', 'q', '--task', 'a', '--title', 'Ask something']);
    orchOk(b.db, ['dispatch', '--run', 'q', '--task', 'a', '--execution-mode', 'analysis', '--to', 'w', '--body', 'go']);
    const claim = ok<{ thread: { id: string }; lease: { token: string } }>(b.db, ['claim', '--agent', 'w']);
    ok(b.db, ['ask', '--thread', claim.thread.id, '--lease', claim.lease.token, '--body', 'Which way?']);
    const t = await tab(b);
    await visible(byTestId(t.page, 'live', { state: 'connected' }));
    await until('the Blocked count to say 1', async () => (await text(byTestId(t.page, 'blocked-count'))) === '1');
    const blockedAsks = () => t.requests.filter((r) => r === 'POST /v1/orch/blocked').length;
    await go(t, '#/blocked');
    await visible(byTestId(t.page, 'question', { run: 'q', task: 'a' }));
    // Settle: the ticks of the page's opening are answered.
    await new Promise((r) => setTimeout(r, 600));
    const before = blockedAsks();

    // The answer (from a terminal) empties the page and the count, live, over the one stream.
    ok(b.db, ['reply', '--thread', claim.thread.id, '--body', 'Left.']);
    await until('the question gone', async () => (await byTestId(t.page, 'question').count()) === 0);
    await until('the Blocked count to drop', async () => (await text(byTestId(t.page, 'blocked-count'))) !== '1');
    await new Promise((r) => setTimeout(r, 600));
    const asks = blockedAsks() - before;
    const streams = t.requests.filter((r) => r.startsWith('GET /v1/changes')).length;
    expect(streams).toBe(1);
    // The nav's count and the page's list, once or twice each (a tick or two).
    expect(asks).toBeGreaterThanOrEqual(2);
    expect(asks).toBeLessThanOrEqual(4);
    expect(unexpectedErrors(t)).toEqual([]);
  });

  it('fits a phone (390×844) without horizontal overflow, and the main nav is reachable with Tab', async () => {
    const b = await board();
    orchOk(b.db, [
      'run',
      'init',
      '--run',
      'phone-run-with-a-rather-long-identifier',
      '--goal',
      'A goal long enough to wrap on a narrow screen, several times over, without pushing the page sideways at all',
    ]);
    for (const task of ['design', 'build', 'test', 'ship'])
      orchOk(b.db, ['task', 'add', '--run', 'phone-run-with-a-rather-long-identifier', '--task', task, '--title', `${task} ${'word '.repeat(12)}`]);
    orchOk(b.db, ['dep', 'add', '--run', 'phone-run-with-a-rather-long-identifier', '--task', 'build', '--depends-on', 'design']);
    const t = await tab(b, { viewport: { width: 390, height: 844 } });
    for (const [hash, id] of [
      ['#/', 'runs'],
      ['#/runs/phone-run-with-a-rather-long-identifier', 'run-page'],
      ['#/runs/phone-run-with-a-rather-long-identifier/tasks/build', 'task-page'],
      ['#/blocked', 'blocked-page'],
      ['#/work', 'work-page'],
    ] as const) {
      await go(t, hash);
      await visible(byTestId(t.page, id));
      expect(await overflowsHorizontally(t.page), `${hash} at 390 px`).toMatchObject({ overflow: false });
    }

    // Keyboard: from the top of the page, Tab reaches every link of the main nav.
    await go(t, '#/');
    await visible(byTestId(t.page, 'runs'));
    await t.page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    const reached: string[] = [];
    for (let i = 0; i < 20; i++) {
      await t.page.keyboard.press('Tab');
      reached.push(await t.page.evaluate(() => (document.activeElement?.textContent ?? '').trim()));
    }
    for (const name of ['Runs', 'Blocked', 'My work'])
      expect(
        reached.some((r) => r.startsWith(name)),
        `${name} in ${JSON.stringify(reached)}`,
      ).toBe(true);
    // ... and Enter on a focused link follows it.
    await t.page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    for (let i = 0; i < 20; i++) {
      await t.page.keyboard.press('Tab');
      if ((await t.page.evaluate(() => (document.activeElement?.textContent ?? '').trim())).startsWith('Blocked')) break;
    }
    await t.page.keyboard.press('Enter');
    await visible(byTestId(t.page, 'blocked-page'));
    expect(unexpectedErrors(t)).toEqual([]);
  });
});
