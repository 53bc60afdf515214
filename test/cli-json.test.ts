import { describe, expect, it } from 'vitest';
import { inbox, rows, tempDir } from './helpers.ts';
import { freshDb } from './engine.ts';

/**
 * The --json output contract of the built CLI, walked through one full flow: every command exits
 * 0, prints exactly one JSON document on stdout and nothing on stderr, and says the right thing.
 * The same flow in text mode prints human text. Every command's --help documents its flags.
 */

/** Runs a command with --json and checks the success contract; returns the parsed document. */
function j(db: string, args: string[]): any {
  const r = inbox(['--db', db, '--json', ...args]);
  const label = `inbox --json ${args.join(' ')}`;
  expect(r.code, `${label}: ${r.stderr}`).toBe(0);
  expect(r.stderr, label).toBe('');
  expect(r.stdout.endsWith('\n'), label).toBe(true);
  // One JSON.parse over the whole of stdout: exactly one document, nothing before or after it.
  const doc: unknown = JSON.parse(r.stdout);
  expect(doc !== null && typeof doc === 'object' && !Array.isArray(doc), label).toBe(true);
  return doc;
}

/** Runs a command without --json; checks exit 0, empty stderr and non-empty, non-JSON text. */
function text(db: string, args: string[]): string {
  const r = inbox(['--db', db, ...args]);
  const label = `inbox ${args.join(' ')}`;
  expect(r.code, `${label}: ${r.stderr}`).toBe(0);
  expect(r.stderr, label).toBe('');
  expect(r.stdout.trim().length, label).toBeGreaterThan(0);
  expect(r.stdout.trimStart().startsWith('{'), `${label} printed JSON without --json`).toBe(false);
  return r.stdout;
}

const ids = (threads: { id: string }[]): string[] => threads.map((t) => t.id);
const kinds = (messages: { kind: string }[]): string[] => messages.map((m) => m.kind);
const secondsFromNow = (iso: string): number => (Date.parse(iso) - Date.now()) / 1000;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

function threadRow(db: string, id: string) {
  const [row] = rows<{ state: string; claimed_by: string | null; lease_token: string | null; lease_expires_at: number | null; claim_count: number }>(
    db,
    'select state, claimed_by, lease_token, lease_expires_at, claim_count from inbox_threads where id = ?',
    id,
  );
  return row;
}

describe('--json: one full flow (slow)', () => {
  it('every command exits 0 with exactly one JSON document and the right fields', () => {
    const db = freshDb(tempDir());

    // init, and init again (idempotent).
    const init = j(db, ['init']);
    expect(init.path).toBe(db);
    expect(init.schema_version).toEqual({ inbox: 4 });
    expect(init.applied).toEqual([
      { package: 'inbox', version: 1, name: expect.any(String) },
      { package: 'inbox', version: 2, name: expect.any(String) },
      { package: 'inbox', version: 3, name: expect.any(String) },
      { package: 'inbox', version: 4, name: expect.any(String) },
    ]);
    expect(j(db, ['init']).applied).toEqual([]);

    // send: three threads for w1, one for w2.
    const s1 = j(db, ['send', '--to', 'w1', '--subject', 'first task', '--body', 'do A', '--payload-json', '{"priority": 1}']);
    expect(s1.created).toBe(true);
    expect(s1.thread).toMatchObject({
      subject: 'first task',
      assigned_to: 'w1',
      created_by: 'leader',
      state: 'open',
      claimed_by: null,
      claim_count: 0,
      lease_expires_at: null,
    });
    expect(s1.thread.id).toMatch(/^th_/);
    expect(s1.thread.created_at).toMatch(ISO);
    expect(s1.message).toMatchObject({ thread_id: s1.thread.id, author: 'leader', kind: 'task', body: 'do A', payload: { priority: 1 } });
    const t1 = s1.thread.id as string;
    const t2 = j(db, ['send', '--to', 'w1', '--subject', 'second task', '--body', 'do B']).thread.id as string;
    const t3 = j(db, ['send', '--to', 'w1', '--subject', 'third task', '--body', 'do C', '--from', 'boss']).thread.id as string;
    const t4 = j(db, ['send', '--to', 'w2', '--subject', 'for w2', '--body', 'do D']).thread.id as string;
    expect(new Set([t1, t2, t3, t4]).size).toBe(4);

    // list: newest first; --agent filters.
    const all = j(db, ['list']);
    expect(ids(all.threads)).toEqual([t4, t3, t2, t1]);
    expect(all.threads[1]).toMatchObject({ id: t3, created_by: 'boss', state: 'open' });
    expect(ids(j(db, ['list', '--agent', 'w2']).threads)).toEqual([t4]);
    expect(ids(j(db, ['list', '--limit', '2']).threads)).toEqual([t4, t3]);

    // send --thread: a note on an existing thread.
    const note = j(db, ['send', '--thread', t1, '--body', 'one more detail']);
    expect(note.created).toBe(false);
    expect(note.thread.id).toBe(t1);
    expect(note.message).toMatchObject({ thread_id: t1, kind: 'note', body: 'one more detail', payload: null });

    // show.
    const shown = j(db, ['show', '--thread', t1]);
    expect(shown.thread).toMatchObject({ id: t1, state: 'open' });
    expect(kinds(shown.messages)).toEqual(['task', 'note']);

    // claim: the oldest open thread of w1.
    const claim = j(db, ['claim', '--agent', 'w1']);
    expect(claim.claimed).toBe(true);
    expect(claim.thread).toMatchObject({ id: t1, state: 'claimed', claimed_by: 'w1', claim_count: 1, lease_expired: false });
    expect(claim.lease.token).toMatch(/^ls_[A-Za-z0-9]+$/);
    expect(claim.lease.expires_at).toMatch(ISO);
    expect(claim.lease.seconds).toBe(900);
    expect(secondsFromNow(claim.lease.expires_at)).toBeGreaterThan(890);
    expect(secondsFromNow(claim.lease.expires_at)).toBeLessThanOrEqual(900);
    expect(claim.thread.lease_expires_at).toBe(claim.lease.expires_at);
    expect(Array.isArray(claim.messages)).toBe(true);
    expect(kinds(claim.messages)).toEqual(['task', 'note']);
    expect(claim.messages[0]).toMatchObject({ body: 'do A', payload: { priority: 1 } });
    const lease = claim.lease.token as string;
    expect(threadRow(db, t1)).toMatchObject({ state: 'claimed', claimed_by: 'w1', lease_token: lease, claim_count: 1 });

    // list --state filters.
    expect(ids(j(db, ['list', '--state', 'open']).threads)).toEqual([t4, t3, t2]);
    expect(ids(j(db, ['list', '--state', 'open', '--agent', 'w1']).threads)).toEqual([t3, t2]);
    expect(ids(j(db, ['list', '--state', 'claimed']).threads)).toEqual([t1]);

    // heartbeat: same token, new length.
    const beat = j(db, ['heartbeat', '--thread', t1, '--lease', lease, '--lease-seconds', '600']);
    expect(beat.thread).toMatchObject({ id: t1, state: 'claimed' });
    expect(beat.lease.token).toBe(lease);
    expect(beat.lease.seconds).toBe(600);
    expect(secondsFromNow(beat.lease.expires_at)).toBeGreaterThan(590);
    expect(secondsFromNow(beat.lease.expires_at)).toBeLessThanOrEqual(600);

    // progress: a message by the claimer; the lease is extended by its (new) length.
    const prog = j(db, ['progress', '--thread', t1, '--lease', lease, '--body', 'half way', '--payload-json', '{"files": 3}']);
    expect(prog.message).toMatchObject({ thread_id: t1, author: 'w1', role: 'worker', kind: 'progress', body: 'half way', payload: { files: 3 } });
    expect(prog.thread.state).toBe('claimed');
    expect(prog.lease).toMatchObject({ token: lease, seconds: 600 });

    // ask: blocked.
    const asked = j(db, ['ask', '--thread', t1, '--lease', lease, '--body', 'Keep the v1 API?']);
    expect(asked.thread.state).toBe('blocked');
    expect(asked.message).toMatchObject({ kind: 'question', author: 'w1', body: 'Keep the v1 API?' });
    expect(asked.lease.token).toBe(lease);
    expect(threadRow(db, t1)?.state).toBe('blocked');

    // reply: back to claimed.
    const answer = j(db, ['reply', '--thread', t1, '--body', 'Drop it.', '--payload-json', '{"decision": "drop"}']);
    expect(answer.created).toBe(false);
    expect(answer.thread).toMatchObject({ id: t1, state: 'claimed', claimed_by: 'w1' });
    expect(answer.message).toMatchObject({ kind: 'answer', author: 'leader', role: 'leader', body: 'Drop it.', payload: { decision: 'drop' } });
    expect(answer.message.id).toBeGreaterThan(asked.message.id);
    expect(threadRow(db, t1)).toMatchObject({ state: 'claimed', lease_token: lease });

    // wait: the answer already arrived, so it returns at once.
    const started = Date.now();
    const waited = j(db, ['wait', '--thread', t1, '--lease', lease, '--timeout-seconds', '30']);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(waited.timed_out).toBe(false);
    expect(waited.messages.map((m: { id: number }) => m.id)).toEqual([answer.message.id]);
    expect(waited.messages[0]).toMatchObject({ kind: 'answer', body: 'Drop it.' });
    expect(waited.last_message_id).toBe(answer.message.id);
    expect(waited.thread).toMatchObject({ id: t1, state: 'claimed' });

    // show --after-message: only later messages.
    const later = j(db, ['show', '--thread', t1, '--after-message', String(prog.message.id)]);
    expect(later.messages.map((m: { id: number }) => m.id)).toEqual([asked.message.id, answer.message.id]);
    expect(later).toMatchObject({ more: false, last_message_id: answer.message.id });
    expect(kinds(later.messages)).toEqual(['question', 'answer']);
    expect(j(db, ['show', '--thread', t1, '--after-message', String(answer.message.id)]).messages).toEqual([]);

    // result: done, the lease ends.
    const result = j(db, ['result', '--thread', t1, '--lease', lease, '--body', 'Dropped v1.', '--payload-json', '{"tests_fixed": 4}']);
    expect(result.thread).toMatchObject({ id: t1, state: 'done', lease_expires_at: null });
    expect(result.message).toMatchObject({ kind: 'result', author: 'w1', payload: { tests_fixed: 4 } });
    expect(result).not.toHaveProperty('lease');
    expect(threadRow(db, t1)).toMatchObject({ state: 'done', lease_token: null, lease_expires_at: null, claim_count: 1 });
    expect(rows<{ kind: string; author: string }>(db, 'select kind, author from inbox_messages where thread_id = ? order by id', t1)).toEqual([
      { kind: 'task', author: 'leader' },
      { kind: 'note', author: 'leader' },
      { kind: 'progress', author: 'w1' },
      { kind: 'question', author: 'w1' },
      { kind: 'answer', author: 'leader' },
      { kind: 'result', author: 'w1' },
    ]);
    expect(rows(db, 'select payload from inbox_messages where id = ?', result.message.id)).toEqual([{ payload: '{"tests_fixed":4}' }]);

    // A second thread: fail.
    const claim2 = j(db, ['claim', '--agent', 'w1']);
    expect(claim2.claimed).toBe(true);
    expect(claim2.thread.id).toBe(t2);
    expect(claim2.lease.token).not.toBe(lease);
    const failed = j(db, ['fail', '--thread', t2, '--lease', claim2.lease.token, '--body', 'The branch does not build.']);
    expect(failed.thread).toMatchObject({ id: t2, state: 'failed' });
    expect(failed.message).toMatchObject({ kind: 'failure', body: 'The branch does not build.' });
    expect(failed).not.toHaveProperty('lease');
    expect(threadRow(db, t2)).toMatchObject({ state: 'failed', lease_token: null });

    // A third thread: wait times out, nothing else is claimable, then release.
    const claim3 = j(db, ['claim', '--agent', 'w1', '--lease-seconds', '120']);
    expect(claim3.thread.id).toBe(t3);
    expect(claim3.lease.seconds).toBe(120);
    const lastId = claim3.messages.at(-1).id as number;
    const timeout = j(db, ['wait', '--thread', t3, '--after-message', String(lastId), '--timeout-seconds', '0']);
    expect(timeout.timed_out).toBe(true);
    expect(timeout.messages).toEqual([]);
    expect(timeout.last_message_id).toBe(lastId);
    expect(timeout.thread).toMatchObject({ id: t3, state: 'claimed' });

    const nothing = j(db, ['claim', '--agent', 'w1']);
    expect(nothing.claimed).toBe(false);
    expect(nothing).toMatchObject({ agent: 'w1', thread_id: null, reason: expect.stringContaining('w1') });
    expect(nothing).not.toHaveProperty('lease');

    const released = j(db, ['release', '--thread', t3, '--lease', claim3.lease.token]);
    expect(released.thread).toMatchObject({ id: t3, state: 'open', claimed_by: null, lease_expires_at: null, claim_count: 1 });
    expect(threadRow(db, t3)).toEqual({ state: 'open', claimed_by: null, lease_token: null, lease_expires_at: null, claim_count: 1 });

    // The end state, newest first.
    expect(ids(j(db, ['list', '--state', 'open']).threads)).toEqual([t4, t3]);
    expect(j(db, ['list']).threads.map((t: { id: string; state: string }) => [t.id, t.state])).toEqual([
      [t4, 'open'],
      [t3, 'open'],
      [t2, 'failed'],
      [t1, 'done'],
    ]);
    expect(rows(db, 'select kind from inbox_messages where thread_id = ? order by id', t2)).toEqual([{ kind: 'task' }, { kind: 'failure' }]);
  });

  it('--json works after the command too (it is a global flag)', () => {
    const db = freshDb(tempDir());
    expect(inbox(['--db', db, 'init']).code).toBe(0);
    const r = inbox(['--db', db, 'claim', '--agent', 'w1', '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ claimed: false, agent: 'w1' });
  });

  it('--json=true is honoured like --json (or refused), never answered with text', () => {
    const db = freshDb(tempDir());
    expect(inbox(['--db', db, 'init']).code).toBe(0);
    const r = inbox(['--db', db, '--json=true', 'list']);
    if (r.code === 0) {
      expect(() => JSON.parse(r.stdout), `stdout was: ${r.stdout}`).not.toThrow();
      expect(JSON.parse(r.stdout)).toEqual({ threads: [] });
    } else {
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
    }
  });
});

describe('without --json: human text (slow)', () => {
  it('every command in the same flow exits 0 and prints non-empty text', () => {
    const db = freshDb(tempDir());
    const out = (args: string[]) => text(db, args);
    const match = (s: string, re: RegExp): string => {
      const m = re.exec(s);
      expect(m, `${re} in ${s}`).not.toBeNull();
      return m![1]!;
    };

    expect(out(['init'])).toMatch(/schema inbox v4; applied inbox 1 .*, inbox 2 .*, inbox 3 .*, inbox 4 /);
    expect(out(['init'])).toMatch(/already up to date/);

    const sent = out(['send', '--to', 'w1', '--subject', 'first task', '--body', 'do A']);
    const t1 = match(sent, /^opened thread (th_\w+) \(message #\d+\)/);
    expect(sent).toContain('first task');
    const t2 = match(out(['send', '--to', 'w1', '--subject', 'second task', '--body', 'do B']), /^opened thread (th_\w+)/);
    const t3 = match(out(['send', '--to', 'w1', '--subject', 'third task', '--body', 'do C']), /^opened thread (th_\w+)/);
    expect(out(['send', '--thread', t1, '--body', 'more'])).toMatch(new RegExp(`^added message to thread ${t1}`));

    const listed = out(['list']).trimEnd().split('\n');
    expect(listed[0]).toMatch(/^THREAD\s+STATE\s+ASSIGNED/);
    expect(listed.slice(1).map((l) => l.split(/\s+/)[0])).toEqual([t3, t2, t1]);

    const shown = out(['show', '--thread', t1]);
    expect(shown).toContain(`thread ${t1}: first task`);
    expect(shown).toMatch(/#\d+ task from leader/);
    expect(shown).toMatch(/#\d+ note from leader/);

    const claimed = out(['claim', '--agent', 'w1']);
    expect(claimed).toMatch(new RegExp(`^claimed thread ${t1}`));
    const lease = match(claimed, /lease token (ls_\w+) \(expires /);

    expect(out(['heartbeat', '--thread', t1, '--lease', lease])).toMatch(new RegExp(`lease on thread ${t1} extended until \\d{4}-`));
    const prog = out(['progress', '--thread', t1, '--lease', lease, '--body', 'half way']);
    expect(prog).toMatch(new RegExp(`^progress #(\\d+) posted on thread ${t1}`));
    const progId = match(prog, /^progress #(\d+)/);
    expect(out(['ask', '--thread', t1, '--lease', lease, '--body', 'Keep v1?'])).toMatch(/^question #\d+ posted; thread .* is blocked/);
    expect(out(['reply', '--thread', t1, '--body', 'Drop it.'])).toMatch(new RegExp(`^answer #\\d+ posted on thread ${t1} \\(now claimed\\)`));
    const waited = out(['wait', '--thread', t1, '--lease', lease, '--timeout-seconds', '30']);
    expect(waited).toMatch(/#\d+ answer from leader/);
    expect(waited).toContain('Drop it.');
    const later = out(['show', '--thread', t1, '--after-message', progId]);
    expect(later).toContain('Keep v1?');
    expect(later).not.toContain('half way');
    expect(out(['result', '--thread', t1, '--lease', lease, '--body', 'Done.'])).toMatch(new RegExp(`^result #\\d+ posted; thread ${t1} is done`));

    const lease2 = match(out(['claim', '--agent', 'w1']), /lease token (ls_\w+)/);
    expect(out(['fail', '--thread', t2, '--lease', lease2, '--body', 'No.'])).toMatch(new RegExp(`^failure #\\d+ posted; thread ${t2} is failed`));

    const claim3 = out(['claim', '--agent', 'w1']);
    expect(claim3).toMatch(new RegExp(`^claimed thread ${t3}`));
    const lease3 = match(claim3, /lease token (ls_\w+)/);
    const lastId = match(claim3, /#(\d+) task from leader/);
    expect(out(['wait', '--thread', t3, '--after-message', lastId, '--timeout-seconds', '0'])).toMatch(/^timed out; nothing new on thread/);
    expect(out(['claim', '--agent', 'w1'])).toMatch(/^nothing claimed: no open thread is assigned to w1/);
    expect(out(['release', '--thread', t3, '--lease', lease3])).toMatch(new RegExp(`^released thread ${t3}; it is open again`));
    expect(out(['list', '--state', 'open'])).toContain(t3);

    expect(rows(db, 'select id, state from inbox_threads order by seq')).toEqual([
      { id: t1, state: 'done' },
      { id: t2, state: 'failed' },
      { id: t3, state: 'open' },
    ]);
  });
});

describe('--help (slow)', () => {
  const commands: [string, string[]][] = [
    ['init', []],
    ['send', ['--to', '--subject', '--body', '--body-file', '--from', '--thread', '--payload-json']],
    ['list', ['--agent', '--state', '--limit']],
    ['show', ['--thread', '--after-message']],
    ['claim', ['--agent', '--thread', '--lease-seconds', '--wait-seconds']],
    ['heartbeat', ['--thread', '--lease', '--lease-seconds']],
    ['progress', ['--thread', '--lease', '--body', '--payload-json']],
    ['ask', ['--thread', '--lease', '--body', '--payload-json']],
    ['reply', ['--thread', '--body', '--from', '--payload-json']],
    ['wait', ['--thread', '--after-message', '--agent', '--timeout-seconds', '--lease']],
    ['result', ['--thread', '--lease', '--body', '--body-file', '--payload-json']],
    ['fail', ['--thread', '--lease', '--body', '--payload-json']],
    ['release', ['--thread', '--lease']],
  ];

  it.each(commands)('%s --help exits 0 and lists its flags', (command, flags) => {
    const r = inbox([command, '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`inbox ${command}`);
    for (const flag of [...flags, '--db', '--json']) {
      expect(r.stdout, `${command} --help should mention ${flag}`).toMatch(new RegExp(`\\s${flag}\\s`));
    }
  });

  it('help as a last word, -h and --help print the same help; every help lists --version and --help', () => {
    const top = inbox(['--help']);
    for (const args of [['help'], ['-h'], ['--db', 'x.db', 'help']]) {
      const r = inbox(args);
      expect({ args, code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ args, code: 0, stdout: top.stdout, stderr: '' });
    }
    const list = inbox(['list', '--help']);
    expect(inbox(['list', 'help']).stdout).toBe(list.stdout);
    for (const out of [top.stdout, list.stdout]) {
      expect(out).toMatch(/--version\s+Show version number/);
      expect(out).toMatch(/-h, --help\s+Show help/);
    }
  });

  it('the top-level --help lists every command and the exit codes', () => {
    const r = inbox(['--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    for (const [command] of commands) expect(r.stdout).toMatch(new RegExp(`inbox ${command}\\s`));
    expect(r.stdout).toMatch(/Exit codes: 0 ok/);
  });
});
