/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The board's browser tests: Debian's chromium driven by playwright-core (which downloads no browser)
 * against a real `orch serve` process on a temporary database, the page loaded from the server as a
 * person would load it.
 *
 * Every tab records what must never happen quietly: console errors and uncaught exceptions (a CSP
 * violation is one), dialogs (an injected `alert` would open one; they are dismissed), and requests
 * to any origin but the board's (all of them refused, so a hostile page could not reach out even if
 * it tried, and recorded, so the test can say it tried).
 *
 * The browser suites run in the sqlite vitest project only: the page talks to the server the same
 * way whatever the engine, and the server's engines have suites of their own. Without chromium they
 * are skipped with the reason outside CI and fail under CI=true (.ci/run installs it).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { afterAll, afterEach, describe } from 'vitest';
import { freshDb, onPostgres } from './engine.ts';
import { INBOX_BIN, ok, orchOk, ROOT, tempDir, type WatchedRun, watchRun } from './helpers.ts';
import { type Served, serve } from './server-harness.ts';

/** The browser: Debian's chromium (ORCH_TEST_CHROMIUM names another binary). */
export const CHROMIUM = process.env.ORCH_TEST_CHROMIUM ?? '/usr/bin/chromium';
const CI = process.env.CI === 'true' || process.env.CI === '1';
/** Where the screenshots go with UPDATE_SCREENSHOTS=1 (the README's pictures). */
export const SCREENSHOT_DIR = path.join(ROOT, 'docs/images');
export const UPDATE_SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1';
/** How long a test waits for something to show before failing (a deadline for a hang, not a timing goal). */
export const WAIT_MS = 20_000;

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  return fs.existsSync(CHROMIUM) ? undefined : `no chromium at ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it)`;
}

/**
 * `describe` for a browser suite: left out of the postgres project, skipped with the reason when
 * chromium is missing outside CI; under CI=true it runs, and launching the browser fails it.
 */
export function browserDescribe(name: string, fn: () => void): void {
  if (onPostgres) {
    describe.skip(`${name} [SQLite only: the page talks to the server alike on both engines]`, fn);
    return;
  }
  const missing = browserMissing();
  if (missing !== undefined && !CI) {
    describe.skip(`${name} [skipped: ${missing}]`, fn);
    return;
  }
  describe(name, fn);
}

/** Launches headless chromium (root needs --no-sandbox). Close it in afterAll. */
export async function launchBrowser(): Promise<Browser> {
  const missing = browserMissing();
  if (missing !== undefined) throw new Error(`the board's browser tests need chromium: ${missing}`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/** Waits until `probe` is true (polled every 50 ms; fails after `timeoutMs` naming `what`). */
export async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What a test file opens: one browser (launched at first use), boards and tabs closed after each test. */
export interface BoardSession {
  /** The file's browser, launched at the first call. */
  browser(): Promise<Browser>;
  /** A served fresh database (startBoard), stopped after the test. */
  board(options?: Parameters<typeof startBoard>[0]): Promise<Board>;
  /** A tab on `board` (openTab), closed after the test. */
  tab(board: Board, options?: Parameters<typeof openTab>[2]): Promise<Tab>;
}

/**
 * Registers a test file's hooks (call it once at the top): after each test its tabs are closed,
 * then its boards stopped; after all, the browser closed. The browser is launched only when a
 * test asks for it, so a file's server-only tests run where chromium is missing.
 */
export function boardSession(): BoardSession {
  let launching: Promise<Browser> | undefined;
  const boards: Board[] = [];
  const tabs: Tab[] = [];
  afterEach(async () => {
    for (const t of tabs.splice(0)) await t.close().catch(() => undefined);
    for (const b of boards.splice(0)) await b.stop();
  });
  afterAll(async () => {
    await (await launching?.catch(() => undefined))?.close();
  });
  const browser = (): Promise<Browser> => {
    launching ??= launchBrowser();
    return launching;
  };
  return {
    browser,
    board: async (options = {}) => {
      const b = await startBoard(options);
      boards.push(b);
      return b;
    },
    tab: async (board, options = {}) => {
      const t = await openTab(await browser(), board, options);
      tabs.push(t);
      return t;
    },
  };
}

export interface Board {
  dir: string;
  db: string;
  url: string;
  server: Served;
  stop(): Promise<void>;
}

/**
 * A fresh initialised database served by `orch serve` (the built CLI, so the built board), checked
 * to serve the board's page. `setup(db)` runs before the server starts (e.g. to make tokens).
 */
export async function startBoard(options: { setup?: (db: string) => void; args?: string[] } = {}): Promise<Board> {
  const dir = tempDir('orch-board-');
  const db = freshDb(dir);
  ok(db, ['init']);
  options.setup?.(db);
  const server = await serve(db, ['--rate-limit', '0', ...(options.args ?? [])], { cwd: dir });
  const page = await fetch(`${server.url}/`);
  const text = await page.text();
  if (page.status !== 200 || !/<html/i.test(text)) {
    await server.stop();
    throw new Error(`orch serve does not serve the board at / (HTTP ${page.status}: ${text.slice(0, 200)}); run \`npm run build\``);
  }
  return { dir, db, url: server.url, server, stop: async () => void (await server.stop()) };
}

/** Leader and worker tokens made on `db` (the secrets, printed once by `token create`). */
export function makeTokens(db: string): { leader: string; worker: string; workerAgent: string } {
  const leader = orchOk<{ token: string }>(db, ['token', 'create', '--role', 'leader', '--name', 'lead']).token;
  const workerAgent = 'painter';
  const worker = orchOk<{ token: string }>(db, ['token', 'create', '--role', 'worker', '--agent', workerAgent]).token;
  return { leader, worker, workerAgent };
}

export interface Tab {
  page: Page;
  context: BrowserContext;
  origin: string;
  /** Console errors and uncaught exceptions, in order. */
  errors: string[];
  /** Messages of the dialogs that opened (each dismissed). */
  dialogs: string[];
  /** URLs of requests to another origin (each refused). */
  offsite: string[];
  /** Every request the page made to its own origin: method and path (with query), and its Last-Event-ID header if any. */
  requests: string[];
  close(): Promise<void>;
}

/** A new context and page on the board at `hash` (default `#/`), recording what it does. */
export async function openTab(browser: Browser, board: Board, options: { hash?: string; viewport?: { width: number; height: number } } = {}): Promise<Tab> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 800 } });
  const origin = new URL(board.url).origin;
  const errors: string[] = [];
  const dialogs: string[] = [];
  const offsite: string[] = [];
  const requests: string[] = [];
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    if (url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    if (new URL(url).origin !== origin) {
      offsite.push(url);
      return route.abort('blockedbyclient');
    }
    const u = new URL(url);
    const resume = route.request().headers()['last-event-id'];
    requests.push(`${route.request().method()} ${u.pathname}${u.search}${resume === undefined ? '' : ` last-event-id=${resume}`}`);
    return route.continue();
  });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss().catch(() => undefined);
  });
  await page.goto(`${board.url}/${options.hash ?? '#/'}`);
  return { page, context, origin, errors, dialogs, offsite, requests, close: () => context.close() };
}

/** The console errors other than a refused request's (the browser logs every 401 it gets as one). */
export function unexpectedErrors(tab: Tab, allow: RegExp = /status of 401/): string[] {
  return tab.errors.filter((e) => !allow.test(e));
}

/** The element with `data-testid=id` (and more attributes: `{ run: 'r' }` is `[data-run="r"]`). */
export function byTestId(scope: Page | Locator, id: string, attrs: Record<string, string> = {}): Locator {
  const extra = Object.entries(attrs)
    .map(([k, v]) => `[data-${k}=${JSON.stringify(v)}]`)
    .join('');
  return scope.locator(`[data-testid=${JSON.stringify(id)}]${extra}`);
}

/** Waits until `locator` is visible (fails after WAIT_MS with what it waited for). */
export async function visible(locator: Locator, timeout = WAIT_MS): Promise<Locator> {
  await locator.first().waitFor({ state: 'visible', timeout });
  return locator;
}

/** Sets a form control by name inside `form`, whether it is an input, a textarea or a select. */
export async function setField(form: Locator, name: string, value: string): Promise<void> {
  const field = form.locator(`[name=${JSON.stringify(name)}]`).first();
  const tag = await field.evaluate((el) => el.tagName.toLowerCase());
  if (tag === 'select') await field.selectOption(value);
  else await field.fill(value);
}

/** Fills `fields` of the form `data-testid=id` and presses its button named `button`. */
export async function submitForm(scope: Page | Locator, id: string, fields: Record<string, string>, button: string): Promise<Locator> {
  const form = await visible(byTestId(scope, id));
  for (const [name, value] of Object.entries(fields)) await setField(form.first(), name, value);
  await form.first().getByRole('button', { name: button, exact: true }).click();
  return form.first();
}

/** Signs in on the login form with `token` and waits for the signed-in app (its Sign out button). */
export async function signIn(tab: Tab, token: string): Promise<void> {
  await submitForm(tab.page, 'login', { token }, 'Sign in');
  await visible(byTestId(tab.page, 'signout'));
}

/** Marks the document, so `reloaded(tab)` can tell a live update from a page load. */
export async function markDocument(tab: Tab): Promise<void> {
  await tab.page.evaluate(() => {
    (window as unknown as { __boardTestMark?: boolean }).__boardTestMark = true;
  });
}

/** Whether the document was loaded again since `markDocument`. */
export async function reloaded(tab: Tab): Promise<boolean> {
  return tab.page.evaluate(() => (window as unknown as { __boardTestMark?: boolean }).__boardTestMark !== true);
}

/** Whether the body is wider than the window (a horizontal scroll bar at this width). */
export async function overflowsHorizontally(page: Page): Promise<{ scrollWidth: number; clientWidth: number; overflow: boolean }> {
  return page.evaluate(() => {
    const scrollWidth = Math.max(document.body.scrollWidth, document.documentElement.scrollWidth);
    const clientWidth = document.documentElement.clientWidth;
    return { scrollWidth, clientWidth, overflow: scrollWidth > clientWidth };
  });
}

export interface PictureCheck {
  file: string;
  width: number;
  height: number;
  /** Distinct colours among the pixels (counted up to 4096). */
  colours: number;
  /** The share of pixels of the commonest colour. */
  commonest: number;
}

/**
 * Takes a screenshot of `page` as `name` (docs/images/ with UPDATE_SCREENSHOTS=1, else a temp dir)
 * and decodes it in the browser (a blank page of its own: the board's CSP is not in the way) to
 * count its colours: a picture of a page that rendered nothing is one colour or nearly.
 */
export async function screenshot(browser: Browser, page: Page, name: string): Promise<PictureCheck> {
  const dir = UPDATE_SCREENSHOTS ? SCREENSHOT_DIR : tempDir('orch-shots-');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  await page.screenshot({ path: file, fullPage: false, animations: 'disabled' });
  const context = await browser.newContext();
  try {
    const blank = await context.newPage();
    const base64 = fs.readFileSync(file).toString('base64');
    const counted = await blank.evaluate(async (b64) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const g = canvas.getContext('2d');
      if (!g) throw new Error('no 2d context');
      g.drawImage(img, 0, 0);
      const data = g.getImageData(0, 0, canvas.width, canvas.height).data;
      const counts = new Map<number, number>();
      for (let i = 0; i < data.length; i += 4) {
        const key = ((data[i] ?? 0) << 16) | ((data[i + 1] ?? 0) << 8) | (data[i + 2] ?? 0);
        if (counts.size < 4096 || counts.has(key)) counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const pixels = data.length / 4;
      return { width: canvas.width, height: canvas.height, colours: counts.size, commonest: Math.max(...counts.values()) / pixels };
    }, base64);
    return { file, ...counted };
  } finally {
    await context.close();
  }
}

/** The scripted agents of test/fixtures/agents (no model, no network). */
export const AGENTS = path.join(ROOT, 'test/fixtures/agents');

/**
 * Starts `inbox work --agent AGENT MODE... -- COMMAND` on `db` as a real process (the worker of a
 * test; MODE default `--once`: one thread, then exit); kill what is still running in afterEach
 * (`child.kill('SIGKILL')`).
 */
export function startWorker(db: string, workDir: string, agent: string, command: string[], mode: string[] = ['--once']): WatchedRun {
  const common = ['--lease-seconds', '10', '--max-seconds', '90', '--work-dir', workDir];
  const args = ['--db', db, '--json', 'work', '--agent', agent, ...mode, ...common, '--', ...command];
  const child = spawn(process.execPath, [INBOX_BIN, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } });
  return watchRun(child, `inbox work --agent ${agent}`, 100_000);
}

export interface Outage {
  /** The proxy's URL: open the board through it. */
  url: string;
  /** Cuts every connection and refuses new ones (the server seems gone). */
  down(): void;
  /** Takes connections again. */
  up(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of `target` (the board's URL) that a test can take down and up again: the
 * page loses its change stream as if the server went away, while the server (and its event
 * counter) lives on.
 */
export async function outageProxy(target: string): Promise<Outage> {
  const { hostname, port } = new URL(target);
  const open = new Set<net.Socket>();
  let isDown = false;
  const server = net.createServer((client) => {
    if (isDown) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  const cut = () => {
    for (const s of open) s.destroy();
  };
  return {
    url: `http://127.0.0.1:${address.port}`,
    down: () => {
      isDown = true;
      cut();
    },
    up: () => {
      isDown = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        cut();
        server.close(() => resolve());
      }),
  };
}
