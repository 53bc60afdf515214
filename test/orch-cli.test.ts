import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inbox, initDb, json, ok, orch, orchAsync, orchOk, ORCH_SKILL_BIN, rows, type CliRun } from './helpers.ts';
import { freshDb, onPostgres } from './engine.ts';

/**
 * The orch CLI end to end, through the built bundles: the leader drives `orch`, a worker is played
 * by `inbox` commands in separate processes, and both share one SQLite file.
 */

const RUN = 'blog_mvp_001';

/** `./coord.db` as a command run in `dir` names the database of initDb() (on PostgreSQL, its URL). */
const dbIn = (dir: string): string => (onPostgres ? freshDb(dir) : './coord.db');

/** `orch`/`inbox` with --json against `./coord.db` in `dir`, as the skill's Typical Commands run them. */
function inDir(dir: string) {
  const check = (name: string, args: string[], r: CliRun) => {
    const where = `${name} ${args.join(' ')}: exit ${r.code} stderr=${r.stderr}`;
    expect(r.code, where).toBe(0);
    expect(r.stderr, where).toBe('');
    return json(r);
  };
  return {
    o: (args: string[]) => check('orch', args, orch(['--db', dbIn(dir), '--json', ...args], { cwd: dir })),
    i: (args: string[]) => check('inbox', args, inbox(['--db', dbIn(dir), '--json', ...args], { cwd: dir })),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A run with one task, dispatched in analysis mode to `agent`; returns the dispatch output. */
function runWithDispatchedTask(db: string, run: string, task: string, agent: string) {
  orchOk(db, ['run', 'init', '--run', run, '--goal', `goal of ${run}`]);
  orchOk(db, ['task', 'add', '--run', run, '--task', task, '--title', `title of ${task}`, '--default-to', agent]);
  return orchOk(db, ['dispatch', '--run', run, '--task', task, '--execution-mode', 'analysis', '--body', `please do ${task}`]);
}

function taskStates(db: string, run: string): Record<string, string> {
  const s = orchOk(db, ['status', '--run', run]);
  return Object.fromEntries((s.tasks as { id: string; state: string }[]).map((t) => [t.id, t.state]));
}

describe("the skill's Typical Commands, analysis mode, end to end (slow)", () => {
  it('plans, dispatches, blocks, answers and finishes a two-task run through the built CLIs', () => {
    // initDb() runs `inbox init` on <dir>/coord.db; from here on every command runs in <dir>.
    const { dir } = initDb();
    const { o, i } = inDir(dir);
    fs.mkdirSync(path.join(dir, 'tasks'));
    const t1Body = 'Initialize the app structure and the database wiring.\nKeep it minimal.\n';
    fs.writeFileSync(path.join(dir, 'tasks/t1.md'), t1Body);

    const created = o(['run', 'init', '--run', RUN, '--goal', 'Build blog MVP', '--summary', 'Public blog plus admin CRUD']);
    expect(created.run).toMatchObject({ id: RUN, goal: 'Build blog MVP', summary: 'Public blog plus admin CRUD', state: 'active' });
    expect(created.counts).toEqual({ total: 0 });

    const t1 = o([
      'task',
      'add',
      '--run',
      RUN,
      '--task',
      'T1',
      '--title',
      'Project skeleton',
      '--summary',
      'Initialize app structure and database wiring',
      '--default-to',
      'foundation-worker',
    ]);
    expect(t1.task).toMatchObject({
      run: RUN,
      id: 'T1',
      title: 'Project skeleton',
      default_to: 'foundation-worker',
      acceptance: null,
      priority: 0,
      state: 'pending',
    });
    const t2 = o([
      'task',
      'add',
      '--run',
      RUN,
      '--task',
      'T2',
      '--title',
      'Summarize flaky tests',
      '--summary',
      'Read logs and report next steps',
      '--default-to',
      'qa-worker',
      '--acceptance-json',
      '{"kind":"analysis"}',
    ]);
    expect(t2.task).toMatchObject({ id: 'T2', default_to: 'qa-worker', acceptance: { kind: 'analysis' }, state: 'pending' });

    const dep = o(['dep', 'add', '--run', RUN, '--task', 'T2', '--depends-on', 'T1']);
    expect(dep).toMatchObject({ run: RUN, task: 'T2', depends_on: 'T1', created: true, dependencies: ['T1'] });

    expect(o(['ready', '--run', RUN]).tasks.map((t: { id: string }) => t.id)).toEqual(['T1']);

    // The seed dispatches T1 in code mode (a git worktree); this suite covers analysis mode only.
    const d1 = o(['dispatch', '--run', RUN, '--task', 'T1', '--execution-mode', 'analysis', '--to', 'foundation-worker', '--body-file', 'tasks/t1.md']);
    expect(d1.run.id).toBe(RUN);
    expect(d1.task).toMatchObject({ id: 'T1', state: 'dispatched' });
    expect(d1.attempt).toMatchObject({
      number: 1,
      assigned_to: 'foundation-worker',
      execution_mode: 'analysis',
      state: 'dispatched',
      body: t1Body,
      worktree_path: null,
    });
    expect(d1.attempt.id).toMatch(/^at_/);
    expect(d1.attempt.thread_id).toMatch(/^th_/);

    // The worker side: claim, progress, result.
    const c1 = i(['claim', '--agent', 'foundation-worker']);
    expect(c1.claimed).toBe(true);
    expect(c1.thread.id).toBe(d1.attempt.thread_id);
    expect(c1.messages[0]).toMatchObject({ kind: 'task', author: 'leader', body: t1Body });
    expect(c1.messages[0].payload).toMatchObject({
      task: { id: 'T1', title: 'Project skeleton' },
      attempt: { id: d1.attempt.id, number: 1, execution_mode: 'analysis' },
    });
    const lease1 = c1.lease.token as string;
    i(['progress', '--thread', c1.thread.id, '--lease', lease1, '--body', 'Skeleton half done.']);
    i(['result', '--thread', c1.thread.id, '--lease', lease1, '--body', 'Skeleton in place.']);

    expect(o(['ready', '--run', RUN]).tasks.map((t: { id: string }) => t.id)).toEqual(['T2']);

    const d2 = o([
      'dispatch',
      '--run',
      RUN,
      '--task',
      'T2',
      '--execution-mode',
      'analysis',
      '--to',
      'qa-worker',
      '--body',
      'Read the failing test logs and summarize the root cause.',
    ]);
    expect(d2.run.id).toBe(RUN);
    expect(d2.task.id).toBe('T2');
    expect(d2.attempt).toMatchObject({
      number: 1,
      assigned_to: 'qa-worker',
      execution_mode: 'analysis',
      body: 'Read the failing test logs and summarize the root cause.',
    });
    expect(d2.attempt.id).toMatch(/^at_/);
    expect(d2.attempt.thread_id).toMatch(/^th_/);
    expect(d2.attempt.thread_id).not.toBe(d1.attempt.thread_id);

    const s1 = o(['status', '--run', RUN]);
    expect(s1.run.state).toBe('active');
    expect(s1.counts).toEqual({ total: 2, done: 1, dispatched: 1 });
    const byId1 = Object.fromEntries(s1.tasks.map((t: { id: string }) => [t.id, t]));
    expect(byId1.T1).toMatchObject({
      state: 'done',
      attempts: 1,
      latest_attempt: { id: d1.attempt.id, state: 'done', result: { body: 'Skeleton in place.', payload: null } },
    });
    expect(byId1.T2).toMatchObject({
      state: 'dispatched',
      depends_on: ['T1'],
      waiting_on: [],
      latest_attempt: { id: d2.attempt.id, thread_id: d2.attempt.thread_id },
    });
    expect(typeof s1.last_event).toBe('number');

    // The QA worker claims T2 and asks a blocking question.
    const c2 = i(['claim', '--agent', 'qa-worker']);
    expect(c2.thread.id).toBe(d2.attempt.thread_id);
    const lease2 = c2.lease.token as string;
    const asked = i(['ask', '--thread', c2.thread.id, '--lease', lease2, '--body', 'Which post states does the MVP support?']);
    expect(asked.thread.state).toBe('blocked');

    const waited = o(['wait', '--run', RUN, '--for', 'task_blocked,task_done,task_failed', '--after-event', '0', '--timeout-seconds', '900']);
    expect(waited.timed_out).toBe(false);
    const waitedTypes = waited.events.map((e: { type: string }) => e.type);
    expect(waitedTypes).toEqual(['task_done', 'task_blocked']);
    expect(waited.events[1]).toMatchObject({
      run: RUN,
      task: 'T2',
      attempt: d2.attempt.id,
      data: { task_state: 'blocked', body: 'Which post states does the MVP support?', author: 'qa-worker' },
    });
    expect(waited.last_event).toBe(waited.events.at(-1).seq);

    const bl = o(['blocked', '--run', RUN]);
    expect(bl.tasks).toHaveLength(1);
    expect(bl.tasks[0].task).toMatchObject({ id: 'T2', state: 'blocked' });
    expect(bl.tasks[0].attempt).toMatchObject({ id: d2.attempt.id, thread_id: d2.attempt.thread_id, state: 'blocked' });
    expect(bl.tasks[0].question).toMatchObject({ body: 'Which post states does the MVP support?', asked_by: 'qa-worker', payload: null });

    const answered = o(['answer', '--run', RUN, '--task', 'T2', '--body', 'MVP supports draft and published only.']);
    expect(answered.task).toMatchObject({ id: 'T2', state: 'running' });
    expect(answered.message).toMatchObject({
      kind: 'answer',
      author: 'leader',
      body: 'MVP supports draft and published only.',
      thread_id: d2.attempt.thread_id,
    });

    // The worker's wait returns with the leader's answer.
    const got = i(['wait', '--thread', c2.thread.id, '--lease', lease2, '--timeout-seconds', '30']);
    expect(got.timed_out).toBe(false);
    expect(got.messages.map((m: { kind: string; body: string }) => [m.kind, m.body])).toEqual([['answer', 'MVP supports draft and published only.']]);
    i(['result', '--thread', c2.thread.id, '--lease', lease2, '--body', 'Root cause: a timezone-dependent fixture.']);

    const s2 = o(['status', '--run', RUN]);
    expect(s2.run.state).toBe('done');
    expect(s2.counts).toEqual({ total: 2, done: 2 });
    expect(s2.tasks.map((t: { id: string; state: string }) => [t.id, t.state])).toEqual([
      ['T1', 'done'],
      ['T2', 'done'],
    ]);
    expect(s2.tasks[1].latest_attempt.result).toEqual({ body: 'Root cause: a timezone-dependent fixture.', payload: null });

    const runDone = o(['wait', '--run', RUN, '--for', 'run_done', '--after-event', '0', '--timeout-seconds', '5']);
    expect(runDone).toMatchObject({ timed_out: false, run_state: 'done' });
    expect(runDone.events.map((e: { type: string }) => e.type)).toEqual(['run_done']);
    expect(runDone.events[0].data).toEqual({ done: 2, cancelled: 0 });

    // The whole event log, in order: numbered 1..N without gaps.
    const all = o(['wait', '--run', RUN, '--after-event', '0', '--timeout-seconds', '5']);
    expect(all.events.map((e: { type: string }) => e.type)).toEqual([
      'run_created',
      'task_added',
      'task_added',
      'dependency_added',
      'task_dispatched',
      'task_claimed',
      'task_progress',
      'task_done',
      'task_dispatched',
      'task_claimed',
      'task_blocked',
      'task_answered',
      'task_done',
      'run_done',
    ]);
    expect(all.events.map((e: { seq: number }) => e.seq)).toEqual(all.events.map((_: unknown, n: number) => n + 1));
    expect(all.last_event).toBe(s2.last_event);

    const cleaned = o(['cleanup', '--run', RUN, '--all-completed']);
    expect(cleaned).toMatchObject({ run: RUN, dry_run: false });
    expect(
      cleaned.attempts.map((a: { attempt: string; task: string; state: string; execution_mode: string; removed: boolean }) => [
        a.attempt,
        a.task,
        a.state,
        a.execution_mode,
        a.removed,
      ]),
    ).toEqual([
      [d1.attempt.id, 'T1', 'done', 'analysis', false],
      [d2.attempt.id, 'T2', 'done', 'analysis', false],
    ]);
  });
});

describe('dispatch --execution-mode (slow)', () => {
  it('is required, and must be analysis or code: missing or bogus is exit 2 and dispatches nothing', () => {
    const { db } = initDb();
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    orchOk(db, ['task', 'add', '--run', 'r', '--task', 'T', '--title', 't', '--default-to', 'w']);
    const base = ['--db', db, '--json', 'dispatch', '--run', 'r', '--task', 'T', '--body', 'b'];
    for (const extra of [[], ['--execution-mode', 'bogus'], ['--execution-mode', 'Analysis']]) {
      const r = orch([...base, ...extra]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'VALIDATION', message: '--execution-mode: must be one of analysis, code' });
    }
    expect(rows(db, 'select count(*) as n from orch_attempts')).toEqual([{ n: 0 }]);
    expect(rows(db, 'select count(*) as n from inbox_threads')).toEqual([{ n: 0 }]);
    expect(taskStates(db, 'r')).toEqual({ T: 'pending' });
  });
});

describe('wait (slow)', () => {
  it('returns when another process writes the matching event (the worker posts its result)', async () => {
    const { db } = initDb();
    const d = runWithDispatchedTask(db, 'r', 'T', 'w');
    const claim = ok(db, ['claim', '--agent', 'w']);
    expect(claim.thread.id).toBe(d.attempt.thread_id);
    let settled = false;
    const waiting = orchAsync(['--db', db, '--json', 'wait', '--run', 'r', '--for', 'task_done', '--timeout-seconds', '30']).finally(() => {
      settled = true;
    });
    // A head start so the wait is (very likely) already polling; the result does not depend on it.
    await sleep(300);
    expect(settled, 'wait returned before any task_done event existed').toBe(false);
    ok(db, ['result', '--thread', claim.thread.id, '--lease', claim.lease.token, '--body', 'all done']);
    const r = await waiting;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const out = json(r);
    expect(out.timed_out).toBe(false);
    expect(out.events).toHaveLength(1);
    expect(out.events[0]).toMatchObject({ type: 'task_done', task: 'T', attempt: d.attempt.id, data: { task_state: 'done', body: 'all done', author: 'w' } });
    // last_event is the newest event the wait examined (here the run_done after task_done), not
    // just the newest one it returned: the next --after-event skips what did not match.
    expect(out.last_event).toBeGreaterThanOrEqual(out.events[0].seq);
    expect(out.last_event).toBe(orchOk(db, ['run', 'show', '--run', 'r']).last_event);
  });

  it('times out cleanly: exit 0, no events, timed_out true, the cursor unchanged', () => {
    const { db } = initDb();
    runWithDispatchedTask(db, 'r', 'T', 'w');
    const last = orchOk(db, ['status', '--run', 'r']).last_event as number;
    const r = orch(['--db', db, '--json', 'wait', '--run', 'r', '--timeout-seconds', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(json(r)).toMatchObject({ run: 'r', events: [], timed_out: true, last_event: last });
  });
});

describe('retry and reassign (slow)', () => {
  it('a failed task is retried: a fresh attempt and thread for the same agent, with the same body', () => {
    const { db } = initDb();
    const d1 = runWithDispatchedTask(db, 'r', 'T', 'w');
    const c1 = ok(db, ['claim', '--agent', 'w']);
    ok(db, ['fail', '--thread', c1.thread.id, '--lease', c1.lease.token, '--body', 'the logs are missing']);

    const s = orchOk(db, ['status', '--run', 'r']);
    expect(s.tasks[0]).toMatchObject({ id: 'T', state: 'failed', ready: true, latest_attempt: { state: 'failed', result: { body: 'the logs are missing' } } });
    expect(orchOk(db, ['ready', '--run', 'r']).tasks.map((t: { id: string }) => t.id)).toEqual(['T']);
    const failed = orchOk(db, ['wait', '--run', 'r', '--for', 'task_failed', '--after-event', '0', '--timeout-seconds', '5']);
    expect(failed.events.map((e: { type: string }) => e.type)).toEqual(['task_failed']);

    const d2 = orchOk(db, ['retry', '--run', 'r', '--task', 'T']);
    expect(d2.task).toMatchObject({ id: 'T', state: 'dispatched' });
    expect(d2.attempt).toMatchObject({ number: 2, assigned_to: 'w', execution_mode: 'analysis', body: 'please do T', state: 'dispatched' });
    expect(d2.attempt.thread_id).not.toBe(d1.attempt.thread_id);
    expect(d2.attempt.id).not.toBe(d1.attempt.id);

    const c2 = ok(db, ['claim', '--agent', 'w']);
    expect(c2.thread.id).toBe(d2.attempt.thread_id);
    ok(db, ['result', '--thread', c2.thread.id, '--lease', c2.lease.token, '--body', 'found them']);
    const shown = orchOk(db, ['task', 'show', '--run', 'r', '--task', 'T']);
    expect(shown.task.state).toBe('done');
    expect(shown.attempts.map((a: { number: number; state: string }) => [a.number, a.state])).toEqual([
      [1, 'failed'],
      [2, 'done'],
    ]);
    expect(orchOk(db, ['run', 'show', '--run', 'r']).run.state).toBe('done');
  });

  it('reassign fences the old worker out (exit 5) and the new worker finishes on a new thread', () => {
    const { db } = initDb();
    const d1 = runWithDispatchedTask(db, 'r', 'T', 'worker-a');
    const a = ok(db, ['claim', '--agent', 'worker-a']);
    expect(a.thread.id).toBe(d1.attempt.thread_id);
    ok(db, ['progress', '--thread', a.thread.id, '--lease', a.lease.token, '--body', 'started']);
    expect(taskStates(db, 'r')).toEqual({ T: 'running' });

    const moved = orchOk(db, ['reassign', '--run', 'r', '--task', 'T', '--to', 'worker-b']);
    expect(moved.cancelled_attempt).toMatchObject({ id: d1.attempt.id, state: 'cancelled', assigned_to: 'worker-a' });
    expect(moved.attempt).toMatchObject({ number: 2, assigned_to: 'worker-b', execution_mode: 'analysis', body: 'please do T' });
    expect(moved.attempt.thread_id).not.toBe(a.thread.id);

    // Worker A's next writes are refused: its thread was cancelled.
    for (const args of [
      ['progress', '--thread', a.thread.id, '--lease', a.lease.token, '--body', 'still going'],
      ['result', '--thread', a.thread.id, '--lease', a.lease.token, '--body', 'late result'],
    ]) {
      const r = inbox(['--db', db, '--json', ...args]);
      expect(r.code, r.stderr).toBe(5);
      expect(r.stdout).toBe('');
      expect(JSON.parse(r.stderr).error.code).toBe('LEASE_LOST');
    }
    // Nothing for worker A to claim any more.
    expect(ok(db, ['claim', '--agent', 'worker-a']).claimed).toBe(false);

    const b = ok(db, ['claim', '--agent', 'worker-b']);
    expect(b.thread.id).toBe(moved.attempt.thread_id);
    ok(db, ['result', '--thread', b.thread.id, '--lease', b.lease.token, '--body', 'done by b']);

    const shown = orchOk(db, ['task', 'show', '--run', 'r', '--task', 'T']);
    expect(shown.task.state).toBe('done');
    expect(shown.attempts.map((x: { number: number; state: string; assigned_to: string }) => [x.number, x.state, x.assigned_to])).toEqual([
      [1, 'cancelled', 'worker-a'],
      [2, 'done', 'worker-b'],
    ]);
    const events = orchOk(db, ['wait', '--run', 'r', '--after-event', '0', '--timeout-seconds', '5']).events.map((e: { type: string }) => e.type);
    expect(events).toContain('attempt_cancelled');
    expect(events).not.toContain('task_failed');
    expect(events.filter((t: string) => t === 'task_done')).toHaveLength(1);
  });
});

describe('lease expiry (slow)', () => {
  it('an expired lease shows as an expired task and an attempt_expired event; retry dispatches it again', async () => {
    const { db } = initDb();
    const d1 = runWithDispatchedTask(db, 'r', 'T', 'w');
    const c = ok(db, ['claim', '--agent', 'w', '--lease-seconds', '1']);
    expect(c.thread.id).toBe(d1.attempt.thread_id);
    await sleep(1500); // the lease length itself, plus a margin

    const s = orchOk(db, ['status', '--run', 'r']);
    expect(s.tasks[0]).toMatchObject({ id: 'T', state: 'expired', ready: true, latest_attempt: { id: d1.attempt.id, state: 'expired' } });
    const expired = orchOk(db, ['wait', '--run', 'r', '--for', 'attempt_expired', '--after-event', '0', '--timeout-seconds', '5']);
    expect(expired.events).toHaveLength(1);
    expect(expired.events[0]).toMatchObject({ type: 'attempt_expired', task: 'T', attempt: d1.attempt.id, data: { claimed_by: 'w', thread_id: c.thread.id } });

    // The worker whose lease ran out is fenced out.
    const late = inbox(['--db', db, '--json', 'progress', '--thread', c.thread.id, '--lease', c.lease.token, '--body', 'late']);
    expect(late.code, late.stderr).toBe(5);

    const d2 = orchOk(db, ['retry', '--run', 'r', '--task', 'T']);
    expect(d2.attempt).toMatchObject({ number: 2, assigned_to: 'w', state: 'dispatched' });
    const c2 = ok(db, ['claim', '--agent', 'w']);
    expect(c2.thread.id).toBe(d2.attempt.thread_id);
    ok(db, ['result', '--thread', c2.thread.id, '--lease', c2.lease.token, '--body', 'done the second time']);
    expect(taskStates(db, 'r')).toEqual({ T: 'done' });
  });
});

// ---------------------------------------------------------------------------------------------

const COMMANDS: [command: string, flags: string[]][] = [
  ['run init', ['--run', '--goal', '--summary']],
  ['run show', ['--run']],
  ['run list', ['--state', '--limit']],
  ['task add', ['--run', '--task', '--title', '--summary', '--default-to', '--acceptance-json', '--priority']],
  ['task show', ['--run', '--task']],
  ['dep add', ['--run', '--task', '--depends-on']],
  ['ready', ['--run']],
  ['dispatch', ['--run', '--task', '--execution-mode', '--to', '--body', '--body-file', '--repo-path', '--workspace-root', '--base-ref']],
  ['reconcile', ['--run']],
  ['status', ['--run']],
  ['wait', ['--run', '--for', '--after-event', '--timeout-seconds']],
  ['blocked', ['--run']],
  ['answer', ['--run', '--task', '--body', '--body-file', '--payload-json']],
  ['retry', ['--run', '--task', '--to', '--body', '--body-file', '--base-ref']],
  ['reassign', ['--run', '--task', '--to', '--body', '--body-file', '--base-ref']],
  ['cancel', ['--run', '--task', '--reason']],
  ['diff', ['--run', '--task', '--attempt', '--stat']],
  ['merge', ['--run', '--task', '--attempt', '--into', '--strategy']],
  ['cleanup', ['--run', '--all-completed', '--attempt', '--dry-run', '--force']],
];

const EPILOGUE =
  /Exit codes: 0 ok · 1 internal error \(a bug\) · 2 usage or validation error · 3 not found ·\s+4 conflict or invalid state · 5 lease lost · 6 database unavailable/;

const helpRuns = new Map<string, CliRun>();
/** `orch <command> --help`, run once per command and shared by the tests below. */
function help(command: string): CliRun {
  let r = helpRuns.get(command);
  if (!r) {
    r = orch([...command.split(' '), '--help']);
    helpRuns.set(command, r);
  }
  return r;
}

describe('--help (slow)', () => {
  it('orch --help lists every command and ends with the exit codes and the JSON contract', () => {
    const r = orch(['--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    for (const group of ['run', 'task', 'dep']) expect(r.stdout).toMatch(new RegExp(`orch ${group}\\s`));
    for (const [command] of COMMANDS.filter(([c]) => !c.includes(' '))) expect(r.stdout).toMatch(new RegExp(`orch ${command}\\s`));
    expect(r.stdout).toMatch(/init \| show \| list/);
    expect(r.stdout).toMatch(EPILOGUE);
    expect(r.stdout).toContain('{"error": {"code": "...", "message": "...", "details": ...}}');
  });

  it.each(COMMANDS)('orch %s --help exits 0 with its flags and an Examples: section', (command, flags) => {
    const r = help(command);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`orch ${command}:`);
    for (const flag of [...flags, '--db', '--json']) expect(r.stdout, `${command} --help should list ${flag}`).toMatch(new RegExp(`\\s${flag}\\s`));
    const examples = r.stdout.split('Examples:')[1];
    expect(examples, `${command} --help has no Examples: section`).toBeDefined();
    expect(examples).toContain(`orch --db ./coord.db`);
    expect(examples).toContain(` ${command} `);
  });

  it.each(COMMANDS)('orch %s --help ends with the exit-code epilogue', (command) => {
    const r = help(command);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(EPILOGUE);
  });

  it.each(['run', 'task', 'dep'])('orch %s --help (a command group) exits 0 and lists its subcommands', (group) => {
    const r = orch([group, '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    for (const [command] of COMMANDS.filter(([c]) => c.startsWith(`${group} `))) expect(r.stdout).toContain(`orch ${command}`);
  });
});

describe('the skill copy skills/orch/assets/orch (slow)', () => {
  it('is executable as the skill invokes it (./assets/orch --help)', () => {
    const r = spawnSync(ORCH_SKILL_BIN, ['--help'], {
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}` },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^orch: the leader's control plane/);
    expect(r.stdout).toMatch(/orch dispatch\s/);
  });

  it('works against a database: run init, run list, status', () => {
    const { dir } = initDb();
    const skill = (args: string[]) => {
      const r = orch(['--db', dbIn(dir), '--json', ...args], { cwd: dir, bin: ORCH_SKILL_BIN });
      expect(r.code, r.stderr).toBe(0);
      return json(r);
    };
    skill(['run', 'init', '--run', 'skill_run', '--goal', 'via the skill copy']);
    skill(['task', 'add', '--run', 'skill_run', '--task', 'T1', '--title', 'one']);
    const listed = skill(['run', 'list']);
    expect(listed.runs.map((r: { id: string; state: string }) => [r.id, r.state])).toEqual([['skill_run', 'active']]);
    expect(listed.runs[0].counts).toEqual({ total: 1, pending: 1 });
    expect(skill(['status', '--run', 'skill_run']).tasks.map((t: { id: string }) => t.id)).toEqual(['T1']);
    // The built CLI reads what the skill copy wrote.
    expect(orchOk(freshDb(dir), ['run', 'show', '--run', 'skill_run']).run.goal).toBe('via the skill copy');
  });
});

describe('text output (no --json) (slow)', () => {
  it('status, ready and blocked print readable text with task ids and states, never JSON', () => {
    const { db } = initDb();
    orchOk(db, ['run', 'init', '--run', 'txt', '--goal', 'Readable output']);
    orchOk(db, ['task', 'add', '--run', 'txt', '--task', 'Q1', '--title', 'Asks a question', '--default-to', 'w']);
    orchOk(db, ['task', 'add', '--run', 'txt', '--task', 'FREE', '--title', 'Ready to go', '--default-to', 'w2']);
    orchOk(db, ['task', 'add', '--run', 'txt', '--task', 'LATER', '--title', 'Waits for Q1']);
    orchOk(db, ['dep', 'add', '--run', 'txt', '--task', 'LATER', '--depends-on', 'Q1']);
    const d = orchOk(db, ['dispatch', '--run', 'txt', '--task', 'Q1', '--execution-mode', 'analysis', '--body', 'Go']);
    const c = ok(db, ['claim', '--agent', 'w']);
    ok(db, ['ask', '--thread', c.thread.id, '--lease', c.lease.token, '--body', 'Draft posts: public or private?']);

    const text = (args: string[]) => {
      const r = orch(['--db', db, ...args]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().length).toBeGreaterThan(0);
      expect(r.stdout).not.toMatch(/^\s*[{[]/);
      expect(() => JSON.parse(r.stdout)).toThrow();
      return r.stdout;
    };

    const status = text(['status', '--run', 'txt']);
    expect(status).toContain('run txt [active]: Readable output');
    expect(status).toMatch(/^Q1\s+blocked\s+#1 w\s+question: Draft posts: public or private\?/m);
    expect(status).toMatch(/^FREE\s+pending \(ready\)/m);
    expect(status).toMatch(/^LATER\s+pending \(waits on Q1\)/m);

    const ready = text(['ready', '--run', 'txt']);
    expect(ready).toMatch(/^TASK\s+PRIORITY\s+STATE/m);
    expect(ready).toMatch(/^FREE\s+0\s+pending/m);
    expect(ready).not.toMatch(/^Q1\s/m);
    expect(ready).not.toMatch(/^LATER\s/m);

    const blocked = text(['blocked', '--run', 'txt']);
    expect(blocked).toContain(`Q1 (attempt 1, w, thread ${d.attempt.thread_id}): Asks a question`);
    expect(blocked).toContain('Draft posts: public or private?');
    expect(blocked).not.toContain('FREE');
  });
});
