import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, expect } from 'vitest';
import { dbSnapshot, freshDb, rows as engineRows } from './engine.ts';
import { trackTempDir } from './leaks.ts';

export const ROOT = path.resolve(import.meta.dirname, '..');
/** The bundled inbox CLI, exactly as `npx inbox` runs it. */
export const INBOX_BIN = path.join(ROOT, 'packages/inbox/dist/inbox.cjs');
/** The skill's bundled copy. */
export const INBOX_SKILL_BIN = path.join(ROOT, 'skills/inbox/assets/inbox');
/** The bundled orch CLI, exactly as `npx orch` runs it. */
export const ORCH_BIN = path.join(ROOT, 'packages/orch/dist/orch.cjs');
/** The orch skill's bundled copy. */
export const ORCH_SKILL_BIN = path.join(ROOT, 'skills/orch/assets/orch');
export const FIXTURES = path.join(ROOT, 'test-results/fixtures');

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()?.();
});
const fileCleanups: (() => void)[] = [];
afterAll(() => {
  while (fileCleanups.length > 0) fileCleanups.pop()?.();
});

/** A fresh temporary directory, removed after the current test (the leak check fails the file if it is not). */
export function tempDir(prefix = 'orch-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  trackTempDir(dir);
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A fresh temporary directory that lives until the end of the test file: for a fixture built once
 * in a `beforeAll` and shared by several tests (tempDir's would be gone after the first test).
 */
export function fileTempDir(prefix = 'orch-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  trackTempDir(dir);
  fileCleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built inbox CLI synchronously. */
export function inbox(args: string[], options: { cwd?: string; bin?: string } = {}): CliRun {
  const r = spawnSync(process.execPath, [options.bin ?? INBOX_BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the built inbox CLI asynchronously (for concurrent processes). */
export function inboxAsync(args: string[], options: { cwd?: string } = {}): Promise<CliRun> {
  return nodeAsync(INBOX_BIN, args, options.cwd ?? ROOT);
}

/** Runs the built orch CLI synchronously. */
export function orch(args: string[], options: { cwd?: string; bin?: string } = {}): CliRun {
  return inbox(args, { ...options, bin: options.bin ?? ORCH_BIN });
}

/** Runs the built orch CLI asynchronously (e.g. a `wait` while other processes write). */
export function orchAsync(args: string[], options: { cwd?: string } = {}): Promise<CliRun> {
  return nodeAsync(ORCH_BIN, args, options.cwd ?? ROOT);
}

/** Runs orch with --json and expects success; returns the parsed output. */
export function orchOk<T = any>(db: string, args: string[], options: { cwd?: string } = {}): T {
  const r = orch(['--db', db, '--json', ...args], options);
  if (r.code !== 0) throw new Error(`orch ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return json<T>(r);
}

function nodeAsync(script: string, args: string[], cwd: string): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Parses stdout as exactly one JSON document (throws otherwise). */
export function json<T = any>(run: CliRun): T {
  return JSON.parse(run.stdout) as T;
}

/** Runs the CLI with --json and expects success; returns the parsed output. */
export function ok<T = any>(db: string, args: string[], options: { cwd?: string } = {}): T {
  const r = inbox(['--db', db, '--json', ...args], options);
  if (r.code !== 0) throw new Error(`inbox ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return json<T>(r);
}

/** A fresh initialised database (a file in a temp dir, or a schema on PostgreSQL: see test/engine.ts). */
export function initDb(): { dir: string; db: string } {
  const dir = tempDir();
  const db = freshDb(dir);
  ok(db, ['init']);
  return { dir, db };
}

/**
 * Every row of every table plus the schema, as one comparable value; read through a separate
 * read-only connection so taking it never writes (test/engine.ts's dbSnapshot).
 */
export function snapshot(db: string): unknown {
  return dbSnapshot(db);
}

/** Raw read-only access for assertions on rows, on either engine (`?` placeholders). */
export function rows<T = Record<string, unknown>>(db: string, query: string, ...params: unknown[]): T[] {
  return engineRows<T>(db, query, ...params);
}

export interface JsonError {
  code: string;
  message: string;
  details?: unknown;
}

/** Asserts the --json error contract (exit code, nothing on stdout, one JSON line on stderr) and returns the error object. */
export function expectJsonError(r: CliRun, exit: number, code?: string, message?: RegExp): JsonError {
  const where = `stdout=${JSON.stringify(r.stdout)} stderr=${JSON.stringify(r.stderr)}`;
  expect(r.code, where).toBe(exit);
  expect(r.stdout, where).toBe('');
  // Exactly one line, and that line is exactly one JSON document (no stack trace, no extra text).
  expect(r.stderr.endsWith('\n'), where).toBe(true);
  expect(r.stderr.slice(0, -1).includes('\n'), where).toBe(false);
  const body = JSON.parse(r.stderr) as { error: JsonError };
  expect(typeof body, where).toBe('object');
  expect(Object.keys(body), where).toEqual(['error']);
  expect(typeof body.error.code, where).toBe('string');
  expect(typeof body.error.message, where).toBe('string');
  expect(body.error.message.length, where).toBeGreaterThan(0);
  if (code !== undefined) expect(body.error.code, where).toBe(code);
  if (message !== undefined) expect(body.error.message, where).toMatch(message);
  return body.error;
}

/** Runs git (arguments as an array; never a shell) and returns what it did. */
export function gitRun(cwd: string, args: string[]): CliRun {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs git and expects success; returns stdout without the trailing newline. */
export function git(cwd: string, ...args: string[]): string {
  const r = gitRun(cwd, args);
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} in ${cwd} exited ${r.code}: ${r.stderr}`);
  return r.stdout.replace(/\n$/, '');
}

/** Commits everything in `dir`; returns the new commit. */
export function commitAll(dir: string, message: string): string {
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', message);
  return git(dir, 'rev-parse', 'HEAD');
}

/**
 * Makes `dir` (created if missing) a git repository on branch main whose one commit ("initial"
 * unless told) holds `files` (paths relative to `dir`; parent folders are made). Returns the
 * resolved path.
 */
export function initGitRepo(dir: string, files: Record<string, string>, options: { message?: string; user?: [name: string, email: string] } = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const repo = fs.realpathSync(dir);
  const [name, email] = options.user ?? ['Test User', 'test@example.com'];
  git(repo, 'init', '-q', '-b', 'main');
  git(repo, 'config', 'user.name', name);
  git(repo, 'config', 'user.email', email);
  git(repo, 'config', 'commit.gpgsign', 'false');
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(repo, file)), { recursive: true });
    fs.writeFileSync(path.join(repo, file), text);
  }
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', options.message ?? 'initial');
  return repo;
}

/** A fresh git repository in its own temporary directory (see initGitRepo), removed after the test. */
export function newGitRepo(prefix: string, files: Record<string, string>): string {
  return initGitRepo(tempDir(prefix), files);
}

/** A git repository at `<dir>/repo` (path resolved) on branch main, with one commit holding README. */
export function makeGitRepo(dir: string): string {
  return initGitRepo(path.join(dir, 'repo'), { README: 'hi\n' }, { message: 'init', user: ['T', 't@example.com'] });
}

/**
 * Every name in `dir` with its bytes' hash (or <dir>, or <link target>), to show nothing appeared,
 * vanished or changed there.
 */
export function dirState(dir: string): Record<string, string> {
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .sort()
      .map((name) => {
        const full = path.join(dir, name);
        const st = fs.lstatSync(full);
        const hash = () => crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex');
        return [name, st.isSymbolicLink() ? `<link ${fs.readlinkSync(full)}>` : st.isDirectory() ? '<dir>' : hash()];
      }),
  );
}

/** A started `inbox work` (or any long CLI process): its output so far and its end. */
export interface WatchedRun {
  child: ChildProcess;
  stderr: () => string;
  /** The exit; rejects if the process has not exited within the deadline. */
  done: Promise<CliRun & { signal: NodeJS.Signals | null }>;
}

/**
 * Collects `child`'s output and resolves `done` when it exits; rejects (naming `label` and what it
 * wrote on stderr) if it is still running after `deadlineMs`, so a hung process fails its test
 * with a clear message. A test that fails before awaiting `done` leaves no unhandled rejection.
 */
export function watchRun(child: ChildProcess, label: string, deadlineMs: number): WatchedRun {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliRun & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} still running after ${deadlineMs} ms; stderr so far:\n${stderr}`)), deadlineMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout, stderr });
    });
  });
  done.catch(() => undefined);
  return { child, stderr: () => stderr, done };
}
