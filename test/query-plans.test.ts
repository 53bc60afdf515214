// The hot queries use indexes: every statement the library runs for claims, worker writes, waits,
// ready, dispatch, status, reconcile and the event cursor is recorded with its values, and its
// EXPLAIN QUERY PLAN must not scan a whole table that grows with use. Plans, not timings: this
// holds on any machine.
import { ask, claim, initInbox, openInbox, postResult, progress, send, showThread, waitForMessages, type Inbox } from '@orch/inbox';
import {
  addDependency,
  addTask,
  answer,
  blocked,
  dispatch,
  initRun,
  listRuns,
  openOrch,
  readyTasks,
  reconcile,
  showTask,
  status,
  waitEvents,
  type Orch,
} from '@orch/orch';
import type { SqliteStore, Store } from '@orch/store';
import type Database from 'better-sqlite3';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileTempDir } from './helpers.ts';

/** Tables whose size grows with use: a full scan of one of these is what this test refuses. */
const LARGE = ['inbox_threads', 'inbox_messages', 'orch_tasks', 'orch_dependencies', 'orch_attempts', 'orch_events'];

interface Recorded {
  sql: string;
  params: unknown[];
  during: string;
}

/** Records every statement run through the store's statement cache (Kysely's queries and prepared queries). */
function record(store: Store, log: Recorded[], phase: { name: string }): void {
  const cache = sqliteOf(store).statements;
  const prepare = cache.prepare.bind(cache);
  cache.prepare = (text: string) => {
    const stmt = prepare(text);
    const wrap =
      (method: 'all' | 'get' | 'run') =>
      (...params: unknown[]) => {
        if (/^\s*(select|insert|update|delete|with)\b/i.test(text)) log.push({ sql: text, params, during: phase.name });
        return (stmt[method] as (...a: unknown[]) => unknown)(...params);
      };
    return new Proxy(stmt, {
      get: (target, key) => (key === 'all' || key === 'get' || key === 'run' ? wrap(key) : Reflect.get(target, key, target)),
    });
  };
}

/** The table names a plan's SCAN lines name, aliases resolved against the query text. */
function scannedTables(sqlite: Database.Database, sql: string, params: unknown[]): string[] {
  const plan = sqlite.prepare(`explain query plan ${sql}`).all(...params) as { detail: string }[];
  const aliases = new Map<string, string>();
  for (const m of sql.matchAll(/"(\w+)" as "(\w+)"/g)) aliases.set(m[2] as string, m[1] as string);
  return plan
    .map((r) => /^SCAN (\w+)/.exec(r.detail)?.[1])
    .filter((name): name is string => name !== undefined)
    .map((name) => aliases.get(name) ?? name)
    .filter((table) => LARGE.includes(table));
}

let dir: string;
let inbox: Inbox;
let orch: Orch;
const log: Recorded[] = [];
const phase = { name: 'setup' };

beforeAll(async () => {
  dir = fileTempDir('orch-plans-');
  const db = path.join(dir, 'coord.db');
  await initInbox({ path: db });
  orch = await openOrch({ path: db });
  inbox = await openInbox({ path: db });
  record(orch.store, log, phase);
  record(inbox.store, log, phase);

  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    phase.name = name;
    return fn();
  };
  await step('run init', () => initRun(orch, { runId: 'r', goal: 'plans' }));
  for (const t of ['a', 'b', 'c']) await step('task add', () => addTask(orch, { runId: 'r', taskId: t, title: t, defaultTo: 'w' }));
  await step('dep add', () => addDependency(orch, { runId: 'r', taskId: 'c', dependsOn: 'a' }));
  await step('ready', () => readyTasks(orch, { runId: 'r' }));
  const a = await step('dispatch', () => dispatch(orch, { runId: 'r', taskId: 'a', executionMode: 'analysis', body: 'do a' }));
  await step('dispatch', () => dispatch(orch, { runId: 'r', taskId: 'b', executionMode: 'analysis', body: 'do b' }));
  await step('send', () => send(inbox, { to: 'w', subject: 'loose', from: 'lead', body: 'x' }));
  const held = await step('claim (given thread)', () => claim(inbox, { agent: 'w', threadId: a.attempt.thread_id }));
  if (!held.claimed) throw new Error('setup: claim failed');
  await step('claim (oldest)', () => claim(inbox, { agent: 'w' }));
  await step('claim (nothing left)', () => claim(inbox, { agent: 'w' }));
  const lease = { threadId: held.thread.id, lease: held.lease.token };
  await step('progress', () => progress(inbox, { ...lease, body: 'half' }));
  await step('reconcile', () => reconcile(orch, 'r'));
  await step('reconcile (nothing to fold)', () => reconcile(orch, 'r'));
  await step('ask', () => ask(inbox, { ...lease, body: 'which?' }));
  await step('blocked', () => blocked(orch, { runId: 'r' }));
  await step('blocked (every run)', () => blocked(orch, {}));
  await step('run list', () => listRuns(orch, { limit: 100 }));
  await step('answer', () => answer(orch, { runId: 'r', taskId: 'a', body: 'this one' }));
  await step('inbox wait', () => waitForMessages(inbox, { ...lease, agent: 'w', afterMessage: 0, timeoutSeconds: 0 }));
  await step('show', () => showThread(inbox, { threadId: held.thread.id }));
  await step('result', () => postResult(inbox, { ...lease, body: 'done' }));
  await step('status', () => status(orch, { runId: 'r' }));
  await step('task show', () => showTask(orch, { runId: 'r', taskId: 'c' }));
  await step('ready', () => readyTasks(orch, { runId: 'r' }));
  await step('orch wait (cursor)', () => waitEvents(orch, { runId: 'r', afterEvent: 3, timeoutSeconds: 0 }));
  await step('orch wait (new events)', () => waitEvents(orch, { runId: 'r', types: ['task_done'], timeoutSeconds: 0 }));
  phase.name = 'done';
});

afterAll(async () => {
  await inbox?.close();
  await orch?.close();
});

describe('query plans of the hot paths', () => {
  it('the check finds a full scan when there is one', () => {
    expect(scannedTables(sqliteOf(orch.store).sqlite, 'select * from "inbox_threads" where "subject" = ?', ['x'])).toEqual(['inbox_threads']);
    expect(scannedTables(sqliteOf(orch.store).sqlite, 'select * from "orch_tasks" as "t" where "t"."title" = ?', ['x'])).toEqual(['orch_tasks']);
    expect(scannedTables(sqliteOf(orch.store).sqlite, 'select * from "inbox_threads" where "id" = ?', ['x'])).toEqual([]);
  });

  it('recorded the statements of every hot operation', () => {
    const phases = new Set(log.map((r) => r.during));
    for (const p of [
      'claim (oldest)',
      'claim (nothing left)',
      'progress',
      'reconcile',
      'reconcile (nothing to fold)',
      'ready',
      'dispatch',
      'status',
      'orch wait (cursor)',
      'orch wait (new events)',
      'inbox wait',
      'result',
      'blocked (every run)',
      'run list',
    ]) {
      expect(phases, p).toContain(p);
    }
  });

  it('no hot statement scans a whole large table', () => {
    const scans = log
      .filter((r) => r.during !== 'setup' && r.during !== 'done')
      .map((r) => ({ during: r.during, sql: r.sql, tables: scannedTables(sqliteOf(orch.store).sqlite, r.sql, r.params) }))
      .filter((r) => r.tables.length > 0);
    expect(scans).toEqual([]);
  });
});

/** Query plans are SQLite's: this suite runs on a SQLite store only. */
function sqliteOf(store: Store): SqliteStore {
  if (store.kind !== 'sqlite') throw new Error('query plans are checked on SQLite only');
  return store;
}
