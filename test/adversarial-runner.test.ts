import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { WorkResult } from '@orch/inbox';
import { ROOT, dirState, tempDir, watchRun, type CliRun, type WatchedRun } from './helpers.ts';
import { outside, outsideEnv, run } from './outside.ts';
import { defaultWorkDir, freshDb, onPostgres, rows } from './engine.ts';

/**
 * Adversarial pass on `inbox work`: the agent it runs is arbitrary code, and the work directory
 * may sit where others can write. Every test runs the skill executables copied out of the
 * repository, with hostile fake agents from test/fixtures/agents, and asserts on rows, files,
 * processes and exit codes.
 */

const AGENTS = path.join(ROOT, 'test/fixtures/agents');
const agentPath = (name: string): string => path.join(AGENTS, name);
const LIBFAKETIME = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
  '/usr/local/lib/faketime/libfaketime.so.1',
].find((p) => fs.existsSync(p));

const runners: ChildProcess[] = [];
const strayPids: number[] = [];

afterEach(() => {
  for (const child of runners.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const pid of strayPids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Whether `pid` is a live process (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return !fs.existsSync('/proc/self/stat');
  }
}

async function pidFile(file: string, timeoutMs = 20_000): Promise<number> {
  const pid = await until(`pid file ${file}`, () => fs.existsSync(file) && Number(fs.readFileSync(file, 'utf8').trim()), timeoutMs);
  strayPids.push(pid);
  return pid;
}

/** No runner here should take nearly this long; a hung one fails its test. */
const RUNNER_DEADLINE_MS = 40_000;

/** Starts the copied `inbox --db DB [--json] work ARGS`; killed after the test. */
function startWork(db: string, args: string[], options: { env?: Record<string, string>; json?: boolean; umask?: string } = {}): WatchedRun {
  const inboxArgs = ['--db', db, ...(options.json === false ? [] : ['--json']), 'work', ...args];
  const child =
    options.umask === undefined
      ? spawn(outside().inbox, inboxArgs, { cwd: outside().dir, env: outsideEnv(options.env) })
      : spawn('/bin/sh', ['-c', `umask ${options.umask} && exec "$0" "$@"`, outside().inbox, ...inboxArgs], {
          cwd: outside().dir,
          env: outsideEnv(options.env),
        });
  runners.push(child);
  return watchRun(child, `inbox work ${args.join(' ')}`, RUNNER_DEADLINE_MS);
}

function output(r: CliRun): WorkResult & { handled: { claim?: number; left_pids?: number[] }[] } {
  try {
    return JSON.parse(r.stdout) as WorkResult;
  } catch {
    throw new Error(`runner printed no JSON (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

function initDb(): { dir: string; db: string } {
  const dir = tempDir('orch-adv-runner-');
  const db = freshDb(dir);
  const r = run('inbox', ['--db', db, 'init']);
  if (r.code !== 0) throw new Error(r.stderr);
  return { dir, db };
}

function send(db: string, to: string, subject: string): string {
  const r = run('inbox', ['--db', db, '--json', 'send', '--to', to, '--subject', subject, '--body', `Please do ${subject}.`]);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { thread: { id: string } }).thread.id;
}

interface ThreadRow {
  id: string;
  state: string;
  claim_count: number;
  lease_token: string | null;
  claimed_by: string | null;
}
interface MessageRow {
  id: number;
  kind: string;
  body: string;
  payload: string | null;
}

const thread = (db: string, id: string): ThreadRow => rows<ThreadRow>(db, 'select * from inbox_threads where id = ?', id)[0]!;
const messages = (db: string, id: string): MessageRow[] => rows<MessageRow>(db, 'select * from inbox_messages where thread_id = ? order by id', id);
const claimDir = (workDir: string, agent: string, tid: string, claim = 1): string => path.join(workDir, agent, tid, String(claim));

// ---------------------------------------------------------------------------------------------

describe('adversarial runner: the result file is whatever the agent made of it (slow)', () => {
  it('a directory, a FIFO, a link to /dev/zero, a link or hard link to a secret: named in a failure, never read, cleaned up; the runner survives', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const modes = path.join(dir, 'modes');
    fs.mkdirSync(modes);
    const secret = path.join(dir, 'secret.txt');
    fs.writeFileSync(secret, 'TOP-SECRET-42\n', { mode: 0o600 });
    const cases = ['dir', 'fifo', 'regular', 'zero', `link ${secret}`, `hard ${secret}`];
    const ids = cases.map((mode) => {
      const id = send(db, 'hostile', mode);
      fs.writeFileSync(path.join(modes, id), `${mode}\n`);
      return id;
    });
    const r = await startWork(db, [
      '--agent',
      'hostile',
      '--concurrency',
      '2',
      '--idle-exit-seconds',
      '1',
      '--work-dir',
      workDir,
      '--',
      agentPath('hostile-result.sh'),
      modes,
    ]).done;
    expect(r.code, r.stderr).toBe(4); // threads failed; not 1 (a crash)
    const out = output(r);
    expect(out.stopped).toBe('idle');
    expect(out.handled.map((h) => h.thread_id).sort()).toEqual([...ids].sort());

    const named: Record<string, RegExp> = {
      dir: /is a directory/,
      fifo: /is a FIFO/,
      zero: /is a symbolic link/,
      link: /is a symbolic link/,
      hard: /has 2 hard links/,
    };
    for (const [i, mode] of cases.entries()) {
      const id = ids[i]!;
      const resultFile = path.join(claimDir(workDir, 'hostile', id), 'result.md');
      const msgs = messages(db, id);
      // Nothing anyone posted holds the secret.
      for (const m of msgs) expect(m.body).not.toContain('TOP-SECRET');
      const kind = mode.split(' ')[0]!;
      if (kind === 'regular') {
        expect(thread(db, id).state).toBe('done');
        expect(msgs.filter((m) => m.kind === 'result').map((m) => m.body)).toEqual([`the real result of ${id}\n`]);
        continue;
      }
      expect({ mode, state: thread(db, id).state }).toEqual({ mode, state: 'failed' });
      const failure = msgs.find((m) => m.kind === 'failure');
      expect(failure?.body).toContain(resultFile);
      expect(failure?.body).toMatch(named[kind]!);
      // The leftover is gone (of whatever type), and the secret is untouched.
      const left =
        fs.existsSync(resultFile) ||
        (() => {
          try {
            fs.lstatSync(resultFile);
            return true;
          } catch {
            return false;
          }
        })();
      expect({ mode, left }).toEqual({ mode, left: false });
    }
    expect(fs.readFileSync(secret, 'utf8')).toBe('TOP-SECRET-42\n');
    expect(fs.statSync(secret).nlink).toBe(1);
  });

  it('a leftover of any type from a released claim is no poison pill: the next claim of the thread runs normally', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const modes = path.join(dir, 'modes');
    fs.mkdirSync(modes);
    const id = send(db, 'pill', 'leaves a directory at its result file');
    fs.writeFileSync(path.join(modes, id), 'dir-sleep\n');
    const first = startWork(db, ['--agent', 'pill', '--once', '--work-dir', workDir, '--', agentPath('hostile-result.sh'), modes]);
    await pidFile(path.join(claimDir(workDir, 'pill', id), 'agent.pid'));
    first.child.kill('SIGTERM');
    const r1 = await first.done;
    expect(r1.code, r1.stderr).toBe(0);
    expect(output(r1).handled).toMatchObject([{ thread_id: id, outcome: 'released' }]);
    expect(thread(db, id).state).toBe('open');

    fs.writeFileSync(path.join(modes, id), 'regular\n');
    const r2 = await startWork(db, ['--agent', 'pill', '--once', '--work-dir', workDir, '--', agentPath('hostile-result.sh'), modes]).done;
    expect(r2.code, r2.stderr).toBe(0);
    expect(output(r2).handled).toMatchObject([{ thread_id: id, outcome: 'done', claim: 2 }]);
    expect(
      messages(db, id)
        .filter((m) => m.kind === 'result')
        .map((m) => m.body),
    ).toEqual([`the real result of ${id}\n`]);
  });
});

describe('adversarial runner: the work directory (slow)', () => {
  it('links and directories planted at output.log, scratch or a thread directory are never followed; the command runs in a fresh directory', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const target = path.join(dir, 'target');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep.txt'), 'keep\n');
    const a = send(db, 'planted', 'links at the old and new paths');
    const b = send(db, 'planted', 'the thread directory is a link');
    const c = send(db, 'planted', 'output.log is a directory');
    const agentDir = path.join(workDir, 'planted');
    fs.mkdirSync(path.join(agentDir, a, '1'), { recursive: true, mode: 0o700 });
    fs.chmodSync(workDir, 0o700);
    for (const base of [path.join(agentDir, a), path.join(agentDir, a, '1')]) {
      fs.symlinkSync(path.join(target, 'log'), path.join(base, 'output.log'));
      fs.symlinkSync(target, path.join(base, 'scratch'));
      fs.symlinkSync(path.join(target, 'result'), path.join(base, 'result.md'));
    }
    fs.symlinkSync(target, path.join(agentDir, b));
    fs.mkdirSync(path.join(agentDir, c, 'output.log'), { recursive: true });
    fs.mkdirSync(path.join(agentDir, c, '1', 'output.log'), { recursive: true });
    const before = dirState(target);

    const r = await startWork(db, ['--agent', 'planted', '--idle-exit-seconds', '1', '--work-dir', workDir, '--', process.execPath, agentPath('echo.mjs')])
      .done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('Unhandled');
    const out = output(r);
    expect(out.handled.map((h) => [h.thread_id, h.outcome]).sort()).toEqual([a, b, c].map((id) => [id, 'done']).sort());
    expect(dirState(target)).toEqual(before);
    for (const id of [a, b, c]) {
      const here = claimDir(workDir, 'planted', id);
      expect(fs.lstatSync(path.join(workDir, 'planted', id)).isDirectory()).toBe(true);
      expect(fs.lstatSync(path.join(here, 'output.log')).isFile()).toBe(true);
      expect(fs.readFileSync(path.join(here, 'output.log'), 'utf8')).toContain(`final answer for ${id}`);
      const seen = JSON.parse(fs.readFileSync(path.join(here, 'env.json'), 'utf8')) as { cwd: string };
      expect(seen.cwd).toBe(path.join(here, 'scratch'));
      expect(thread(db, id).state).toBe('done');
    }
  });

  it('made owner-only whatever the umask: the work directory and every directory in it 0700, logs 0600', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const id = send(db, 'private', 'under umask 000');
    const r = await startWork(db, ['--agent', 'private', '--once', '--work-dir', workDir, '--', process.execPath, agentPath('echo.mjs')], { umask: '000' })
      .done;
    expect(r.code, r.stderr).toBe(0);
    const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);
    const here = claimDir(workDir, 'private', id);
    expect([workDir, path.join(workDir, 'private'), path.join(workDir, 'private', id), here].map(mode)).toEqual(['700', '700', '700', '700']);
    expect(mode(path.join(here, 'output.log'))).toBe('600');
  });

  it('a work directory others can write to, or owned by someone else, is refused (exit 2) before anything is claimed; so is the shared default (beside the database; on PostgreSQL in the current directory)', () => {
    const { dir, db } = initDb();
    const id = send(db, 'careful', 'never claimed');
    const open = path.join(dir, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    const groupWritable = path.join(dir, 'group');
    fs.mkdirSync(groupWritable);
    fs.chmodSync(groupWritable, 0o770);
    // The default: .inbox-work beside the database (or in the current directory on PostgreSQL), as
    // another user could have made it in /tmp.
    fs.mkdirSync(defaultWorkDir(db, dir));
    fs.chmodSync(defaultWorkDir(db, dir), 0o777);
    const cases: { args: string[]; why: RegExp }[] = [
      { args: ['--work-dir', open], why: /writable by group or others/ },
      { args: ['--work-dir', groupWritable], why: /writable by group or others/ },
      { args: [], why: /writable by group or others/ },
    ];
    if (process.getuid?.() === 0) {
      const foreign = path.join(dir, 'foreign');
      fs.mkdirSync(foreign, { mode: 0o700 });
      fs.chownSync(foreign, 65534, 65534);
      cases.push({ args: ['--work-dir', foreign], why: /owned by uid 65534/ });
    }
    for (const c of cases) {
      const r = run('inbox', ['--db', db, '--json', 'work', '--agent', 'careful', '--once', ...c.args, '--', 'true'], { cwd: dir });
      expect({ args: c.args, code: r.code, stdout: r.stdout }).toEqual({ args: c.args, code: 2, stdout: '' });
      const err = JSON.parse(r.stderr) as { error: { code: string; message: string } };
      expect(err.error.code).toBe('VALIDATION');
      expect(err.error.message).toMatch(c.why);
    }
    expect(thread(db, id)).toMatchObject({ state: 'open', claim_count: 0 });
    expect(fs.readdirSync(open)).toEqual([]);
  });

  it('a finished thread leaves its log but not its scratch directory; a released one keeps both', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const id = send(db, 'tidy', 'leaves files in scratch');
    const r = await startWork(db, [
      '--agent',
      'tidy',
      '--once',
      '--work-dir',
      workDir,
      '--',
      '/bin/sh',
      '-c',
      'mkdir -p deep/er && echo x > deep/er/f && ln -s / root-link && echo answer',
    ]).done;
    expect(r.code, r.stderr).toBe(0);
    const here = claimDir(workDir, 'tidy', id);
    expect(output(r).handled).toMatchObject([
      { thread_id: id, outcome: 'done', work_dir: path.join(here, 'scratch'), log_file: path.join(here, 'output.log') },
    ]);
    expect(fs.existsSync(path.join(here, 'scratch'))).toBe(false);
    expect(fs.readFileSync(path.join(here, 'output.log'), 'utf8')).toContain('answer');
    expect(fs.existsSync('/bin/sh')).toBe(true); // the link to / was removed, not followed

    const kept = send(db, 'tidy', 'interrupted');
    const runner = startWork(db, ['--agent', 'tidy', '--once', '--work-dir', workDir, '--', agentPath('sleeper.sh'), '30']);
    await pidFile(path.join(claimDir(workDir, 'tidy', kept), 'agent.pid'));
    runner.child.kill('SIGTERM');
    const r2 = await runner.done;
    expect(output(r2).handled).toMatchObject([{ thread_id: kept, outcome: 'released' }]);
    expect(fs.existsSync(path.join(claimDir(workDir, 'tidy', kept), 'scratch'))).toBe(true);
  });
});

describe('adversarial runner: processes the command leaves (slow)', () => {
  it('--once exits when the command exits, although a daemonised child holds its stdout; the output names the pid left running', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const id = send(db, 'daemoniser', 'starts a daemon');
    const runner = startWork(db, ['--agent', 'daemoniser', '--once', '--work-dir', workDir, '--', agentPath('daemon.sh'), '120'], { json: false });
    const daemon = await pidFile(path.join(claimDir(workDir, 'daemoniser', id), 'daemon.pid'));
    const r = await runner.done;
    expect(r.code, r.stderr).toBe(0);
    expect(thread(db, id).state).toBe('done');
    expect(
      messages(db, id)
        .filter((m) => m.kind === 'result')
        .map((m) => m.body),
    ).toEqual([`started daemon ${daemon}\n`]);
    // Not stopped (it left the command's process group and session on purpose), but reported.
    expect(alive(daemon)).toBe(true);
    expect(r.stdout).toContain(`left running: ${daemon}`);

    const id2 = send(db, 'daemoniser', 'starts another daemon');
    const r2 = await startWork(db, ['--agent', 'daemoniser', '--once', '--work-dir', workDir, '--', agentPath('daemon.sh'), '120']).done;
    const daemon2 = await pidFile(path.join(claimDir(workDir, 'daemoniser', id2), 'daemon.pid'));
    expect(r2.code, r2.stderr).toBe(0);
    expect(output(r2).handled).toMatchObject([{ thread_id: id2, outcome: 'done', left_pids: [daemon2] }]);
  });

  it('a second SIGINT or SIGTERM during the grace period kills the commands now, still releases the thread, and exits 0', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    for (const [first, second] of [
      ['SIGINT', 'SIGINT'],
      ['SIGTERM', 'SIGINT'],
    ] as const) {
      const agent = `stubborn-${first}`.toLowerCase();
      const id = send(db, agent, 'ignores SIGTERM');
      // A grace far longer than the test: only the second signal can end it.
      const runner = startWork(db, ['--agent', agent, '--grace-seconds', '600', '--work-dir', workDir, '--', agentPath('stubborn.sh'), '120']);
      const pid = await pidFile(path.join(claimDir(workDir, agent, id), 'agent.pid'));
      runner.child.kill(first);
      await until('the runner to start stopping', () => runner.stderr().includes('stopping'));
      await sleep(300);
      expect(alive(pid)).toBe(true); // SIGTERM is ignored: the grace period runs
      runner.child.kill(second);
      const r = await runner.done;
      expect({ first, second, code: r.code, signal: r.signal }).toEqual({ first, second, code: 0, signal: null });
      expect(output(r)).toMatchObject({ stopped: 'stopped', handled: [{ thread_id: id, outcome: 'released', thread_state: 'open', signal: 'SIGKILL' }] });
      expect(thread(db, id)).toMatchObject({ state: 'open', lease_token: null, claimed_by: null });
      await until(`agent ${pid} to be gone`, () => !alive(pid), 10_000);
    }
  });
});

describe('adversarial runner: clocks (slow)', () => {
  it('a lease lost while the runner was stopped: the next claim runs in its own directory, the first runner stops its command and posts nothing', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const id = send(db, 'frozen', 'claimed twice');
    const a = startWork(db, ['--agent', 'frozen', '--once', '--lease-seconds', '3', '--work-dir', workDir, '--', agentPath('sleeper.sh'), '60']);
    const agentA = await pidFile(path.join(claimDir(workDir, 'frozen', id, 1), 'agent.pid'));
    await until('the start message', () => messages(db, id).some((m) => m.kind === 'progress'));
    a.child.kill('SIGSTOP');
    try {
      await until('the lease to run out', () => {
        const r = run('inbox', ['--db', db, '--json', 'list', '--agent', 'frozen']);
        return (JSON.parse(r.stdout) as { threads: { lease_expired: boolean }[] }).threads[0]?.lease_expired === true;
      });
      const b = await startWork(db, ['--agent', 'frozen', '--once', '--work-dir', workDir, '--', process.execPath, agentPath('echo.mjs')]).done;
      expect(b.code, b.stderr).toBe(0);
      const hb = output(b).handled[0]!;
      expect(hb).toMatchObject({ thread_id: id, outcome: 'done', claim: 2, work_dir: path.join(claimDir(workDir, 'frozen', id, 2), 'scratch') });
      expect(alive(agentA)).toBe(true); // the first command still runs, in its own directory
      expect(fs.existsSync(path.join(claimDir(workDir, 'frozen', id, 1), 'agent.pid'))).toBe(true);
    } finally {
      a.child.kill('SIGCONT');
    }
    const r = await a.done;
    expect(r.code, r.stderr).toBe(4);
    expect(output(r).handled).toMatchObject([{ thread_id: id, outcome: 'lease_lost', claim: 1 }]);
    await until('the first command to stop', () => !alive(agentA), 10_000);
    expect(thread(db, id)).toMatchObject({ state: 'done', claim_count: 2 });
    // task, start of claim 1, start of claim 2, the result of claim 2: nothing from claim 1 after it lost the lease.
    expect(messages(db, id).map((m) => m.kind)).toEqual(['task', 'progress', 'progress', 'result']);
  });

  // On PostgreSQL the server's clock judges leases, so a client living ahead cannot take one.
  it.skipIf(LIBFAKETIME === undefined || onPostgres)(
    'a clock jump forward lets another runner claim a long lease: the first runner notices within about a second, not at its next heartbeat (SQLite only: the client clock judges leases there)',
    async () => {
      const { dir, db } = initDb();
      const workDir = path.join(dir, 'work');
      const id = send(db, 'jumpy', 'long lease');
      // A 300 s lease: the first runner's next heartbeat is 100 s away.
      const a = startWork(db, ['--agent', 'jumpy', '--once', '--lease-seconds', '300', '--work-dir', workDir, '--', agentPath('sleeper.sh'), '120']);
      const agentA = await pidFile(path.join(claimDir(workDir, 'jumpy', id, 1), 'agent.pid'));
      await until('the start message', () => messages(db, id).some((m) => m.kind === 'progress'));
      // The second runner lives 10 minutes ahead: to it the lease has run out.
      const b = startWork(db, ['--agent', 'jumpy', '--once', '--work-dir', workDir, '--', agentPath('sleeper.sh'), '40'], {
        env: { LD_PRELOAD: LIBFAKETIME!, FAKETIME: '+10m', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
      });
      const agentB = await pidFile(path.join(claimDir(workDir, 'jumpy', id, 2), 'agent.pid'));
      // The first command must stop while the second still runs (it sleeps 40 s).
      await until(
        'the first command to stop',
        () => {
          if (!alive(agentB)) throw new Error('the second command ended while the first one still ran');
          return !alive(agentA);
        },
        45_000,
      );
      const r = await a.done;
      expect(r.code, r.stderr).toBe(4);
      expect(output(r).handled).toMatchObject([{ thread_id: id, outcome: 'lease_lost' }]);
      expect(thread(db, id)).toMatchObject({ state: 'claimed', claim_count: 2 });
      b.child.kill('SIGTERM');
      expect(output(await b.done).handled).toMatchObject([{ thread_id: id, outcome: 'released' }]);
    },
  );

  it.skipIf(LIBFAKETIME === undefined)(
    '--idle-exit-seconds measures with a monotonic clock: a wall clock set back an hour does not keep the runner waiting',
    async () => {
      const { dir, db } = initDb();
      const rc = path.join(dir, 'faketime.rc');
      fs.writeFileSync(rc, '+0\n');
      const id = send(db, 'idler', 'one quick job');
      const runner = startWork(db, ['--agent', 'idler', '--idle-exit-seconds', '3', '--work-dir', path.join(dir, 'work'), '--', '/bin/echo', 'quick'], {
        env: { LD_PRELOAD: LIBFAKETIME!, FAKETIME_TIMESTAMP_FILE: rc, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
      });
      // Once the job is done the runner is idle; then the wall clock goes back an hour.
      await until('the job to be done', () => thread(db, id).state === 'done');
      fs.writeFileSync(rc, '-1h\n');
      const r = await runner.done;
      expect(r.code, r.stderr).toBe(0);
      expect(output(r)).toMatchObject({ agent: 'idler', handled: [{ thread_id: id, outcome: 'done' }], stopped: 'idle' });
    },
  );
});

describe('adversarial runner: what the agent prints (slow)', () => {
  it('NUL bytes in stdout and stderr become U+FFFD in the result, the failure and progress; never stored raw', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const okId = send(db, 'nul', 'prints NUL and succeeds');
    const r = await startWork(db, ['--agent', 'nul', '--once', '--work-dir', workDir, '--', agentPath('nul.sh'), '0']).done;
    expect(r.code, r.stderr).toBe(0);
    expect(messages(db, okId).find((m) => m.kind === 'result')?.body).toBe(`before\uFFFDafter ${okId}\n`);
    const failId = send(db, 'nul', 'prints NUL and fails');
    const r2 = await startWork(db, ['--agent', 'nul', '--once', '--work-dir', workDir, '--', agentPath('nul.sh'), '3']).done;
    expect(r2.code, r2.stderr).toBe(4);
    expect(messages(db, failId).find((m) => m.kind === 'failure')?.body).toContain('err-before\uFFFDerr-after');
    // PostgreSQL's text cannot hold NUL at all (the insert would have failed); SQLite's can.
    if (!onPostgres) expect(rows<{ n: number }>(db, 'select count(*) as n from inbox_messages where instr(body, char(0)) > 0')[0]!.n).toBe(0);
    // Every later read works.
    for (const id of [okId, failId]) expect(run('inbox', ['--db', db, '--json', 'show', '--thread', id]).code).toBe(0);
  });

  it('JSON nested far beyond the limit in the output or the result file is stored as text; later reads (show, orch status) work', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const file = path.join(dir, 'deep.json');
    fs.writeFileSync(file, deep);
    expect(run('orch', ['--db', db, 'run', 'init', '--run', 'rj', '--goal', 'g']).code).toBe(0);
    for (const t of ['T1', 'T2']) {
      expect(run('orch', ['--db', db, 'task', 'add', '--run', 'rj', '--task', t, '--title', t, '--default-to', 'nester']).code).toBe(0);
      expect(run('orch', ['--db', db, 'dispatch', '--run', 'rj', '--task', t, '--execution-mode', 'analysis', '--body', 'nest']).code).toBe(0);
    }
    const viaFile = await startWork(db, ['--agent', 'nester', '--once', '--work-dir', workDir, '--', '/bin/sh', '-c', `cp ${file} "$INBOX_RESULT_FILE"`]).done;
    expect(viaFile.code, viaFile.stderr).toBe(0);
    const viaStdout = await startWork(db, [
      '--agent',
      'nester',
      '--once',
      '--work-dir',
      workDir,
      '--',
      '/bin/sh',
      '-c',
      `printf '[[[[%s' "$(head -c 12000 ${file})"`,
    ]).done;
    expect(viaStdout.code, viaStdout.stderr).toBe(0);
    const status = run('orch', ['--db', db, '--json', 'status', '--run', 'rj']);
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { tasks: { state: string }[] }).tasks.map((t) => t.state)).toEqual(['done', 'done']);
    for (const t of ['T1', 'T2']) expect(run('orch', ['--db', db, '--json', 'task', 'show', '--run', 'rj', '--task', t]).code).toBe(0);
    const results = rows<{ body: string }>(db, "select body from inbox_messages where kind = 'result' order by id");
    expect(results[0]!.body).toBe(deep);
  });
});
