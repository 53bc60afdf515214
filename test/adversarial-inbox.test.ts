// Attacks on the inbox's promises from outside, through the skill executables copied out of the
// repository (test/outside.ts): JSON nesting on every surface that takes JSON, rows an older version
// left behind, a thread too large to print as one string, a runner stopped while its agent waits for
// an answer, an agent named like the leader, and waits that must not skip an answer.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectJsonError, rows, snapshot, tempDir, type CliRun } from './helpers.ts';
import { outside, outsideEnv, run, runAsync } from './outside.ts';
import { freshDb, rawSql } from './engine.ts';

/** Runs the copied inbox with --json and expects exit 0; returns the parsed output. */
function inboxOk<T = any>(db: string, args: string[]): T {
  const r = run('inbox', ['--db', db, '--json', ...args]);
  if (r.code !== 0) throw new Error(`inbox ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(0, 2000)}`);
  return JSON.parse(r.stdout) as T;
}

function orchOk<T = any>(db: string, args: string[]): T {
  const r = run('orch', ['--db', db, '--json', ...args]);
  if (r.code !== 0) throw new Error(`orch ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(0, 2000)}`);
  return JSON.parse(r.stdout) as T;
}

function newDb(): { dir: string; db: string } {
  const dir = tempDir('adv-inbox-');
  const db = freshDb(dir);
  inboxOk(db, ['init']);
  return { dir, db };
}

/** JSON text of an object whose one field nests arrays `depth` levels deep. */
function deepObject(depth: number): string {
  return `{"deep":${'['.repeat(depth)}${']'.repeat(depth)}}`;
}

/** A run with one task dispatched (analysis mode) to `agent`; returns the thread id. */
function dispatched(db: string, agent: string, task = 'T1'): string {
  orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'attack']);
  orchOk(db, ['task', 'add', '--run', 'r', '--task', task, '--title', 'a task', '--default-to', agent]);
  return orchOk(db, ['dispatch', '--run', 'r', '--task', task, '--execution-mode', 'analysis', '--body', 'do it']).attempt.thread_id as string;
}

function claimThread(db: string, agent: string, thread: string): { token: string; claim: any } {
  const claim = inboxOk(db, ['claim', '--agent', agent, '--thread', thread]);
  expect(claim.claimed).toBe(true);
  return { token: claim.lease.token as string, claim };
}

describe('JSON nesting: bounded at 64 levels wherever JSON comes in, and stored JSON never breaks a read (slow)', () => {
  it('a ~4,000-deep payload is refused with exit 2 naming the limit on every command that takes JSON, and nothing is written', () => {
    const { dir, db } = newDb();
    const thread = dispatched(db, 'w');
    const { token } = claimThread(db, 'w', thread);
    const other = inboxOk(db, ['send', '--to', 'w2', '--subject', 'another', '--body', 'b']).thread.id as string;
    const deep = deepObject(4000);
    expect(Buffer.byteLength(deep)).toBeGreaterThan(8000);
    const before = snapshot(db);
    const attempts: [string, 'inbox' | 'orch', string[]][] = [
      ['inbox send', 'inbox', ['send', '--to', 'w', '--subject', 's', '--body', 'b', '--payload-json', deep]],
      ['inbox send --thread', 'inbox', ['send', '--thread', other, '--body', 'b', '--payload-json', deep]],
      ['inbox progress', 'inbox', ['progress', '--thread', thread, '--lease', token, '--body', 'b', '--payload-json', deep]],
      ['inbox ask', 'inbox', ['ask', '--thread', thread, '--lease', token, '--body', 'b', '--payload-json', deep]],
      ['inbox result', 'inbox', ['result', '--thread', thread, '--lease', token, '--body', 'b', '--payload-json', deep]],
      ['inbox fail', 'inbox', ['fail', '--thread', thread, '--lease', token, '--body', 'b', '--payload-json', deep]],
      ['inbox reply', 'inbox', ['reply', '--thread', other, '--body', 'b', '--payload-json', deep]],
      ['orch task add --acceptance-json', 'orch', ['task', 'add', '--run', 'r', '--task', 'T2', '--title', 't', '--acceptance-json', deep]],
      ['orch answer --payload-json', 'orch', ['answer', '--run', 'r', '--task', 'T1', '--payload-json', deep]],
    ];
    for (const [name, which, args] of attempts) {
      const r = run(which, ['--db', db, '--json', ...args]);
      const error = expectJsonError(r, 2, 'VALIDATION', /64 levels/);
      expect(error.message, name).toMatch(/--(payload|acceptance)-json/);
      expect(snapshot(db), name).toEqual(before);
    }
    // A JSON file given to orch-worker-brief is bounded the same way.
    const file = path.join(dir, 'dispatch.json');
    fs.writeFileSync(file, `{"run": ${'['.repeat(4000)}${']'.repeat(4000)}}`);
    expectJsonError(run('brief', ['--db', db, '--json', '--dispatch-json', file]), 2, 'VALIDATION', /64 levels/);
    expect(snapshot(db)).toEqual(before);
    // 64 levels is still fine.
    expect(inboxOk(db, ['send', '--to', 'w', '--subject', 's', '--body', 'b', '--payload-json', deepObject(63)]).created).toBe(true);
  });

  it('rows an older version stored with deep nesting: claim, show, wait, status, blocked, task show, dispatch and the brief all answer, showing a marker', () => {
    const { dir, db } = newDb();
    const thread = dispatched(db, 'w');
    orchOk(db, ['task', 'add', '--run', 'r', '--task', 'T2', '--title', 'second', '--default-to', 'w', '--acceptance-json', '{"ok": true}']);
    const { token } = claimThread(db, 'w', thread);
    const question = inboxOk(db, ['ask', '--thread', thread, '--lease', token, '--body', 'which?', '--payload-json', '{"q": 1}']).message.id as number;
    orchOk(db, ['status', '--run', 'r']);
    // What a version without the bound let in: 20,000 levels (JSON.stringify(…, null, 2) overflows the stack).
    const deep = deepObject(20_000);
    rawSql(db, 'update inbox_messages set payload = ? where thread_id = ?', [deep, thread]);
    rawSql(db, "update orch_tasks set acceptance = ? where id = 'T2'", [deep.slice('{"deep":'.length, -1)]);
    rawSql(db, "update orch_events set data = ? where type = 'task_blocked'", [deep]);
    const marker = { unreadable_json: { reason: 'nests deeper than 64 levels', bytes: Buffer.byteLength(deep), raw: deep } };
    // The task message's payload (orch's brief and facts) may nest 72 levels (MAX_TASK_PAYLOAD_DEPTH).
    const taskMarker = { unreadable_json: { reason: 'nests deeper than 72 levels', bytes: Buffer.byteLength(deep), raw: deep } };

    const shown = inboxOk(db, ['show', '--thread', thread]);
    expect(shown.messages.map((m: { payload: unknown }) => m.payload)).toEqual([taskMarker, marker]);
    const text = run('inbox', ['--db', db, 'show', '--thread', thread]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('unreadable_json');
    expect(inboxOk(db, ['wait', '--thread', thread, '--after-message', '0', '--timeout-seconds', '0']).messages.at(-1).payload).toEqual(taskMarker); // the leader side's last: the task message

    const blocked = orchOk(db, ['blocked', '--run', 'r']);
    expect(blocked.tasks[0].question).toMatchObject({ message_id: question, payload: marker });
    expect(orchOk(db, ['status', '--run', 'r']).tasks.find((t: { id: string }) => t.id === 'T2').acceptance).toMatchObject({
      unreadable_json: { reason: 'nests deeper than 64 levels' },
    });
    expect(orchOk(db, ['task', 'show', '--run', 'r', '--task', 'T1']).attempts[0].latest_message.payload).toEqual(marker);
    const events = orchOk(db, ['wait', '--run', 'r', '--after-event', '0', '--timeout-seconds', '0']).events;
    expect(events.find((e: { type: string }) => e.type === 'task_blocked').data).toEqual(marker);

    // Dispatching the task with the deep acceptance carries the marker, not the nesting.
    const d = orchOk(db, ['dispatch', '--run', 'r', '--task', 'T2', '--execution-mode', 'analysis', '--body', 'go']);
    fs.writeFileSync(path.join(dir, 'd.json'), JSON.stringify(d));
    expect(run('brief', ['--db', db, '--dispatch-json', path.join(dir, 'd.json')]).code).toBe(0);
    const second = inboxOk(db, ['claim', '--agent', 'w', '--thread', d.attempt.thread_id]);
    expect(second.messages[0].payload.task.acceptance).toMatchObject({ unreadable_json: { reason: 'nests deeper than 64 levels' } });

    // The claim of the thread holding the deep rows answers too (its lease ran, nobody was stuck).
    rawSql(db, 'update inbox_threads set lease_expires_at = 1 where id = ?', [thread]);
    const reclaimed = inboxOk(db, ['claim', '--agent', 'w', '--thread', thread]);
    expect(reclaimed.messages.map((m: { payload: unknown }) => m.payload)).toEqual([taskMarker, marker]);
  });
});

describe('(slow) a large thread: what one answer carries is bounded, and JSON is written without one giant string', () => {
  it('90 notes of 1 MiB: claim returns the task and the newest notes, show pages through all of them, wait and text output answer', () => {
    const { dir, db } = newDb();
    const thread = inboxOk(db, ['send', '--to', 'w', '--subject', 'big', '--body', 'the task']).thread.id as string;
    // Control characters escape to six characters each in JSON: 90 of these are 540 M characters
    // of JSON, more than the longest string V8 can build.
    const body = path.join(dir, 'note.txt');
    const text1MiB = '\u0001'.repeat(1024 * 1024);
    fs.writeFileSync(body, text1MiB);
    const NOTES = 90;
    // The first and last notes through the CLI; the 88 between inserted as `send --thread` would
    // (90 processes of 1 MiB each would only make this slower on a shared machine).
    inboxOk(db, ['send', '--thread', thread, '--body-file', body]);
    for (let i = 0; i < NOTES - 2; i++) {
      rawSql(db, "insert into inbox_messages (thread_id, author, role, kind, body, payload, created_at) values (?, 'leader', 'leader', 'note', ?, null, ?)", [
        thread,
        text1MiB,
        Date.now(),
      ]);
    }
    inboxOk(db, ['send', '--thread', thread, '--body-file', body]);
    const all = rows<{ id: number }>(db, 'select id from inbox_messages where thread_id = ? order by id', thread).map((r) => r.id);
    expect(all).toHaveLength(NOTES + 1);

    const claim = inboxOk(db, ['claim', '--agent', 'w']);
    expect(claim.claimed).toBe(true);
    const ids = claim.messages.map((m: { id: number }) => m.id);
    // The task first, then the newest notes that fit 8 MiB: the newest is always there.
    expect(ids[0]).toBe(all[0]);
    expect(ids.at(-1)).toBe(all.at(-1));
    expect(ids.length).toBeGreaterThan(2);
    expect(ids.length).toBeLessThan(12);
    expect(ids.slice(1)).toEqual(all.slice(all.length - (ids.length - 1)));
    expect(claim.omitted).toEqual({ count: NOTES + 1 - ids.length, first_id: all[1], last_id: all[NOTES + 1 - ids.length] });
    expect(claim.messages[1].body).toBe('\u0001'.repeat(1024 * 1024));
    // The claim is usable: the lease it printed is live.
    inboxOk(db, ['heartbeat', '--thread', thread, '--lease', claim.lease.token]);

    // show pages oldest first, each page bounded and continuing where the last one ended.
    const page1 = inboxOk(db, ['show', '--thread', thread]);
    expect(page1.more).toBe(true);
    expect(page1.messages.map((m: { id: number }) => m.id)).toEqual(all.slice(0, page1.messages.length));
    expect(page1.messages.length).toBe(8); // the task and 7 notes: 8 notes would be 8 bytes over 8 MiB
    expect(page1.last_message_id).toBe(all[7]);
    const page2 = inboxOk(db, ['show', '--thread', thread, '--after-message', String(page1.last_message_id)]);
    expect(page2.messages.map((m: { id: number }) => m.id)).toEqual(all.slice(8, 16));
    const last = inboxOk(db, ['show', '--thread', thread, '--after-message', String(all.at(-4))]);
    expect(last).toMatchObject({ more: false, last_message_id: all.at(-1) });
    expect(last.messages.map((m: { id: number }) => m.id)).toEqual(all.slice(-3));
    const limited = inboxOk(db, ['show', '--thread', thread, '--limit', '2']);
    expect(limited).toMatchObject({ more: true, last_message_id: all[1] });
    expect(limited.messages.map((m: { id: number }) => m.id)).toEqual(all.slice(0, 2));

    // A wait from the task on returns the first notes and says more are left.
    const waited = inboxOk(db, ['wait', '--thread', thread, '--lease', claim.lease.token, '--after-message', String(all[0]), '--timeout-seconds', '0']);
    expect(waited.more).toBe(true);
    expect(waited.messages[0].id).toBe(all[1]);
    expect(waited.last_message_id).toBe(waited.messages.at(-1).id);

    // Text output is bounded the same way.
    const text = run('inbox', ['--db', db, 'show', '--thread', thread]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/more messages follow: inbox show --thread \S+ --after-message \d+/);
  }, 600_000);

  it('orch wait over 90 progress messages of 1 MiB (540 M characters of JSON) prints one whole document', () => {
    const { dir, db } = newDb();
    const thread = dispatched(db, 'w');
    claimThread(db, 'w', thread);
    // What a worker posting through the library can store (the command line caps --body at the OS's argument size).
    const body = '\u0001'.repeat(1024 * 1024);
    for (let i = 0; i < 90; i++) {
      rawSql(db, "insert into inbox_messages (thread_id, author, role, kind, body, payload, created_at) values (?, 'w', 'worker', 'progress', ?, null, ?)", [
        thread,
        body,
        Date.now(),
      ]);
    }
    const out = path.join(dir, 'events.json');
    const fd = fs.openSync(out, 'w');
    const r = spawnSync(outside().orch, ['--db', db, '--json', 'wait', '--run', 'r', '--after-event', '0', '--timeout-seconds', '0'], {
      stdio: ['ignore', fd, 'pipe'],
      env: outsideEnv(),
      encoding: 'utf8',
    });
    fs.closeSync(fd);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const written = fs.readFileSync(out);
    expect(written.length).toBeGreaterThan(2 ** 29);
    expect(written.subarray(0, 2).toString()).toBe('{\n');
    expect(written.subarray(-3).toString()).toBe('\n}\n');
    let progressEvents = 0;
    const needle = Buffer.from('"type": "task_progress"');
    for (let at = written.indexOf(needle); at >= 0; at = written.indexOf(needle, at + 1)) progressEvents += 1;
    expect(progressEvents).toBe(90);
  }, 600_000);
});

describe('stopping `inbox work` while its agent waits for an answer keeps the question (slow)', () => {
  it('SIGTERM to the runner: the thread stays blocked, orch blocked lists the question, answer works, the next claimer sees both', async () => {
    const { dir, db } = newDb();
    const thread = dispatched(db, 'w');
    const agent = path.join(dir, 'agent.cjs');
    fs.writeFileSync(
      agent,
      `const { execFileSync } = require('node:child_process');
const e = process.env;
const call = (args) => execFileSync(e.INBOX_BIN, ['--db', e.INBOX_DB, '--json', ...args, '--thread', e.INBOX_THREAD_ID, '--lease', e.INBOX_LEASE]);
call(['ask', '--body', 'Postgres or SQLite?']);
call(['wait', '--timeout-seconds', '600']);
`,
    );
    const runner = runAsync('inbox', ['--db', db, '--json', 'work', '--agent', 'w', '--once', '--', process.execPath, agent], { cwd: dir });
    // Wait (bounded) until the question is in, then stop the runner as a person would.
    let question: any;
    for (let i = 0; i < 600 && !question; i++) {
      question = orchOk(db, ['blocked', '--run', 'r']).tasks[0]?.question;
      if (!question) await new Promise((r) => setTimeout(r, 100));
    }
    expect(question).toMatchObject({ body: 'Postgres or SQLite?' });
    const pid = Number(
      (
        rows<{ payload: string }>(db, "select payload from inbox_messages where thread_id = ? and kind = 'progress' order by id limit 1", thread)[0] as {
          payload: string;
        }
      ).payload.match(/"pid":(\d+)/)?.[1],
    );
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGTERM');
    const stopped: CliRun = await runner;
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(JSON.parse(stopped.stdout).handled[0]).toMatchObject({ thread_id: thread, outcome: 'released' });

    expect(rows(db, 'select state, claimed_by, lease_token from inbox_threads where id = ?', thread)).toEqual([
      { state: 'blocked', claimed_by: null, lease_token: null },
    ]);
    const blocked = orchOk(db, ['blocked', '--run', 'r']);
    expect(blocked.tasks).toHaveLength(1);
    expect(blocked.tasks[0].question).toMatchObject({ message_id: question.message_id, body: 'Postgres or SQLite?' });
    expect(orchOk(db, ['status', '--run', 'r']).tasks[0].state).toBe('blocked');
    // Doctor sees nothing wrong with a blocked thread nobody holds.
    expect(inboxOk(db, ['doctor']).ok).toBe(true);

    const answer = orchOk(db, ['answer', '--run', 'r', '--task', 'T1', '--body', 'SQLite.']);
    expect(answer.message).toMatchObject({ kind: 'answer', role: 'leader' });
    expect(rows(db, 'select state from inbox_threads where id = ?', thread)).toEqual([{ state: 'open' }]);
    const next = inboxOk(db, ['claim', '--agent', 'w']);
    expect(next.thread).toMatchObject({ id: thread, state: 'claimed' });
    expect(next.messages.map((m: { kind: string }) => m.kind)).toEqual(expect.arrayContaining(['task', 'question', 'answer']));
    expect(orchOk(db, ['status', '--run', 'r']).tasks[0].state).toBe('running');
    expect(orchOk(db, ['doctor']).ok).toBe(true);
  });

  it('release of a blocked thread, claimed again before the answer: the new holder sees the question and its wait gets the answer', () => {
    const { db } = newDb();
    const thread = dispatched(db, 'w');
    const first = claimThread(db, 'w', thread);
    const asked = inboxOk(db, ['ask', '--thread', thread, '--lease', first.token, '--body', 'left or right?']);
    expect(inboxOk(db, ['release', '--thread', thread, '--lease', first.token]).thread.state).toBe('blocked');
    expectJsonError(run('inbox', ['--db', db, '--json', 'progress', '--thread', thread, '--lease', first.token, '--body', 'late']), 5, 'LEASE_LOST');
    expect(orchOk(db, ['blocked', '--run', 'r']).tasks[0].question.message_id).toBe(asked.message.id);

    const second = claimThread(db, 'w', thread);
    expect(second.claim.thread).toMatchObject({ state: 'blocked', claim_count: 2 });
    expect(second.claim.messages.map((m: { id: number }) => m.id)).toContain(asked.message.id);
    expect(orchOk(db, ['blocked', '--run', 'r']).tasks).toHaveLength(1);
    const answer = orchOk(db, ['answer', '--run', 'r', '--task', 'T1', '--body', 'left']);
    const waited = inboxOk(db, ['wait', '--thread', thread, '--lease', second.token, '--timeout-seconds', '30']);
    expect(waited.messages.map((m: { id: number }) => m.id)).toEqual([answer.message.id]);
    expect(waited.thread.state).toBe('claimed');
    inboxOk(db, ['result', '--thread', thread, '--lease', second.token, '--body', 'went left']);
    expect(orchOk(db, ['status', '--run', 'r']).tasks[0].state).toBe('done');
    expect(orchOk(db, ['doctor']).ok).toBe(true);
  });
});

describe('who wrote a message is its recorded role, never its author name (slow)', () => {
  it('an agent named `leader` gets the answer `orch answer` posts as `leader`', () => {
    const { db } = newDb();
    const thread = dispatched(db, 'leader');
    const { token } = claimThread(db, 'leader', thread);
    inboxOk(db, ['ask', '--thread', thread, '--lease', token, '--body', 'tabs or spaces?']);
    const answer = orchOk(db, ['answer', '--run', 'r', '--task', 'T1', '--body', 'spaces']);
    const waited = inboxOk(db, ['wait', '--thread', thread, '--lease', token, '--timeout-seconds', '5']);
    expect(waited.timed_out).toBe(false);
    expect(waited.messages.map((m: { id: number; author: string; role: string }) => [m.id, m.author, m.role])).toEqual([
      [answer.message.id, 'leader', 'leader'],
    ]);
    // The roles as recorded, shown by show (and in the text output).
    const shown = inboxOk(db, ['show', '--thread', thread]);
    expect(shown.messages.map((m: { kind: string; author: string; role: string }) => [m.kind, m.author, m.role])).toEqual([
      ['task', 'leader', 'leader'],
      ['question', 'leader', 'worker'],
      ['answer', 'leader', 'leader'],
    ]);
    expect(run('inbox', ['--db', db, 'show', '--thread', thread]).stdout).toMatch(/question from leader \(worker\)/);
    // The leader's side of the wait: it gets what the worker side wrote, though the names match.
    const progress = inboxOk(db, ['progress', '--thread', thread, '--lease', token, '--body', 'spaces it is']);
    const leaderWait = inboxOk(db, ['wait', '--thread', thread, '--as', 'leader', '--timeout-seconds', '5']);
    expect(leaderWait.messages.map((m: { id: number }) => m.id)).toEqual([progress.message.id]);
  });

  it('what `inbox work` posts for its command is `runner`; what the command posts under the lease is `worker`', () => {
    const { dir, db } = newDb();
    const thread = inboxOk(db, ['send', '--to', 'w', '--subject', 's', '--body', 'task']).thread.id as string;
    const agent = path.join(dir, 'agent.cjs');
    fs.writeFileSync(
      agent,
      `const { execFileSync } = require('node:child_process');
const e = process.env;
execFileSync(e.INBOX_BIN, ['--db', e.INBOX_DB, 'progress', '--thread', e.INBOX_THREAD_ID, '--lease', e.INBOX_LEASE, '--body', 'from the agent']);
console.log('all done');
`,
    );
    const r = run('inbox', ['--db', db, '--json', 'work', '--agent', 'w', '--once', '--', process.execPath, agent], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const roles = rows<{ kind: string; role: string; body: string }>(db, 'select kind, role, body from inbox_messages where thread_id = ? order by id', thread);
    expect(roles[0]).toMatchObject({ kind: 'task', role: 'leader' });
    expect(roles.find((m) => m.body === 'from the agent')).toMatchObject({ kind: 'progress', role: 'worker' });
    expect(roles.at(-1)).toMatchObject({ kind: 'result', role: 'runner' });
    expect(roles.filter((m) => m.role === 'runner').length).toBeGreaterThanOrEqual(2);
  });
});

describe('a lease holder’s wait returns what it has not been given yet (slow)', () => {
  it('ask, answer, then progress: a wait without --after-message still returns the answer', () => {
    const { db } = newDb();
    const thread = dispatched(db, 'w');
    const { token } = claimThread(db, 'w', thread);
    inboxOk(db, ['ask', '--thread', thread, '--lease', token, '--body', 'keep v1?']);
    const answer = orchOk(db, ['answer', '--run', 'r', '--task', 'T1', '--body', 'drop it']);
    // What `inbox work` does for an agent's last output line, or the worker itself.
    inboxOk(db, ['progress', '--thread', thread, '--lease', token, '--body', 'still thinking']);
    const waited = inboxOk(db, ['wait', '--thread', thread, '--lease', token, '--timeout-seconds', '5']);
    expect(waited.timed_out).toBe(false);
    expect(waited.messages.map((m: { id: number }) => m.id)).toEqual([answer.message.id]);
    // Delivered now: the next wait has nothing new.
    expect(inboxOk(db, ['wait', '--thread', thread, '--lease', token, '--timeout-seconds', '0'])).toMatchObject({ timed_out: true, messages: [] });
    // --after-message still overrides.
    expect(
      inboxOk(db, ['wait', '--thread', thread, '--lease', token, '--after-message', '0', '--timeout-seconds', '0']).messages.map((m: { id: number }) => m.id),
    ).toContain(answer.message.id);
    // A note the holder read with `show --lease` counts as given; one it did not read is returned.
    const note = inboxOk(db, ['send', '--thread', thread, '--body', 'one more thing']);
    const shown = inboxOk(db, ['show', '--thread', thread, '--lease', token, '--after-message', String(answer.message.id)]);
    expect(shown.messages.map((m: { id: number }) => m.id)).toContain(note.message.id);
    expect(inboxOk(db, ['wait', '--thread', thread, '--lease', token, '--timeout-seconds', '0']).timed_out).toBe(true);
    const later = inboxOk(db, ['send', '--thread', thread, '--body', 'and another']);
    expect(inboxOk(db, ['wait', '--thread', thread, '--lease', token, '--timeout-seconds', '5']).messages.map((m: { id: number }) => m.id)).toEqual([
      later.message.id,
    ]);
    // show --lease with a stale token is refused like every lease command.
    expectJsonError(run('inbox', ['--db', db, '--json', 'show', '--thread', thread, '--lease', 'ls_nope']), 5, 'LEASE_LOST');
  });

  it('a leased wait on a cancelled thread exits 5 with nothing on stdout, before or during the wait; without a lease it returns the state', async () => {
    const { db } = newDb();
    const thread = dispatched(db, 'w');
    const { token } = claimThread(db, 'w', thread);
    const waiting = runAsync('inbox', ['--db', db, '--json', 'wait', '--thread', thread, '--lease', token, '--timeout-seconds', '120']);
    // Cancel once the wait is under way (its heartbeat moved updated_at), bounded.
    const started = rows<{ updated_at: number }>(db, 'select updated_at from inbox_threads where id = ?', thread)[0]?.updated_at;
    for (let i = 0; i < 100; i++) {
      if (rows<{ updated_at: number }>(db, 'select updated_at from inbox_threads where id = ?', thread)[0]?.updated_at !== started) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    orchOk(db, ['cancel', '--run', 'r', '--task', 'T1', '--reason', 'not needed']);
    const during = await waiting;
    expectJsonError(during, 5, 'LEASE_LOST', /cancelled/);
    expectJsonError(run('inbox', ['--db', db, '--json', 'wait', '--thread', thread, '--lease', token, '--timeout-seconds', '5']), 5, 'LEASE_LOST', /cancelled/);
    const leader = inboxOk(db, ['wait', '--thread', thread, '--timeout-seconds', '5']);
    expect(leader).toMatchObject({ timed_out: false, thread: { state: 'cancelled' } });
  });
});
