/**
 * The in-process test harness: one database per world (a file, or a schema on PostgreSQL), shared by the leader (orch) and the
 * workers (inbox), both on the same manual clock, with id generators that can never collide; and
 * the small steps the library tests are written in (make a run, dispatch, claim, complete, compare
 * snapshots around a refused operation). Used by packages/orch/src/orch.test.ts.
 */
import { claim, initInbox, openInbox, postResult, type Inbox } from '@orch/inbox';
import { AppError, ManualClock, sequentialIds, type IdGenerator } from '@orch/store';
import fs from 'node:fs';
import { expect } from 'vitest';
import {
  addDependency,
  addTask,
  dispatch,
  initRun,
  openOrch,
  readyTasks,
  reconcile,
  showTask,
  status,
  waitEvents,
  type EventView,
  type Orch,
} from '../packages/orch/src/index.ts';
import { freshDb } from './engine.ts';
import { fileTempDir } from './helpers.ts';
import { trackOpen, untrackOpen } from './leaks.ts';

export interface World {
  dir: string;
  clock: ManualClock;
  orch: Orch;
  inbox: Inbox;
  close(): Promise<void>;
}

/** Worker-side ids: `ls_w1`, `ls_w2`, ... (the orch handle uses `th_1`, `at_2`, ...). */
export function workerIds(): IdGenerator {
  let n = 0;
  return { next: (prefix) => `${prefix}_w${++n}` };
}

/** A fresh world; `close()` closes both handles and removes its directory (the leak check holds you to it). */
export async function openWorld(): Promise<World> {
  const dir = fileTempDir('orch-lib-');
  const clock = new ManualClock();
  const dbPath = freshDb(dir);
  await initInbox({ path: dbPath, clock });
  const orch = await openOrch({ path: dbPath, clock, ids: sequentialIds() });
  const inbox = await openInbox({ path: dbPath, clock, ids: workerIds() });
  const world: World = {
    dir,
    clock,
    orch,
    inbox,
    close: async () => {
      await inbox.close();
      await orch.close();
      fs.rmSync(dir, { recursive: true, force: true });
      untrackOpen(world);
    },
  };
  trackOpen(world, `a harness world (orch and inbox handles on ${dbPath}): call its close()`);
  return world;
}

/** The run the steps act on unless told otherwise. */
export const RUN = 'r1';

/** The harness steps, acting on whatever world `current()` returns when they run. */
export function worldSteps(current: () => World) {
  /** Every event of the run, oldest first (wait with cursor 0 and no timeout returns them all). */
  async function allEvents(runId = RUN): Promise<EventView[]> {
    return (await waitEvents(current().orch, { runId, afterEvent: 0, timeoutSeconds: 0 })).events;
  }

  async function eventTypes(runId = RUN): Promise<string[]> {
    return (await allEvents(runId)).map((e) => e.type);
  }

  async function eventsAfter(seq: number, runId = RUN): Promise<EventView[]> {
    return (await allEvents(runId)).filter((e) => e.seq > seq);
  }

  async function taskState(taskId: string, runId = RUN): Promise<string> {
    return (await showTask(current().orch, { runId, taskId })).task.state;
  }

  async function states(runId = RUN): Promise<Record<string, string>> {
    const s = await status(current().orch, { runId });
    return Object.fromEntries(s.tasks.map((t) => [t.id, t.state]));
  }

  async function readyIds(runId = RUN): Promise<string[]> {
    return (await readyTasks(current().orch, { runId })).tasks.map((t) => t.id);
  }

  /** A run with the given tasks (ids double as titles) and `[task, dependsOn]` edges. */
  async function makeRun(tasks: string[], deps: [string, string][] = [], runId = RUN): Promise<void> {
    const orch = current().orch;
    await initRun(orch, { runId, goal: `goal of ${runId}` });
    for (const t of tasks) await addTask(orch, { runId, taskId: t, title: `Task ${t}`, defaultTo: 'w1' });
    for (const [t, d] of deps) await addDependency(orch, { runId, taskId: t, dependsOn: d });
  }

  async function send(taskId: string, to = 'w1', runId = RUN) {
    return dispatch(current().orch, { runId, taskId, executionMode: 'analysis', to, body: `do ${taskId}` });
  }

  /** The worker `agent` claims the thread and returns its lease token. */
  async function claimAs(agent: string, threadId: string, leaseSeconds = 60): Promise<string> {
    const r = await claim(current().inbox, { agent, threadId, leaseSeconds });
    if (!r.claimed) throw new Error(`expected ${agent} to claim ${threadId}: ${r.reason}`);
    return r.lease.token;
  }

  /** Dispatches the task, has w1 claim it and post a result. */
  async function complete(taskId: string, runId = RUN): Promise<void> {
    const d = await send(taskId, 'w1', runId);
    const token = await claimAs('w1', d.attempt.thread_id);
    await postResult(current().inbox, { threadId: d.attempt.thread_id, lease: token, body: `${taskId} done` });
    await reconcile(current().orch, runId);
  }

  /** Everything observable about a run, to show that a refused operation changed nothing. */
  async function snapshot(runId = RUN) {
    const orch = current().orch;
    const s = await status(orch, { runId });
    const events = await allEvents(runId);
    const tasks = [];
    for (const t of s.tasks) {
      const shown = await showTask(orch, { runId, taskId: t.id });
      tasks.push({
        id: t.id,
        state: t.state,
        ready: t.ready,
        attempts: shown.attempts.map((a) => ({ id: a.id, number: a.number, state: a.state, thread: a.thread?.state, to: a.assigned_to })),
      });
    }
    return {
      run: s.run.state,
      last_event: s.last_event,
      events: events.map((e) => `${e.seq}:${e.type}:${e.task ?? ''}`),
      tasks,
    };
  }

  /** Asserts `op` is refused with `exitCode` (and `message`, if given) and that `runId` did not change. */
  async function expectRefused(op: () => Promise<unknown>, exitCode: number, message?: RegExp, runId = RUN): Promise<AppError> {
    const before = await snapshot(runId);
    const err = await op().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, 'the operation should have been refused').toBeInstanceOf(AppError);
    expect(err).toMatchObject({ exitCode });
    if (message) expect((err as Error).message).toMatch(message);
    expect(await snapshot(runId)).toEqual(before);
    return err as AppError;
  }

  return { allEvents, eventTypes, eventsAfter, taskState, states, readyIds, makeRun, send, claimAs, complete, snapshot, expectRefused };
}
