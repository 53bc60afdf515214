import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectJsonError, rows, snapshot, tempDir, type CliRun } from './helpers.ts';
import { outside, outsideEnv, run, runAsync } from './outside.ts';
import { shellWord } from '@orch/store';
import { freshDb, onPostgres, sqliteOnly } from './engine.ts';

/**
 * Attacks on the store's promises from outside, through the skill executables copied out of the
 * repository: hard links to the database, output that cannot be written, the wall clock set back,
 * and hostile text on the leader's terminal.
 */

function ok<T = any>(r: CliRun): T {
  expect(r.code, `stdout=${r.stdout} stderr=${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
}

function newDb(): { dir: string; db: string } {
  const dir = tempDir('adv-store-');
  const db = freshDb(dir);
  ok(run('inbox', ['--db', db, '--json', 'init']));
  return { dir, db };
}

/** Runs a copied executable with stdout going to `stdout` (a file descriptor) and stderr captured. */
function runTo(which: 'inbox' | 'orch', args: string[], stdout: number | 'ignore', stderr: number | 'pipe' = 'pipe'): CliRun {
  const r = spawnSync(outside()[which], args, {
    cwd: outside().dir,
    encoding: 'utf8',
    env: outsideEnv(),
    stdio: ['ignore', stdout, stderr],
    timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: '', stderr: r.stderr ?? '' };
}

/** Runs with stdout to /dev/full (every write fails with ENOSPC). */
function toFull(which: 'inbox' | 'orch', args: string[], options: { stderrToo?: boolean } = {}): CliRun {
  const full = fs.openSync('/dev/full', 'w');
  try {
    return runTo(which, args, full, options.stderrToo ? full : 'pipe');
  } finally {
    fs.closeSync(full);
  }
}

/**
 * Runs with stdout a pipe whose reader goes away: at once (`readBytes` 0), or after the first
 * `readBytes` bytes arrived. Resolves when the process exits (killed after 60 s: a hang fails).
 */
function toClosedPipe(which: 'inbox' | 'orch', args: string[], readBytes = 0): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(outside()[which], args, { cwd: outside().dir, env: outsideEnv(), stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    let got = 0;
    if (readBytes === 0) child.stdout.destroy();
    else
      child.stdout.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= readBytes) child.stdout.destroy();
      });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: '', stderr }));
  });
}

/** The error of a --json command whose output failed: exit 7, one JSON line on stderr. */
function outputFailed(r: CliRun): { message: string; details: { committed: boolean; see?: string; cause: string | null } } {
  return expectJsonError(r, 7, 'OUTPUT_FAILED') as { message: string; details: { committed: boolean; see?: string; cause: string | null } };
}

/** Runs the command line an OUTPUT_FAILED error quotes (`inbox --db PATH show --thread ID`). */
function runSee(see: string): CliRun {
  // The hint is a shell line: a word may be single-quoted (a URL holds `?`).
  const words = see.split(' ').map((w) => w.replace(/^'(.*)'$/, '$1'));
  const program = words.shift() as 'inbox' | 'orch';
  return run(program, ['--json', ...words]);
}

sqliteOnly.describe('hard links and symbolic links are about the database file', 'hard links to the database (slow)', () => {
  it('a database file with a second hard link is refused by every command (exit 6, DB_HARD_LINKED) and left unchanged', () => {
    const { dir, db } = newDb();
    ok(run('inbox', ['--db', db, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b']));
    const other = path.join(dir, 'other.db');
    fs.linkSync(db, other);
    const before = snapshot(db);
    for (const name of [db, other]) {
      const e = expectJsonError(run('inbox', ['--db', name, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b']), 6, 'DB_HARD_LINKED');
      expect(e.message).toMatch(/2 hard links/);
      expect(e.message).toMatch(/symbolic link/);
      expectJsonError(run('inbox', ['--db', name, '--json', 'list']), 6, 'DB_HARD_LINKED');
      expectJsonError(run('inbox', ['--db', name, '--json', 'init']), 6, 'DB_HARD_LINKED');
      expectJsonError(run('orch', ['--db', name, '--json', 'run', 'init', '--run', 'r1', '--goal', 'g']), 6, 'DB_HARD_LINKED');
    }
    const text = run('inbox', ['--db', other, 'list']);
    expect(text.code).toBe(6);
    expect(text.stderr).toMatch(/^inbox: .*hard links/);
    expect(snapshot(db)).toEqual(before);
    // Removing the second name makes the database usable again.
    fs.rmSync(other);
    expect(ok(run('inbox', ['--db', db, '--json', 'list'])).threads).toHaveLength(1);
  });

  it('both doctors report a hard-linked database as an error (exit 4) and repair nothing through it', () => {
    const { dir, db } = newDb();
    fs.linkSync(db, path.join(dir, 'again.db'));
    const before = snapshot(db);
    for (const program of ['inbox', 'orch'] as const) {
      for (const args of [[], ['--repair']]) {
        const r = run(program, ['--db', db, '--json', 'doctor', ...args]);
        expect(r.code, r.stderr).toBe(4);
        const report = JSON.parse(r.stdout) as { ok: boolean; problems: { kind: string; severity: string; repaired: boolean }[] };
        expect(report.ok).toBe(false);
        expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'db_hard_linked', severity: 'error', repaired: false }));
      }
      const text = run(program, ['--db', db, 'doctor']);
      expect(text.code).toBe(4);
      expect(text.stdout).toMatch(/ERROR +db_hard_linked: .*hard links/);
    }
    expect(snapshot(db)).toEqual(before);
  });

  it('writes through two hard-linked names in parallel: no send is acknowledged and then lost', async () => {
    const { dir, db } = newDb();
    const other = path.join(dir, 'other.db');
    fs.linkSync(db, other);
    const sends = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        runAsync('inbox', ['--db', i % 2 === 0 ? db : other, '--json', 'send', '--to', 'w', '--subject', `s${i}`, '--body', 'b']),
      ),
    );
    const acknowledged = sends.filter((r) => r.code === 0).map((r) => (JSON.parse(r.stdout) as { thread: { id: string } }).thread.id);
    for (const r of sends.filter((s) => s.code !== 0)) expectJsonError(r, 6, 'DB_HARD_LINKED');
    fs.rmSync(other);
    const stored = rows<{ id: string }>(db, 'select id from inbox_threads').map((t) => t.id);
    for (const id of acknowledged) expect(stored).toContain(id);
  });

  it('a symbolic link keeps working: 40 parallel sends through the real name and a link are all kept', async () => {
    const { dir, db } = newDb();
    const link = path.join(dir, 'link.db');
    fs.symlinkSync(db, link);
    const sends = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        runAsync('inbox', ['--db', i % 2 === 0 ? db : link, '--json', 'send', '--to', 'w', '--subject', `s${i}`, '--body', 'b']),
      ),
    );
    const ids = sends.map((r) => (ok(r) as { thread: { id: string } }).thread.id);
    expect(ok(run('inbox', ['--db', link, '--json', 'doctor'])).ok).toBe(true);
    const stored = rows<{ id: string }>(db, 'select id from inbox_threads').map((t) => t.id);
    expect(stored.sort()).toEqual([...ids].sort());
  });
});

describe('output that cannot be written (slow)', () => {
  it('send --json to /dev/full: exit 7, one JSON line saying it was committed and how to see it; the thread exists once', () => {
    const { db } = newDb();
    const r = toFull('inbox', ['--db', db, '--json', 'send', '--to', 'w', '--subject', 'only once', '--body', 'b']);
    const e = outputFailed(r);
    expect(e.message).toMatch(/committed/);
    expect(e.message).toMatch(/do not run it again/);
    expect(e.details).toMatchObject({ committed: true, cause: 'ENOSPC' });
    const threads = rows<{ id: string; subject: string }>(db, 'select id, subject from inbox_threads');
    expect(threads).toEqual([{ id: expect.any(String), subject: 'only once' }]);
    expect(e.details.see).toBe(`inbox --db ${shellWord(db)} show --thread ${threads[0]?.id}`);
    expect(ok(runSee(e.details.see ?? '')).thread.subject).toBe('only once');
  });

  it('text mode: one clean line on stderr, no stack', () => {
    const { db } = newDb();
    const r = toFull('inbox', ['--db', db, 'send', '--to', 'w', '--subject', 's', '--body', 'b']);
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(
      /^inbox: `inbox send` succeeded and its change is committed, but its output could not be written: ENOSPC.*show --thread th_\w+`\n$/,
    );
    expect(rows(db, 'select id from inbox_threads')).toHaveLength(1);
  });

  it('a worker post to /dev/full says which message to look at', () => {
    const { db } = newDb();
    const thread = ok(run('inbox', ['--db', db, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b'])).thread.id as string;
    const lease = ok(run('inbox', ['--db', db, '--json', 'claim', '--agent', 'w'])).lease.token as string;
    const e = outputFailed(toFull('inbox', ['--db', db, '--json', 'progress', '--thread', thread, '--lease', lease, '--body', 'half way']));
    const seen = ok(runSee(e.details.see ?? ''));
    expect(seen.messages.map((m: { body: string }) => m.body)).toEqual(['half way']);
  });

  it('a read-only command to /dev/full: exit 7, committed false, safe to run again', () => {
    const { db } = newDb();
    const e = outputFailed(toFull('inbox', ['--db', db, '--json', 'list']));
    expect(e.details.committed).toBe(false);
    expect(e.message).toMatch(/safe to run again/);
  });

  it('stdout and stderr both unwritable: exit 7, no crash', () => {
    const { db } = newDb();
    const r = toFull('inbox', ['--db', db, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b'], { stderrToo: true });
    expect(r.code).toBe(7);
    expect(rows(db, 'select id from inbox_threads')).toHaveLength(1);
  });

  it('--help to /dev/full is exit 7 too', () => {
    const r = toFull('orch', ['--help']);
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/^orch: its output could not be written/);
  });

  it('a closed pipe (EPIPE): orch run init and inbox send exit 7 with the change committed once', async () => {
    const { db } = newDb();
    const r = await toClosedPipe('orch', ['--db', db, '--json', 'run', 'init', '--run', 'r1', '--goal', 'g']);
    const e = outputFailed(r);
    expect(e.details).toMatchObject({ committed: true, cause: 'EPIPE', see: `orch --db ${shellWord(db)} run show --run r1` });
    expect(ok(runSee(e.details.see ?? '')).run.id).toBe('r1');
    expect(rows(db, 'select id from orch_runs')).toEqual([{ id: 'r1' }]);

    const s = outputFailed(await toClosedPipe('inbox', ['--db', db, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b']));
    expect(s.message).toMatch(/the reader closed the pipe/);
    expect(rows(db, 'select id from inbox_threads')).toHaveLength(1);
  });

  it('a reader that stops after the first bytes of a large output: exit 7, no hang', async () => {
    const { dir, db } = newDb();
    const body = path.join(dir, 'body.txt');
    fs.writeFileSync(body, 'x'.repeat(1024 * 1024));
    const thread = ok(run('inbox', ['--db', db, '--json', 'send', '--to', 'w', '--subject', 's', '--body-file', body])).thread.id as string;
    const r = await toClosedPipe('inbox', ['--db', db, 'show', '--thread', thread], 1);
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(
      /^inbox: `inbox show` finished but its output could not be written: the reader closed the pipe \(EPIPE\); it is safe to run again\n$/,
    );
  });
});

/** libfaketime, when installed: it shifts the wall clock of a process (Date.now) but not its monotonic clock. */
const FAKETIME = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
].find((f) => fs.existsSync(f));

/** The wall clock runs normally for `afterSeconds`, then jumps back an hour; the monotonic clock is untouched. */
function clockSetBack(afterSeconds: number): Record<string, string> {
  return {
    LD_PRELOAD: FAKETIME ?? '',
    FAKETIME: '-1h',
    FAKETIME_START_AFTER_SECONDS: String(afterSeconds),
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  };
}

describe.skipIf(FAKETIME === undefined)('the wall clock set back an hour during a timed wait (libfaketime) (slow)', () => {
  it('libfaketime steps the wall clock of a Node process and leaves its monotonic clock alone', () => {
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        'const w = Date.now(), m = performance.now(); setTimeout(() => console.log(JSON.stringify({ wall: Date.now() - w, mono: performance.now() - m })), 1500)',
      ],
      { encoding: 'utf8', env: { ...outsideEnv(), ...clockSetBack(1) } },
    );
    const { wall, mono } = JSON.parse(r.stdout) as { wall: number; mono: number };
    expect(wall).toBeLessThan(-3_000_000);
    expect(mono).toBeGreaterThanOrEqual(1400);
  });

  it('inbox wait, orch wait and inbox claim --wait-seconds still time out on time', async () => {
    const { db } = newDb();
    ok(run('orch', ['--db', db, '--json', 'run', 'init', '--run', 'r1', '--goal', 'g']));
    const thread = ok(run('inbox', ['--db', db, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b'])).thread.id as string;
    const env = clockSetBack(2);
    // Each is killed after 60 s if it hangs (it would wait an hour): then its exit code is not 0.
    const guard = { env, timeout: 60_000 };
    const [inboxWait, orchWait, claimWait] = await Promise.all([
      runAsync('inbox', ['--db', db, '--json', 'wait', '--thread', thread, '--timeout-seconds', '4'], guard),
      runAsync('orch', ['--db', db, '--json', 'wait', '--run', 'r1', '--for', 'task_done', '--after-event', '1', '--timeout-seconds', '4'], guard),
      runAsync('inbox', ['--db', db, '--json', 'claim', '--agent', 'nobody', '--wait-seconds', '4'], guard),
    ]);
    expect(ok(inboxWait).timed_out).toBe(true);
    expect(ok(orchWait).timed_out).toBe(true);
    expect(ok(claimWait).claimed).toBe(false);
  });
});

// Across machines the database server's clock judges leases: a worker whose clock is off by minutes
// neither takes a live lease nor keeps one that ran out, and loses none early. (On SQLite every
// client is on one machine and its clock judges: see the runner's clock-jump test.)
describe.skipIf(FAKETIME === undefined || !onPostgres)('leases under a client clock 10 minutes off (PostgreSQL: the server clock judges) (slow)', () => {
  const skewed = (offset: string): Record<string, string> => ({ LD_PRELOAD: FAKETIME ?? '', FAKETIME: offset, FAKETIME_DONT_FAKE_MONOTONIC: '1' });
  const leaseOf = (db: string, thread: string) =>
    rows(db, 'select state, claimed_by, lease_token, lease_expires_at, claim_count from inbox_threads where id = ?', thread);

  it('a client 10 minutes ahead cannot take a live lease, and a holder 10 minutes ahead keeps its own', () => {
    const { db } = newDb();
    const thread = ok(run('inbox', ['--db', db, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b'])).thread.id as string;
    const held = ok(run('inbox', ['--db', db, '--json', 'claim', '--agent', 'w', '--lease-seconds', '300'])).lease.token as string;
    const before = leaseOf(db, thread);
    const ahead = ok(run('inbox', ['--db', db, '--json', 'claim', '--agent', 'w', '--thread', thread], { env: skewed('+10m') }));
    expect(ahead.claimed).toBe(false);
    expect(leaseOf(db, thread)).toEqual(before);
    // To its own clock the lease ran out 5 minutes ago; to the server's it has 5 minutes left.
    ok(run('inbox', ['--db', db, '--json', 'heartbeat', '--thread', thread, '--lease', held], { env: skewed('+10m') }));
    ok(run('inbox', ['--db', db, '--json', 'progress', '--thread', thread, '--lease', held, '--body', 'from ahead'], { env: skewed('+10m') }));
    expect(leaseOf(db, thread)).toMatchObject([{ state: 'claimed', lease_token: before[0]?.lease_token, claim_count: 1 }]);
  });

  it('a client 10 minutes behind cannot keep a lease the server says ran out, and can take one that ran out', async () => {
    const { db } = newDb();
    const thread = ok(run('inbox', ['--db', db, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b'])).thread.id as string;
    const first = ok(run('inbox', ['--db', db, '--json', 'claim', '--agent', 'w', '--lease-seconds', '1'], { env: skewed('-10m') })).lease.token as string;
    await new Promise((r) => setTimeout(r, 1500));
    // To its own clock the lease has 10 minutes left.
    expectJsonError(run('inbox', ['--db', db, '--json', 'heartbeat', '--thread', thread, '--lease', first], { env: skewed('-10m') }), 5, 'LEASE_LOST');
    const again = ok(run('inbox', ['--db', db, '--json', 'claim', '--agent', 'w', '--thread', thread], { env: skewed('-10m') }));
    expect(again.claimed).toBe(true);
    expect(leaseOf(db, thread)).toMatchObject([{ state: 'claimed', lease_token: again.lease.token, claim_count: 2 }]);
    expectJsonError(run('inbox', ['--db', db, '--json', 'progress', '--thread', thread, '--lease', first, '--body', 'late']), 5, 'LEASE_LOST');
  });
});

describe("hostile text on the leader's terminal (slow)", () => {
  const HOSTILE = '\u001b[2J\u001b[31mFAKE: all tasks done\u001b]0;pwned\u0007\u009b1m\u202eevil';
  const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;

  function setup(): { db: string; thread: string; lease: string } {
    const { db } = newDb();
    ok(run('orch', ['--db', db, '--json', 'run', 'init', '--run', 'r1', '--goal', 'g']));
    ok(run('orch', ['--db', db, '--json', 'task', 'add', '--run', 'r1', '--task', 'T1', '--title', 'first']));
    const d = ok(run('orch', ['--db', db, '--json', 'dispatch', '--run', 'r1', '--task', 'T1', '--execution-mode', 'analysis', '--to', 'w', '--body', 'go']));
    const lease = ok(run('inbox', ['--db', db, '--json', 'claim', '--agent', 'w'])).lease.token as string;
    return { db, thread: d.attempt.thread_id as string, lease };
  }

  it("a worker's escape sequences are shown escaped in every text view and kept as they are in --json", () => {
    const { db, thread, lease } = setup();
    ok(
      run('inbox', [
        '--db',
        db,
        '--json',
        'progress',
        '--thread',
        thread,
        '--lease',
        lease,
        '--body',
        HOSTILE,
        '--payload-json',
        JSON.stringify({ note: HOSTILE }),
      ]),
    );
    const views: [string, CliRun][] = [
      ['orch status', run('orch', ['--db', db, 'status', '--run', 'r1'])],
      ['orch task show', run('orch', ['--db', db, 'task', 'show', '--run', 'r1', '--task', 'T1'])],
      ['orch wait', run('orch', ['--db', db, 'wait', '--run', 'r1', '--for', 'task_progress', '--after-event', '0', '--timeout-seconds', '0'])],
      ['inbox show', run('inbox', ['--db', db, 'show', '--thread', thread])],
      ['inbox wait', run('inbox', ['--db', db, 'wait', '--thread', thread, '--agent', 'leader', '--after-message', '0', '--timeout-seconds', '0'])],
    ];
    for (const [name, r] of views) {
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      expect(RAW.test(r.stdout), `${name} printed a raw control character: ${JSON.stringify(r.stdout)}`).toBe(false);
      expect(r.stdout, name).toContain('\\e[2J\\e[31mFAKE');
    }
    // JSON is data: the body comes back exactly as posted.
    expect(ok(run('orch', ['--db', db, '--json', 'status', '--run', 'r1'])).tasks[0].latest_message.body).toBe(HOSTILE);
    expect(ok(run('inbox', ['--db', db, '--json', 'show', '--thread', thread])).messages.at(-1)).toMatchObject({ body: HOSTILE, payload: { note: HOSTILE } });
  });

  it('a pending question is escaped in orch blocked; a multi-line body keeps its lines and tabs', () => {
    const { db, thread, lease } = setup();
    ok(run('inbox', ['--db', db, '--json', 'ask', '--thread', thread, '--lease', lease, '--body', `line one\n\tline two ${HOSTILE}`]));
    const r = run('orch', ['--db', db, 'blocked', '--run', 'r1']);
    expect(r.code, r.stderr).toBe(0);
    expect(RAW.test(r.stdout)).toBe(false);
    expect(r.stdout).toMatch(/ {4}line one\n {4}\tline two \\e\[2J/);
  });

  sqliteOnly.it(
    'a file path holding an escape sequence (a URL carries one percent-encoded)',
    'error messages are escaped too (a --db path holding an escape sequence)',
    () => {
      const dir = tempDir('adv-store-');
      const r = run('inbox', ['--db', path.join(dir, '\u001b[2Jx.db'), 'list']);
      expect(r.code).toBe(6);
      expect(RAW.test(r.stderr)).toBe(false);
      expect(r.stderr).toContain('\\e[2Jx.db');
    },
  );
});

describe('wide characters in tables (slow)', () => {
  /** Terminal cells for the fixed strings of this test: CJK and emoji take two, everything else one. */
  const cells = (s: string) => [...s].reduce((n, ch) => n + ((ch.codePointAt(0) ?? 0) >= 0x1100 ? 2 : 1), 0);

  it('orch status aligns its columns by display width with CJK and emoji in the latest message', () => {
    const { db } = newDb();
    ok(run('orch', ['--db', db, '--json', 'run', 'init', '--run', 'r1', '--goal', 'g']));
    const bodies = { T1: '進捗は順調です', T2: 'plain ascii progress', T3: 'done 🎉🎉' };
    for (const [task, body] of Object.entries(bodies)) {
      ok(run('orch', ['--db', db, '--json', 'task', 'add', '--run', 'r1', '--task', task, '--title', `title-${task}`]));
      const d = ok(
        run('orch', ['--db', db, '--json', 'dispatch', '--run', 'r1', '--task', task, '--execution-mode', 'analysis', '--to', `w${task}`, '--body', 'go']),
      );
      const lease = ok(run('inbox', ['--db', db, '--json', 'claim', '--agent', `w${task}`])).lease.token as string;
      ok(run('inbox', ['--db', db, '--json', 'progress', '--thread', d.attempt.thread_id, '--lease', lease, '--body', body]));
    }
    const r = run('orch', ['--db', db, 'status', '--run', 'r1']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    const column = (marker: string) => {
      const line = lines.find((l) => l.includes(marker)) ?? '';
      return cells(line.slice(0, line.indexOf(marker)));
    };
    const title = column('TITLE');
    expect(title).toBeGreaterThan(0);
    for (const task of Object.keys(bodies)) expect(column(`title-${task}`), task).toBe(title);
  });
});
