import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { HandledThread, WorkResult } from '@orch/inbox';
import { INBOX_BIN, ROOT, inbox, initDb, json, ok, orchOk, rows, tempDir, watchRun, type CliRun, type WatchedRun } from './helpers.ts';

/**
 * `inbox work`: the runner that claims an agent's threads and supervises a command per thread.
 * Every test drives the built CLI as a real OS process with a scripted fake agent from
 * test/fixtures/agents (no model, no network) and asserts on the database rows, the runner's
 * JSON output and exit code, the files the agent left, and the process table.
 */

const AGENTS = path.join(ROOT, 'test/fixtures/agents');
const agentPath = (name: string): string => path.join(AGENTS, name);
const NODE = process.execPath;

// The runner's own result types: the JSON output is exactly these.
type Handled = HandledThread;
type WorkOutput = WorkResult;

interface MessageRow {
  id: number;
  thread_id: string;
  author: string;
  kind: string;
  body: string;
  payload: string | null;
}

interface ThreadRow {
  id: string;
  state: string;
  claimed_by: string | null;
  claim_count: number;
  lease_token: string | null;
  lease_expires_at: number | null;
}

// ---------------------------------------------------------------------------------------------
// process bookkeeping: anything a test started (runners, pids its agents recorded) is killed
// after the test, whatever happened.

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

/** Whether `pid` is a live process (a zombie waiting to be reaped counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; state Z is a zombie (exited, not yet reaped).
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return !fs.existsSync('/proc/self/stat'); // no procfs: trust kill(0)
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns something other than undefined/false, or fails after `timeoutMs`. */
async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Reads a pid file an agent wrote (atomically, via rename), waiting for it to appear. */
async function pidFile(file: string, timeoutMs = 20_000): Promise<number> {
  const pid = await until(`pid file ${file}`, () => fs.existsSync(file) && Number(fs.readFileSync(file, 'utf8').trim()), timeoutMs);
  strayPids.push(pid);
  return pid;
}

async function expectGone(pids: number[], what: string): Promise<void> {
  await until(`${what} (pids ${pids.join(', ')}) to be gone`, () => pids.every((pid) => !alive(pid)), 10_000);
}

/** No runner in this file should take nearly this long; a hung one fails its test with a clear message. */
const RUNNER_DEADLINE_MS = 40_000;

/** Starts `inbox --db DB --json work ARGS` with a handle on the process (for signals); killed after the test. */
function startWork(db: string, args: string[], cwd = ROOT): WatchedRun {
  const child = spawn(NODE, [INBOX_BIN, '--db', db, '--json', 'work', ...args], { cwd, env: { ...process.env, NO_COLOR: '1' } });
  runners.push(child);
  return watchRun(child, `inbox work ${args.join(' ')}`, RUNNER_DEADLINE_MS);
}

/** Runs `inbox --db DB --json work ARGS` to completion. */
function runWork(db: string, args: string[], cwd = ROOT): Promise<CliRun> {
  return startWork(db, args, cwd).done;
}

function output(r: CliRun): WorkOutput {
  try {
    return json<WorkOutput>(r);
  } catch {
    throw new Error(`runner printed no JSON (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

function send(db: string, to: string, subject: string, body = `Please do ${subject}.`): string {
  return ok<{ thread: { id: string } }>(db, ['send', '--to', to, '--subject', subject, '--body', body]).thread.id;
}

function thread(db: string, id: string): ThreadRow {
  const [row] = rows<ThreadRow>(db, 'select * from inbox_threads where id = ?', id);
  if (!row) throw new Error(`no thread ${id}`);
  return row;
}

function messages(db: string, threadId: string): MessageRow[] {
  return rows<MessageRow>(db, 'select * from inbox_messages where thread_id = ? order by id', threadId);
}

function payload(m: MessageRow | undefined): Record<string, unknown> {
  return m?.payload ? (JSON.parse(m.payload) as Record<string, unknown>) : {};
}

/** A run with one task per entry, each dispatched in analysis mode to its agent; returns the attempts by task. */
function dispatchRun(db: string, run: string, tasks: { task: string; to: string; body: string }[]) {
  orchOk(db, ['run', 'init', '--run', run, '--goal', `goal of ${run}`]);
  const attempts: Record<string, { id: string; thread_id: string }> = {};
  for (const t of tasks) {
    orchOk(db, ['task', 'add', '--run', run, '--task', t.task, '--title', `title of ${t.task}`, '--default-to', t.to]);
    attempts[t.task] = orchOk<{ attempt: { id: string; thread_id: string } }>(db, [
      'dispatch',
      '--run',
      run,
      '--task',
      t.task,
      '--execution-mode',
      'analysis',
      '--body',
      t.body,
    ]).attempt;
  }
  return attempts;
}

function taskStates(db: string, run: string): Record<string, string> {
  const status = orchOk<{ tasks: { id: string; state: string }[] }>(db, ['status', '--run', run]);
  return Object.fromEntries(status.tasks.map((t) => [t.id, t.state]));
}

/** The directory of one claim of a thread: its log, result file, the agents' records, and scratch/. */
function claimDir(workDir: string, agent: string, threadId: string, claim = 1): string {
  return path.join(workDir, agent, threadId, String(claim));
}

function scratch(workDir: string, agent: string, threadId: string, claim = 1): string {
  return path.join(claimDir(workDir, agent, threadId, claim), 'scratch');
}

// ---------------------------------------------------------------------------------------------

describe('inbox work: a command that exits 0 (slow)', () => {
  it('gets the brief on stdin and the INBOX_* environment, runs in its scratch dir; stdout becomes the result; output is logged', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const { T1: attempt } = dispatchRun(db, 'r1', [{ task: 'T1', to: 'writer', body: 'Summarise the flaky-test logs (marker: zebra-42).' }]);
    if (!attempt) throw new Error('no attempt');
    const tid = attempt.thread_id;

    const r = await runWork(db, ['--agent', 'writer', '--once', '--work-dir', workDir, '--', NODE, agentPath('echo.mjs')]);
    expect(r.code, r.stderr).toBe(0);
    const out = output(r);
    expect(out.agent).toBe('writer');
    expect(out.stopped).toBe('once');
    expect(out.handled).toHaveLength(1);
    const h = out.handled[0]!;
    expect(h).toMatchObject({
      thread_id: tid,
      outcome: 'done',
      thread_state: 'done',
      exit_code: 0,
      signal: null,
      timed_out: false,
      claim: 1,
      work_dir: scratch(workDir, 'writer', tid),
      log_file: path.join(claimDir(workDir, 'writer', tid), 'output.log'),
      left_pids: [],
    });
    expect(h.subject).toContain('title of T1');
    expect(Date.parse(h.ended_at)).toBeGreaterThanOrEqual(Date.parse(h.started_at));

    // The brief on stdin: the task as the leader wrote it, the thread, how to report.
    // The agent recorded what it saw beside its log: the scratch directory is gone once the thread is done.
    expect(fs.existsSync(h.work_dir)).toBe(false);
    const brief = fs.readFileSync(path.join(claimDir(workDir, 'writer', tid), 'brief.txt'), 'utf8');
    expect(brief).toContain('Summarise the flaky-test logs (marker: zebra-42).');
    expect(brief).toContain(tid);
    expect(brief).toContain('You are writer');
    expect(brief).toContain('INBOX_RESULT_FILE');

    // The environment and working directory the agent saw.
    const seen = JSON.parse(fs.readFileSync(path.join(claimDir(workDir, 'writer', tid), 'env.json'), 'utf8')) as { cwd: string; env: Record<string, string> };
    expect(seen.cwd).toBe(h.work_dir);
    expect(seen.env).toEqual({
      INBOX_DB: db,
      INBOX_BIN,
      INBOX_AGENT: 'writer',
      INBOX_THREAD_ID: tid,
      INBOX_LEASE: expect.stringMatching(/^ls_/),
      INBOX_RUN: 'r1',
      INBOX_TASK: 'T1',
      INBOX_ATTEMPT: attempt.id,
      INBOX_ATTEMPT_NUMBER: '1',
      INBOX_WORKTREE: '',
      INBOX_WORK_DIR: h.work_dir,
      INBOX_RESULT_FILE: path.join(claimDir(workDir, 'writer', tid), 'result.md'),
      INBOX_LOG_FILE: h.log_file,
    });
    // INBOX_BIN is runnable as a program (node shebang, executable).
    const viaBin = spawnSync(seen.env.INBOX_BIN!, ['--db', db, '--json', 'show', '--thread', tid], { encoding: 'utf8' });
    expect(viaBin.status, viaBin.stderr).toBe(0);

    // The thread: done, claimed once; the result is the command's stdout, not its stderr.
    expect(thread(db, tid)).toMatchObject({ state: 'done', claim_count: 1, lease_token: null });
    const msgs = messages(db, tid);
    expect(msgs.map((m) => m.kind)).toEqual(['task', 'progress', 'result']);
    const result = msgs[2]!;
    expect(result.body).toBe(`working on ${tid}\nfinal answer for ${tid}\n`);
    expect(result.author).toBe('writer');
    expect(payload(result)).toMatchObject({ runner: 'inbox work', exit_code: 0 });

    // The log holds stdout and stderr; the progress message points at it.
    const log = fs.readFileSync(h.log_file, 'utf8');
    expect(log).toContain(`final answer for ${tid}`);
    expect(log).toContain(`a note on stderr from ${tid}`);
    const started = msgs[1]!;
    expect(payload(started)).toMatchObject({ runner: 'inbox work', log_file: h.log_file, work_dir: h.work_dir });
    expect(started.body).toContain(h.log_file);

    // orch folds the runner's result into the task.
    expect(taskStates(db, 'r1')).toEqual({ T1: 'done' });
  });

  it('the result is $INBOX_RESULT_FILE when the command writes it; otherwise only the end of a long stdout', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const withFile = send(db, 'filer', 'with a result file');
    const longOut = send(db, 'talker', 'with a lot of output');

    const [a, b] = await Promise.all([
      runWork(db, ['--agent', 'filer', '--once', '--work-dir', workDir, '--', NODE, agentPath('echo.mjs'), '--result-file', '--big']),
      runWork(db, ['--agent', 'talker', '--once', '--work-dir', workDir, '--', NODE, agentPath('echo.mjs'), '--big']),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(output(a).handled).toMatchObject([{ thread_id: withFile, outcome: 'done', exit_code: 0 }]);
    expect(output(b).handled).toMatchObject([{ thread_id: longOut, outcome: 'done', exit_code: 0 }]);

    const fileResult = messages(db, withFile).filter((m) => m.kind === 'result');
    expect(fileResult.map((m) => m.body)).toEqual([`# Result file for ${withFile}\n\nall good\n`]);

    const tailResult = messages(db, longOut).filter((m) => m.kind === 'result');
    expect(tailResult).toHaveLength(1);
    const body = tailResult[0]!.body;
    expect(body.endsWith(`filler line 03999\nfinal answer for ${longOut}\n`)).toBe(true);
    expect(body).not.toContain('filler line 00000'); // the start of ~80 KB of output was dropped
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(16 * 1024);
    // The whole output is in the log.
    expect(fs.readFileSync(output(b).handled[0]!.log_file, 'utf8')).toContain('filler line 00000');

    // A thread sent with plain `inbox send` has no orch context.
    const env = (JSON.parse(fs.readFileSync(path.join(claimDir(workDir, 'filer', withFile), 'env.json'), 'utf8')) as { env: Record<string, string> }).env;
    expect(env).toMatchObject({ INBOX_RUN: '', INBOX_TASK: '', INBOX_ATTEMPT: '', INBOX_ATTEMPT_NUMBER: '', INBOX_WORKTREE: '' });
    expect([withFile, longOut].map((id) => thread(db, id).state)).toEqual(['done', 'done']);
  });

  it('a result file over the 1 MiB body limit is not loaded: the result points at the file, which is kept whole', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const id = send(db, 'big', 'write a huge result');
    const script = 'head -c 3000000 /dev/zero | tr "\\0" x > "$INBOX_RESULT_FILE"';
    const r = await runWork(db, ['--agent', 'big', '--once', '--work-dir', workDir, '--', '/bin/sh', '-c', script]);
    expect(r.code, r.stderr).toBe(0);
    expect(output(r).handled).toMatchObject([{ thread_id: id, outcome: 'done' }]);
    const result = messages(db, id).filter((m) => m.kind === 'result');
    expect(result).toHaveLength(1);
    const file = path.join(path.dirname(scratch(workDir, 'big', id)), 'result.md');
    expect(result[0]!.body).toBe(`The result is in ${file} (3000000 bytes: more than a message may hold, 1048576 bytes).`);
    expect(JSON.parse(result[0]!.payload as string)).toMatchObject({ result_file: file, result_bytes: 3000000 });
    expect(fs.statSync(file).size).toBe(3000000);

    // A small file that holds a NUL is named too, not swapped for stdout.
    const nul = send(db, 'big', 'write a NUL');
    const r2 = await runWork(db, [
      '--agent',
      'big',
      '--once',
      '--work-dir',
      workDir,
      '--',
      '/bin/sh',
      '-c',
      'printf "a\\000b" > "$INBOX_RESULT_FILE"; echo stdout',
    ]);
    expect(r2.code, r2.stderr).toBe(0);
    const nulFile = path.join(path.dirname(scratch(workDir, 'big', nul)), 'result.md');
    expect(
      messages(db, nul)
        .filter((m) => m.kind === 'result')
        .map((m) => m.body),
    ).toEqual([`The result is in ${nulFile} (3 bytes: it holds NUL characters, which a message may not).`]);
  });

  it('code mode: the command runs in the attempt worktree, with INBOX_WORKTREE set', async () => {
    const { dir, db } = initDb();
    const repo = tempDir('orch-work-repo-');
    const git = (...args: string[]) => {
      const g = spawnSync('git', args, { cwd: repo, encoding: 'utf8', env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
      if (g.status !== 0) throw new Error(`git ${args.join(' ')}: ${g.stderr}`);
    };
    git('init', '-q', '-b', 'main');
    git('config', 'user.name', 'Test User');
    git('config', 'user.email', 'test@example.com');
    git('config', 'commit.gpgsign', 'false');
    fs.writeFileSync(path.join(repo, 'a.txt'), 'a\n');
    git('add', 'a.txt');
    git('commit', '-q', '-m', 'initial');
    orchOk(db, ['run', 'init', '--run', 'rc', '--goal', 'g']);
    orchOk(db, ['task', 'add', '--run', 'rc', '--task', 'T1', '--title', 'code task', '--default-to', 'coder']);
    const attempt = orchOk<{ attempt: { thread_id: string; worktree_path: string } }>(
      db,
      ['dispatch', '--run', 'rc', '--task', 'T1', '--execution-mode', 'code', '--body', 'change a.txt'],
      { cwd: repo },
    ).attempt;
    expect(fs.existsSync(attempt.worktree_path)).toBe(true);

    const r = await runWork(db, ['--agent', 'coder', '--once', '--work-dir', path.join(dir, 'work'), '--', NODE, agentPath('echo.mjs')]);
    expect(r.code, r.stderr).toBe(0);
    const h = output(r).handled[0]!;
    expect(h).toMatchObject({ thread_id: attempt.thread_id, outcome: 'done', work_dir: attempt.worktree_path });
    const seen = JSON.parse(fs.readFileSync(path.join(path.dirname(h.log_file), 'env.json'), 'utf8')) as { cwd: string; env: Record<string, string> };
    expect(fs.realpathSync(seen.cwd)).toBe(fs.realpathSync(attempt.worktree_path));
    expect(seen.env.INBOX_WORKTREE).toBe(attempt.worktree_path);
    expect(seen.env.INBOX_WORK_DIR).toBe(attempt.worktree_path);
    expect(thread(db, attempt.thread_id).state).toBe('done');
  });
});

describe('inbox work: a command that fails (slow)', () => {
  it('a non-zero exit fails the thread with the status and the end of stderr; the runner exits 4', async () => {
    const { dir, db } = initDb();
    const tid = send(db, 'failer', 'doomed');
    const r = await runWork(db, ['--agent', 'failer', '--once', '--work-dir', path.join(dir, 'work'), '--', agentPath('fail.sh')]);
    expect(r.code, r.stderr).toBe(4);
    expect(output(r).handled).toMatchObject([{ thread_id: tid, outcome: 'failed', thread_state: 'failed', exit_code: 3, signal: null, timed_out: false }]);
    expect(thread(db, tid)).toMatchObject({ state: 'failed', claim_count: 1 });
    const failures = messages(db, tid).filter((m) => m.kind === 'failure');
    expect(failures).toHaveLength(1);
    expect(failures[0]!.body).toContain('status 3');
    expect(failures[0]!.body).toContain(`fatal: the disk is on fire (${tid})`);
    expect(failures[0]!.body).not.toContain('starting'); // stdout is not the reason
    expect(payload(failures[0])).toMatchObject({ runner: 'inbox work', exit_code: 3, timed_out: false });
    expect(messages(db, tid).filter((m) => m.kind === 'result')).toEqual([]);
  });

  it('--max-seconds kills the whole process group (the agent and its grandchild) and fails the thread as timed out', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const tid = send(db, 'slowpoke', 'never ends');
    const running = runWork(db, ['--agent', 'slowpoke', '--once', '--max-seconds', '1', '--work-dir', workDir, '--', agentPath('grandchild.sh')]);
    const here = claimDir(workDir, 'slowpoke', tid);
    const agentPid = await pidFile(path.join(here, 'agent.pid'));
    const childPid = await pidFile(path.join(here, 'child.pid'));

    const r = await running;
    expect(r.code, r.stderr).toBe(4);
    expect(output(r).handled).toMatchObject([
      { thread_id: tid, outcome: 'failed', thread_state: 'failed', timed_out: true, exit_code: null, signal: 'SIGTERM' },
    ]);
    expect(thread(db, tid).state).toBe('failed');
    const failure = messages(db, tid).find((m) => m.kind === 'failure');
    expect(failure?.body).toContain('timed out after 1 s');
    expect(payload(failure)).toMatchObject({ timed_out: true });
    await expectGone([agentPid, childPid], 'the timed-out agent and its grandchild');
  });

  it('a command that cannot be started fails its thread with status 127 and "could not start" (no runner crash)', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const byName = send(db, 'ghost', 'no such program');
    const byPath = send(db, 'ghost-path', 'no such file');
    const [a, b] = await Promise.all([
      runWork(db, ['--agent', 'ghost', '--once', '--work-dir', workDir, '--', 'inbox-work-test-no-such-program', '--flag']),
      runWork(db, ['--agent', 'ghost-path', '--once', '--work-dir', workDir, '--', './no/such/agent.sh']),
    ]);
    for (const [r, tid] of [
      [a, byName],
      [b, byPath],
    ] as const) {
      expect(r.code, r.stderr).toBe(4);
      expect(output(r).handled).toMatchObject([{ thread_id: tid, outcome: 'failed', thread_state: 'failed', exit_code: 127, timed_out: false }]);
      expect(thread(db, tid).state).toBe('failed');
      const failure = messages(db, tid).find((m) => m.kind === 'failure');
      expect(failure?.body).toContain('status 127');
      expect(failure?.body).toContain('could not start');
    }
    // A program given as a path is resolved from the runner's cwd, not the scratch dir.
    expect(messages(db, byPath).find((m) => m.kind === 'failure')?.body).toContain(path.join(ROOT, 'no/such/agent.sh'));
  });
});

describe('inbox work: the command reports itself (slow)', () => {
  it('a result the command posted stands even when it then exits 1 (outcome posted, no failure posted, exit 0)', async () => {
    const { dir, db } = initDb();
    const tid = send(db, 'selfie', 'reports itself');
    const r = await runWork(db, ['--agent', 'selfie', '--once', '--work-dir', path.join(dir, 'work'), '--', agentPath('self-result.sh')]);
    expect(r.code, r.stderr).toBe(0);
    expect(output(r).handled).toMatchObject([{ thread_id: tid, outcome: 'posted', thread_state: 'done', exit_code: 1 }]);
    expect(thread(db, tid).state).toBe('done');
    const msgs = messages(db, tid);
    expect(msgs.map((m) => m.kind)).toEqual(['task', 'progress', 'result']);
    expect(msgs[2]!.body).toBe(`the agent's own result for ${tid}`);
    expect(payload(msgs[2])).not.toHaveProperty('runner');
  });

  it('a failure the command posted itself stands (outcome posted, thread_state failed) and the runner exits 4', async () => {
    const { dir, db } = initDb();
    const tid = send(db, 'selfie-fail', 'gives up itself');
    const r = await runWork(db, ['--agent', 'selfie-fail', '--once', '--work-dir', path.join(dir, 'work'), '--', agentPath('self-result.sh'), 'fail']);
    expect(r.code, r.stderr).toBe(4);
    expect(output(r).handled).toMatchObject([{ thread_id: tid, outcome: 'posted', thread_state: 'failed', exit_code: 1 }]);
    expect(thread(db, tid).state).toBe('failed');
    const msgs = messages(db, tid);
    expect(msgs.map((m) => m.kind)).toEqual(['task', 'progress', 'failure']);
    expect(msgs[2]!.body).toBe(`the agent's own failure for ${tid}`);
  });

  it('asks a blocking question and waits for the answer; the runner keeps the lease alive meanwhile (with and without `wait --lease`)', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const attempts = dispatchRun(db, 'rq', [
      { task: 'T1', to: 'asker', body: 'Build the button; ask which colour.' },
      { task: 'T2', to: 'asker-nolease', body: 'Build the link; ask which colour.' },
    ]);
    const t1 = attempts.T1!.thread_id;
    const t2 = attempts.T2!.thread_id;
    const common = ['--once', '--lease-seconds', '6', '--max-seconds', '60', '--work-dir', workDir, '--'];
    const r1 = runWork(db, ['--agent', 'asker', ...common, NODE, agentPath('ask.mjs')]);
    const r2 = runWork(db, ['--agent', 'asker-nolease', ...common, NODE, agentPath('ask.mjs'), '--no-lease']);

    await until('both tasks blocked with a question', () => orchOk<{ tasks: unknown[] }>(db, ['blocked', '--run', 'rq']).tasks.length === 2, 30_000);
    expect([t1, t2].map((id) => thread(db, id).state)).toEqual(['blocked', 'blocked']);
    // Keep the questions waiting longer than a whole lease: only heartbeats keep it alive.
    await sleep(7_500);
    for (const id of [t1, t2]) {
      const row = thread(db, id);
      expect(row.state).toBe('blocked');
      expect(row.lease_expires_at).toBeGreaterThan(Date.now());
    }
    orchOk(db, ['answer', '--run', 'rq', '--task', 'T1', '--body', 'Teal, please.']);
    orchOk(db, ['answer', '--run', 'rq', '--task', 'T2', '--body', 'Orange, please.']);

    const [a, b] = await Promise.all([r1, r2]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(output(a).handled).toMatchObject([{ thread_id: t1, outcome: 'done', thread_state: 'done', exit_code: 0 }]);
    expect(output(b).handled).toMatchObject([{ thread_id: t2, outcome: 'done', thread_state: 'done', exit_code: 0 }]);
    for (const [id, colour] of [
      [t1, 'Teal'],
      [t2, 'Orange'],
    ] as const) {
      expect(thread(db, id)).toMatchObject({ state: 'done', claim_count: 1 });
      const results = messages(db, id).filter((m) => m.kind === 'result');
      expect(results.map((m) => m.body)).toEqual([`The leader answered: ${colour}, please.\n`]);
    }
    expect(taskStates(db, 'rq')).toEqual({ T1: 'done', T2: 'done' });
  });
});

describe('inbox work: several runners, --once (slow)', () => {
  it('two runners with --concurrency 2 share 10 threads: each handled exactly once', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const shared = path.join(dir, 'handled.txt');
    const ids = Array.from({ length: 10 }, (_, i) => send(db, 'pool', `job ${i}`));
    const args = ['--agent', 'pool', '--concurrency', '2', '--idle-exit-seconds', '2', '--work-dir', workDir, '--', agentPath('record.sh'), shared];
    const [a, b] = await Promise.all([runWork(db, args), runWork(db, args)]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const outs = [output(a), output(b)];
    expect(outs.map((o) => o.stopped)).toEqual(['idle', 'idle']);
    const handled = outs.flatMap((o) => o.handled);
    expect(handled.map((h) => h.outcome)).toEqual(Array(10).fill('done'));
    expect(handled.map((h) => h.thread_state)).toEqual(Array(10).fill('done'));
    expect(handled.map((h) => h.thread_id).sort()).toEqual([...ids].sort());
    const lines = fs.readFileSync(shared, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(10);
    expect([...new Set(lines)].sort()).toEqual([...ids].sort());
    for (const id of ids) {
      expect(thread(db, id)).toMatchObject({ state: 'done', claim_count: 1 });
      expect(
        messages(db, id)
          .filter((m) => m.kind === 'result')
          .map((m) => m.body),
      ).toEqual([`recorded ${id}\n`]);
    }
  });

  it('--once with nothing to claim exits 0 at once; --once with two threads handles exactly the oldest', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const none = await runWork(db, ['--agent', 'idle-agent', '--once', '--work-dir', workDir, '--', agentPath('fail.sh')]);
    expect(none.code, none.stderr).toBe(0);
    expect(output(none)).toEqual({ agent: 'idle-agent', handled: [], stopped: 'once' });

    const first = send(db, 'oncer', 'first');
    const second = send(db, 'oncer', 'second');
    const shared = path.join(dir, 'once.txt');
    // A relative program path: resolved from the runner's cwd (ROOT), while the command runs in its scratch dir.
    const r = await runWork(db, ['--agent', 'oncer', '--once', '--work-dir', workDir, '--', './test/fixtures/agents/record.sh', shared], ROOT);
    expect(r.code, r.stderr).toBe(0);
    const out = output(r);
    expect(out.stopped).toBe('once');
    expect(out.handled).toMatchObject([{ thread_id: first, outcome: 'done', thread_state: 'done' }]);
    expect(fs.readFileSync(shared, 'utf8')).toBe(`${first}\n`);
    expect(thread(db, first).state).toBe('done');
    expect(thread(db, second)).toMatchObject({ state: 'open', claim_count: 0 });
  });
});

describe('inbox work: stopping and losing the runner (slow)', () => {
  it('a SIGKILLed runner: its lease runs out and a second runner claims and finishes the thread', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const tid = send(db, 'crashy', 'survives a crash');
    const first = startWork(db, ['--agent', 'crashy', '--once', '--lease-seconds', '3', '--work-dir', workDir, '--', agentPath('sleeper.sh'), '20']);
    const agentPid = await pidFile(path.join(claimDir(workDir, 'crashy', tid), 'agent.pid'));
    expect(thread(db, tid)).toMatchObject({ state: 'claimed', claim_count: 1 });
    // The runner copies the agent's output into the log as it comes: wait for the first line.
    const logFile = path.join(claimDir(workDir, 'crashy', tid), 'output.log');
    await until('the agent output in the log', () => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes(`sleeping in ${tid}`), 10_000);

    first.child.kill('SIGKILL');
    expect((await first.done).signal).toBe('SIGKILL');
    // The runner cannot stop or reap its command when killed outright: the agent (its own
    // process group) is orphaned and keeps running. Clean it up by hand.
    expect(alive(agentPid)).toBe(true);
    process.kill(agentPid, 'SIGKILL');
    await expectGone([agentPid], 'the orphaned agent');

    await until(
      'the dead runner lease to run out',
      () =>
        ok<{ threads: { id: string; lease_expired: boolean }[] }>(db, ['list', '--agent', 'crashy']).threads.find((t) => t.id === tid)?.lease_expired === true,
      20_000,
    );
    const second = await runWork(db, ['--agent', 'crashy', '--once', '--work-dir', workDir, '--', NODE, agentPath('echo.mjs')]);
    expect(second.code, second.stderr).toBe(0);
    expect(output(second).handled).toMatchObject([
      { thread_id: tid, claim: 2, outcome: 'done', thread_state: 'done', exit_code: 0, log_file: path.join(claimDir(workDir, 'crashy', tid, 2), 'output.log') },
    ]);
    expect(thread(db, tid)).toMatchObject({ state: 'done', claim_count: 2 });
    expect(
      messages(db, tid)
        .filter((m) => m.kind === 'result')
        .map((m) => m.body),
    ).toEqual([`working on ${tid}\nfinal answer for ${tid}\n`]);
    // Each claim has its own directory and log; both logs stay, and the thread being done removed both scratch directories.
    expect(fs.readFileSync(logFile, 'utf8')).toContain(`sleeping in ${tid}`);
    expect(fs.readFileSync(path.join(claimDir(workDir, 'crashy', tid, 2), 'output.log'), 'utf8')).toContain(`final answer for ${tid}`);
    expect([1, 2].map((n) => fs.existsSync(scratch(workDir, 'crashy', tid, n)))).toEqual([false, false]);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('%s: no new claims, the command and its child are stopped, the thread is released, exit 0', async (sig) => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const agent = `stopper-${sig.toLowerCase()}`;
    const busy = send(db, agent, 'interrupted');
    const queued = send(db, agent, 'never started');
    const runner = startWork(db, ['--agent', agent, '--concurrency', '1', '--work-dir', workDir, '--', NODE, agentPath('tree.mjs')]);
    const here = claimDir(workDir, agent, busy);
    const agentPid = await pidFile(path.join(here, 'agent.pid'));
    const childPid = await pidFile(path.join(here, 'child.pid'));
    expect(alive(agentPid) && alive(childPid)).toBe(true);

    runner.child.kill(sig);
    const r = await runner.done;
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    const out = output(r);
    expect(out.stopped).toBe('stopped');
    expect(out.handled).toMatchObject([{ thread_id: busy, outcome: 'released', thread_state: 'open', signal: 'SIGTERM', exit_code: null, timed_out: false }]);

    expect(thread(db, busy)).toMatchObject({ state: 'open', claimed_by: null, claim_count: 1, lease_token: null });
    expect(thread(db, queued)).toMatchObject({ state: 'open', claim_count: 0 });
    const shown = ok<{ thread: { state: string } }>(db, ['show', '--thread', busy]);
    expect(shown.thread.state).toBe('open');
    expect(messages(db, busy).map((m) => m.kind)).toEqual(['task', 'progress']);
    await expectGone([agentPid, childPid], 'the agent and its child');
  });

  it.each(['reassign', 'cancel'] as const)('orch %s while the command runs: the runner stops it and reports lease_lost, posting nothing', async (how) => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const { T1: attempt } = dispatchRun(db, 'rx', [{ task: 'T1', to: 'victim', body: 'long job' }]);
    const tid = attempt!.thread_id;
    // --max-seconds only bounds the test: the runner must notice the lost lease long before it.
    const runner = startWork(db, [
      '--agent',
      'victim',
      '--once',
      '--lease-seconds',
      '3',
      '--max-seconds',
      '20',
      '--work-dir',
      workDir,
      '--',
      agentPath('sleeper.sh'),
      '40',
    ]);
    const agentPid = await pidFile(path.join(claimDir(workDir, 'victim', tid), 'agent.pid'));
    await until('the runner start message', () => messages(db, tid).some((m) => m.kind === 'progress'));

    let newThread: string | undefined;
    if (how === 'reassign') {
      newThread = orchOk<{ attempt: { thread_id: string } }>(db, ['reassign', '--run', 'rx', '--task', 'T1', '--to', 'successor']).attempt.thread_id;
    } else {
      orchOk(db, ['cancel', '--run', 'rx', '--task', 'T1', '--reason', 'out of scope']);
    }
    expect(thread(db, tid).state).toBe('cancelled');
    const lastBefore = Math.max(...messages(db, tid).map((m) => m.id));

    const r = await runner.done;
    expect(r.code, r.stderr).toBe(4);
    expect(output(r).handled).toMatchObject([
      { thread_id: tid, outcome: 'lease_lost', thread_state: 'cancelled', exit_code: null, signal: 'SIGTERM', timed_out: false },
    ]);
    await expectGone([agentPid], 'the agent of the cancelled thread');
    expect(thread(db, tid).state).toBe('cancelled');
    expect(messages(db, tid).filter((m) => m.id > lastBefore)).toEqual([]);
    expect(messages(db, tid).filter((m) => m.kind === 'result' || m.kind === 'failure')).toEqual([]);
    if (newThread !== undefined) expect(thread(db, newThread)).toMatchObject({ state: 'open', claim_count: 0 });
  });
});

describe('inbox work: bad input (slow)', () => {
  it('usage errors exit 2 and claim nothing', () => {
    const { db } = initDb();
    const tid = send(db, 'a', 'untouched');
    const cases: string[][] = [
      ['work', '--agent', 'a'], // no -- COMMAND
      ['work', '--agent', 'a', '--'], // -- with nothing after it
      ['work', '--agent', 'a', '--concurrency', '0', '--', 'true'],
      ['work', '--agent', 'a', '--concurrency', '65', '--', 'true'],
      ['work', '--agent', 'a', '--lease-seconds', '2', '--', 'true'],
      ['work', '--agent', 'a', '--max-seconds', '0', '--', 'true'],
      ['work', '--agent', 'a', '--idle-exit-seconds', 'soon', '--', 'true'],
      ['work', '--once', '--', 'true'], // no --agent
      ['list', '--', 'x'], // -- given to a command that takes none
      ['show', '--thread', tid, '--', 'x'],
    ];
    for (const args of cases) {
      const r = inbox(['--db', db, '--json', ...args]);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stdout).toBe('');
      expect(JSON.parse(r.stderr)).toHaveProperty('error.code');
    }
    expect(thread(db, tid)).toMatchObject({ state: 'open', claim_count: 0 });
    expect(messages(db, tid).map((m) => m.kind)).toEqual(['task']);
  });
});

describe('inbox work: a command that leaves a background job (slow)', () => {
  // The command's exit counts, not its pipes closing; what it left running in its process group is stopped.
  it('a command that exits 0 but leaves a background job holding its stdout is reported done, and the job is stopped', async () => {
    const { dir, db } = initDb();
    const workDir = path.join(dir, 'work');
    const tid = send(db, 'leaver', 'leaves a job behind');
    const r = await runWork(db, ['--agent', 'leaver', '--once', '--max-seconds', '2', '--work-dir', workDir, '--', agentPath('background.sh'), '5']);
    const leftover = path.join(claimDir(workDir, 'leaver', tid), 'child.pid');
    if (fs.existsSync(leftover)) strayPids.push(Number(fs.readFileSync(leftover, 'utf8')));
    expect(output(r).handled).toMatchObject([{ thread_id: tid, outcome: 'done', exit_code: 0, timed_out: false }]);
    expect(thread(db, tid).state).toBe('done');
    // The background job was stopped with the rest of the command's process group.
    const pid = Number(fs.readFileSync(leftover, 'utf8'));
    const deadline = Date.now() + 5000;
    let alive = true;
    while (alive && Date.now() < deadline) {
      try {
        process.kill(pid, 0);
        await new Promise((res) => setTimeout(res, 50));
      } catch {
        alive = false;
      }
    }
    expect(alive).toBe(false);
  });
});
