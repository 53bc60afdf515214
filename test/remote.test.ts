import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ENGINE } from './engine.ts';
import {
  INBOX_BIN,
  ORCH_BIN,
  ROOT,
  commitAll,
  expectJsonError,
  git,
  initDb,
  initGitRepo,
  newGitRepo,
  ok,
  orchOk,
  rows,
  tempDir,
  watchRun,
  type CliRun,
} from './helpers.ts';

/**
 * Remote mode of the CLIs against real `orch serve` processes over loopback: the same output and
 * exit codes as on the database itself, the seed's Typical Commands over HTTP, a result whose
 * answer is lost applied once, `inbox work` across a server restart, and 16 remote runners.
 */

const BRIEF_BIN = path.join(ROOT, 'packages/worker-brief/dist/orch-worker-brief.cjs');
const NODE = process.execPath;

interface Server {
  url: string;
  port: number;
  child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const servers: Server[] = [];
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (servers.length > 0) await servers.pop()?.stop('SIGKILL');
  while (closers.length > 0) await closers.pop()?.();
});

/** Starts `orch serve` on `db` (port 0: any free one) in `cwd`; resolves once it listens. */
function serve(db: string, options: { port?: number; cwd?: string; args?: string[] } = {}): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [ORCH_BIN, '--db', db, 'serve', '--port', String(options.port ?? 0), ...(options.args ?? [])], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const exited = new Promise<void>((r) => child.once('close', () => r()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(out);
      if (m) {
        const s: Server = {
          url: m[1] ?? '',
          port: Number(m[2]),
          child,
          stop: async (signal = 'SIGTERM') => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            await exited;
            const i = servers.indexOf(s);
            if (i >= 0) servers.splice(i, 1);
          },
        };
        servers.push(s);
        resolve(s);
      }
    });
    child.once('close', (code) => reject(new Error(`orch serve exited ${code} before listening: ${err}`)));
  });
}

/** Runs a built CLI as a process without blocking this one. */
function run(bin: string, args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [bin, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, NO_COLOR: '1', ORCH_TOKEN: undefined, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function okRemote(bin: string, url: string, args: string[], cwd?: string): Promise<any> {
  const r = await run(bin, ['--db', url, '--json', ...args], cwd ? { cwd } : {});
  if (r.code !== 0) throw new Error(`${path.basename(bin)} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Splits a command line as bash would for the plain lines of the seed (quotes, no escapes). */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3] ?? '');
  return out;
}

describe('remote mode against orch serve (slow)', () => {
  it('prints the same stdout and exits the same, text and --json, as the same command on the database itself', async () => {
    const { db, dir } = initDb();
    orchOk(db, ['run', 'init', '--run', 'r1', '--goal', 'Ship it']);
    orchOk(db, ['task', 'add', '--run', 'r1', '--task', 'A', '--title', 'First', '--default-to', 'qa']);
    orchOk(db, ['task', 'add', '--run', 'r1', '--task', 'B', '--title', 'Second', '--default-to', 'qa']);
    orchOk(db, ['dep', 'add', '--run', 'r1', '--task', 'B', '--depends-on', 'A']);
    const d = orchOk(db, ['dispatch', '--run', 'r1', '--task', 'A', '--execution-mode', 'analysis', '--body', 'Look at the logs']);
    const thread = d.attempt.thread_id as string;
    const claimed = ok(db, ['claim', '--agent', 'qa', '--thread', thread]);
    ok(db, ['progress', '--thread', thread, '--lease', claimed.lease.token, '--body', 'Half way: "quotes" \u001b[31m and a tab\t']);
    const s = await serve(db, { cwd: dir });
    const cases: [string, string[]][] = [
      [INBOX_BIN, ['list']],
      [INBOX_BIN, ['list', '--agent', 'qa']],
      [INBOX_BIN, ['show', '--thread', thread]],
      [INBOX_BIN, ['show', '--thread', thread, '--after-message', '1', '--limit', '1']],
      [INBOX_BIN, ['show', '--thread', 'th_nope']],
      [INBOX_BIN, ['heartbeat', '--thread', thread, '--lease', 'ls_wrong']],
      [INBOX_BIN, ['progress', '--thread', thread, '--lease', 'ls_wrong', '--body', 'x']],
      [INBOX_BIN, ['claim', '--agent', 'nobody']],
      [INBOX_BIN, ['claim', '--agent', 'qa', '--lease-seconds', 'ten']],
      [INBOX_BIN, ['wait', '--thread', thread, '--after-message', '99', '--timeout-seconds', '0']],
      [ORCH_BIN, ['status', '--run', 'r1']],
      [ORCH_BIN, ['run', 'show', '--run', 'r1']],
      [ORCH_BIN, ['run', 'list']],
      [ORCH_BIN, ['task', 'show', '--run', 'r1', '--task', 'A']],
      [ORCH_BIN, ['ready', '--run', 'r1']],
      [ORCH_BIN, ['blocked', '--run', 'r1']],
      [ORCH_BIN, ['status', '--run', 'nope']],
      [ORCH_BIN, ['task', 'add', '--run', 'r1', '--task', 'A', '--title', 'Again']],
      [ORCH_BIN, ['dep', 'add', '--run', 'r1', '--task', 'A', '--depends-on', 'B']],
      [ORCH_BIN, ['dispatch', '--run', 'r1', '--task', 'B', '--execution-mode', 'analysis', '--body', 'x']],
      [ORCH_BIN, ['wait', '--run', 'r1', '--after-event', '0', '--timeout-seconds', '0']],
      [ORCH_BIN, ['task', 'add', '--run', 'r1', '--task', '../x', '--title', 'Bad id']],
    ];
    for (const [bin, args] of cases) {
      for (const json of [false, true]) {
        const flags = json ? ['--json', ...args] : args;
        const local = await run(bin, ['--db', db, ...flags], { cwd: dir });
        const remote = await run(bin, ['--db', s.url, ...flags], { cwd: dir });
        expect(remote, `${path.basename(bin)} ${flags.join(' ')}`).toEqual(local);
      }
    }
  });

  it("runs the seed's Typical Commands over HTTP with the same outcome as on a file", async () => {
    const dir = tempDir();
    const repo = path.join(dir, 'repo');
    fs.mkdirSync(repo);
    initGitRepo(repo, { 'README.md': '# blog\n', 'tasks/t1.md': 'Set up the app skeleton.\n' });
    const { db } = initDb();
    const s = await serve(db, { cwd: repo });
    const seed = fs.readFileSync(path.join(ROOT, 'test/fixtures/seed-typical-commands.md'), 'utf8');
    const lines = [...seed.matchAll(/^(\.\.?\/\S+ .*--db \.\/coord\.db.*)$/gm)].map((m) => m[1] ?? '');
    expect(lines).toHaveLength(16);
    const bins: Record<string, string> = { orch: ORCH_BIN, inbox: INBOX_BIN, 'orch-worker-brief': BRIEF_BIN };
    const worker = (args: string[]) => okRemote(INBOX_BIN, s.url, args, repo);
    let t2: { thread: string; lease: string } | undefined;
    const seen: string[] = [];
    for (const line of lines) {
      let w = words(line);
      let out: string | undefined;
      const gt = w.indexOf('>');
      if (gt >= 0) {
        out = path.join(dir, path.basename(w[gt + 1] ?? ''));
        w = w.slice(0, gt);
      }
      const tool = path.basename(w[0] ?? '');
      const args = w.slice(1).map((a) => (a === './coord.db' ? s.url : a.startsWith('/tmp/') ? path.join(dir, path.basename(a)) : a));
      const cmd = [tool, ...args.filter((a) => !a.startsWith('-') && !a.startsWith('http')).slice(0, tool === 'orch' ? 2 : 1)].join(' ');
      if (tool === 'inbox' && args.includes('init')) {
        // Not served: the server's database is made where the server runs (initDb did it).
        expectJsonError(await run(INBOX_BIN, args, { cwd: repo }), 2, 'USAGE', /does not run against a server URL/);
        seen.push('init');
        continue;
      }
      const r = await run(bins[tool] ?? '', args, { cwd: repo });
      if (out !== undefined) fs.writeFileSync(out, r.stdout);
      if (args.includes('retry')) {
        // The seed retries T7a, which it never adds: refused as on a file.
        expect(r.code).toBe(3);
        expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'NOT_FOUND', details: { task: 'T7a' } });
        seen.push('retry');
        continue;
      }
      expect(r.code, `${line}\n${r.stderr}`).toBe(0);
      expect(r.stderr).toBe('');
      const o = tool === 'orch-worker-brief' ? undefined : JSON.parse(r.stdout);
      seen.push(cmd);
      if (args.includes('dispatch') && args.includes('T1')) {
        expect(o.attempt).toMatchObject({ task: 'T1', execution_mode: 'code', base_ref: 'main', branch: 'orch/blog_mvp_001/T1/1' });
        expect(o.attempt.body).toBe('Set up the app skeleton.\n');
        expect(fs.existsSync(o.attempt.worktree_path)).toBe(true);
      }
      if (tool === 'orch-worker-brief') {
        const dispatch = JSON.parse(
          fs.readFileSync(path.join(dir, args.includes(path.join(dir, 't1-dispatch.json')) ? 't1-dispatch.json' : 't2-dispatch.json'), 'utf8'),
        );
        const t = dispatch.attempt.thread_id as string;
        expect(r.stdout).toContain(`Your thread is ${t}.`);
        // The brief points the worker at the server, not at the server's file.
        expect(r.stdout).toContain(s.url);
        const claim = await worker(['claim', '--agent', dispatch.attempt.assigned_to, '--thread', t]);
        if (dispatch.attempt.task === 'T1') {
          await worker(['result', '--thread', t, '--lease', claim.lease.token, '--body', 'Skeleton done.']);
        } else {
          await worker(['ask', '--thread', t, '--lease', claim.lease.token, '--body', 'Which post states?']);
          t2 = { thread: t, lease: claim.lease.token };
        }
      }
      if (args.includes('wait')) expect(o.events.map((e: any) => `${e.task}:${e.type}`)).toEqual(['T1:task_done', 'T2:task_blocked']);
      if (args.includes('blocked')) expect(o.tasks.map((t: any) => t.task.id)).toEqual(['T2']);
      if (args.includes('answer') && t2) {
        const got = await worker(['wait', '--thread', t2.thread, '--lease', t2.lease, '--timeout-seconds', '30']);
        expect(got.messages.map((m: any) => m.body)).toEqual(['MVP supports draft and published only.']);
        await worker(['result', '--thread', t2.thread, '--lease', t2.lease, '--body', 'Root cause found.']);
      }
      if (args.includes('cleanup')) expect(o).toMatchObject({ run: 'blog_mvp_001', dry_run: false });
    }
    expect(seen).toHaveLength(16);
    const status = await okRemote(ORCH_BIN, s.url, ['status', '--run', 'blog_mvp_001'], repo);
    expect(status.tasks.map((t: any) => `${t.id}:${t.state}`)).toEqual(['T1:done', 'T2:done']);
  });

  it('a result whose answer is lost on the way back is sent again with the same idempotency key and applies once', async () => {
    const { db, dir } = initDb();
    ok(db, ['send', '--to', 'qa', '--subject', 'Task', '--body', 'do it']);
    const c = ok(db, ['claim', '--agent', 'qa']);
    const s = await serve(db, { cwd: dir });
    // A proxy that passes the first request on and cuts the connection as the answer comes back.
    let connections = 0;
    const proxy = net.createServer((client) => {
      connections++;
      const first = connections === 1;
      const upstream = net.connect(s.port, '127.0.0.1');
      client.pipe(upstream);
      upstream.on('data', (d) => {
        if (first) {
          client.destroy();
          upstream.destroy();
        } else client.write(d);
      });
      upstream.on('end', () => client.end());
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    const url = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    const r = await run(INBOX_BIN, ['--db', url, '--json', 'result', '--thread', c.thread.id, '--lease', c.lease.token, '--body', 'the answer']);
    expect(r.code, r.stderr).toBe(0);
    expect(connections).toBeGreaterThanOrEqual(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ thread: { id: c.thread.id, state: 'done' }, message: { kind: 'result', body: 'the answer' } });
    expect(rows(db, "SELECT count(*) AS n FROM inbox_messages WHERE thread_id = ? AND kind = 'result'", c.thread.id)).toEqual([{ n: 1 }]);
  });

  it('inbox work against a server restarted mid-job finishes the job', async () => {
    const { db, dir } = initDb();
    const sent = ok(db, ['send', '--to', 'qa', '--subject', 'Slow task', '--body', 'take your time']);
    const s = await serve(db, { cwd: dir });
    const agent = path.join(dir, 'agent.mjs');
    fs.writeFileSync(agent, "setTimeout(() => console.log('finished after the restart'), 4000);\n");
    const runner = watchRun(
      spawn(NODE, [INBOX_BIN, '--db', s.url, '--json', 'work', '--agent', 'qa', '--once', '--lease-seconds', '30', '--', NODE, agent], {
        cwd: dir,
        env: { ...process.env, NO_COLOR: '1', ORCH_RETRY_SECONDS: '20' },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
      'inbox work',
      60_000,
    );
    // Once the runner has claimed and started the agent, the server dies and comes back.
    for (let i = 0; i < 100 && rows(db, "SELECT count(*) AS n FROM inbox_messages WHERE kind = 'progress'")[0]?.n !== 1; i++)
      await new Promise((r) => setTimeout(r, 100));
    await s.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    await serve(db, { cwd: dir, port: s.port });
    const done = await runner.done;
    expect(done.code, done.stderr).toBe(0);
    const out = JSON.parse(done.stdout);
    expect(out.handled).toMatchObject([{ thread_id: sent.thread.id, outcome: 'done', thread_state: 'done' }]);
    const results = rows<{ body: string }>(db, "SELECT body FROM inbox_messages WHERE thread_id = ? AND kind = 'result'", sent.thread.id);
    expect(results.map((m) => m.body.trim())).toEqual(['finished after the restart']);
  });

  it('Ctrl-C on a remote wait ends the wait on the server (its slot is free again)', async () => {
    const { db, dir } = initDb();
    const sent = ok(db, ['send', '--to', 'qa', '--subject', 'Quiet', '--body', 'nothing will happen']);
    const s = await serve(db, { cwd: dir, args: ['--max-streams', '1'] });
    const waitArgs = (seconds: number) => [
      '--db',
      s.url,
      '--json',
      'wait',
      '--thread',
      sent.thread.id,
      '--after-message',
      '1',
      '--timeout-seconds',
      String(seconds),
    ];
    const waiter = watchRun(
      spawn(NODE, [INBOX_BIN, ...waitArgs(60)], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] }),
      'remote wait',
      30_000,
    );
    // While it waits, the one slot is taken: a second wait is refused (429, then exit 6 with no retry budget).
    let refused: CliRun | undefined;
    for (let i = 0; i < 50; i++) {
      refused = await run(INBOX_BIN, waitArgs(0), { cwd: dir, env: { ORCH_RETRY_SECONDS: '0' } });
      if (refused.code !== 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expectJsonError(refused as CliRun, 6, 'RATE_LIMITED');
    waiter.child.kill('SIGINT');
    const ended = await waiter.done;
    expect(ended.signal).toBe('SIGINT');
    let again: CliRun | undefined;
    for (let i = 0; i < 20; i++) {
      again = await run(INBOX_BIN, waitArgs(0), { cwd: dir, env: { ORCH_RETRY_SECONDS: '0' } });
      if (again.code === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(again?.code, again?.stderr).toBe(0);
    expect(JSON.parse(again?.stdout ?? '{}').timed_out).toBe(true);
  });

  it('with tokens: a worker token acts as its agent only, inbox work runs with one from --token-file (its agent reports with it too), no token or a revoked one is 401; no token is ever printed', async () => {
    const { db, dir } = initDb();
    const worker = orchOk(db, ['token', 'create', '--role', 'worker', '--agent', 'qa', '--name', 'qa-box']);
    const leader = orchOk(db, ['token', 'create', '--role', 'leader', '--name', 'lead']);
    const mine = ok(db, ['send', '--to', 'qa', '--subject', 'Mine', '--body', 'for qa']);
    const theirs = ok(db, ['send', '--to', 'other', '--subject', 'Theirs', '--body', 'for other']);
    const s = await serve(db, { cwd: dir });
    const as = (token: string | undefined, args: string[]) => run(INBOX_BIN, ['--db', s.url, '--json', ...args], { cwd: dir, env: { ORCH_TOKEN: token } });
    const all: CliRun[] = [];
    const keep = (r: CliRun) => {
      all.push(r);
      return r;
    };
    expectJsonError(keep(await as(undefined, ['list'])), 4, 'UNAUTHENTICATED');
    expectJsonError(keep(await as(worker.token, ['show', '--thread', theirs.thread.id])), 4, 'FORBIDDEN');
    expectJsonError(keep(await run(ORCH_BIN, ['--db', s.url, '--json', 'run', 'list'], { env: { ORCH_TOKEN: worker.token } })), 4, 'FORBIDDEN');
    expect(keep(await run(ORCH_BIN, ['--db', s.url, '--json', 'run', 'list'], { env: { ORCH_TOKEN: leader.token } })).code).toBe(0);

    // The runner with the worker token in an owner-only file; its agent posts a progress note itself with $INBOX_BIN.
    const tokenFile = path.join(dir, 'qa.token');
    fs.writeFileSync(tokenFile, `${worker.token}\n`, { mode: 0o600 });
    const agent = path.join(dir, 'agent.cjs');
    fs.writeFileSync(
      agent,
      [
        "const { spawnSync } = require('node:child_process');",
        'const e = process.env;',
        "const r = spawnSync(process.execPath, [e.INBOX_BIN, '--db', e.INBOX_DB, 'progress', '--thread', e.INBOX_THREAD_ID, '--lease', e.INBOX_LEASE, '--body', 'agent here'], { encoding: 'utf8' });",
        'if (r.status !== 0) { console.error(r.stderr); process.exit(1); }',
        "console.log('done with ' + e.INBOX_THREAD_ID);",
      ].join('\n'),
    );
    const w = keep(
      await run(INBOX_BIN, ['--db', s.url, '--token-file', tokenFile, '--json', 'work', '--agent', 'qa', '--once', '--', NODE, agent], { cwd: dir }),
    );
    expect(w.code, w.stderr).toBe(0);
    expect(JSON.parse(w.stdout).handled).toMatchObject([{ thread_id: mine.thread.id, outcome: 'done' }]);
    const msgs = rows<{ kind: string; body: string; author: string }>(
      db,
      'SELECT kind, body, author FROM inbox_messages WHERE thread_id = ? ORDER BY id',
      mine.thread.id,
    );
    expect(msgs.map((m) => m.kind)).toEqual(['task', 'progress', 'progress', 'result']);
    expect(msgs.find((m) => m.body === 'agent here')).toBeDefined();
    // Another agent's work: refused for this token.
    const other = keep(
      await run(INBOX_BIN, ['--db', s.url, '--token-file', tokenFile, '--json', 'work', '--agent', 'other', '--once', '--', NODE, '-e', '0'], { cwd: dir }),
    );
    expectJsonError(other, 4, 'FORBIDDEN');
    expect(rows(db, 'SELECT state FROM inbox_threads WHERE id = ?', theirs.thread.id)).toEqual([{ state: 'open' }]);

    orchOk(db, ['token', 'revoke', '--name', 'qa-box']);
    expectJsonError(keep(await as(worker.token, ['list'])), 4, 'UNAUTHENTICATED');
    for (const r of all) {
      expect(r.stdout + r.stderr).not.toContain(worker.token);
      expect(r.stdout + r.stderr).not.toContain(leader.token);
    }
  });

  it('code mode across machines with only a URL: the leader dispatches --remote through the server, the worker runs inbox work --db URL --repo CLONE, the leader merges through the server', async () => {
    const { db, dir } = initDb();
    const bare = path.join(fs.realpathSync(tempDir('orch-remote-bare-')), 'shared.git');
    git(path.dirname(bare), 'init', '-q', '--bare', '--initial-branch=main', bare);
    const leaderRepo = newGitRepo('orch-remote-leader-', { 'a.txt': 'one\n' });
    git(leaderRepo, 'remote', 'add', 'origin', bare);
    git(leaderRepo, 'push', '-q', 'origin', 'main');
    fs.writeFileSync(path.join(leaderRepo, 'b.txt'), 'leader only\n');
    commitAll(leaderRepo, 'leader-only commit');
    const clone = path.join(fs.realpathSync(tempDir('orch-remote-worker-')), 'clone');
    git(path.dirname(clone), 'clone', '-q', bare, clone);
    for (const [k, v] of [
      ['user.name', 'Worker'],
      ['user.email', 'worker@example.com'],
      ['commit.gpgsign', 'false'],
    ])
      git(clone, 'config', k ?? '', v ?? '');
    const s = await serve(db, { cwd: dir });
    const leader = (args: string[]) => okRemote(ORCH_BIN, s.url, args, leaderRepo);
    await leader(['run', 'init', '--run', 'r', '--goal', 'across machines']);
    await leader(['task', 'add', '--run', 'r', '--task', 'T1', '--title', 'Add a file', '--default-to', 'far']);
    const d = await leader([
      'dispatch',
      '--run',
      'r',
      '--task',
      'T1',
      '--execution-mode',
      'code',
      '--repo-path',
      leaderRepo,
      '--base-ref',
      'main',
      '--remote',
      'origin',
      '--body',
      'add c.txt',
    ]);
    expect(d.attempt.worktree_path).toBeNull();
    const agent = ['/bin/sh', '-c', 'set -e\necho far > c.txt\ngit add c.txt\ngit commit -q -m "worker adds c.txt"\necho committed'];
    const w = await run(
      INBOX_BIN,
      ['--db', s.url, '--json', 'work', '--agent', 'far', '--once', '--repo', clone, '--work-dir', path.join(dir, 'work'), '--', ...agent],
      {
        cwd: dir,
        env: { GIT_TERMINAL_PROMPT: '0' },
      },
    );
    expect(w.code, w.stderr).toBe(0);
    expect(JSON.parse(w.stdout).handled).toMatchObject([{ outcome: 'done', thread_state: 'done' }]);
    const merged = await leader(['merge', '--run', 'r', '--task', 'T1']);
    expect(merged).toMatchObject({ into: 'main', merged: true });
    expect(git(leaderRepo, 'show', 'main:c.txt')).toBe('far');
  });

  // The demo always runs on a SQLite file of its own: once is enough.
  it.skipIf(ENGINE === 'postgres')('npm run demo -- --remote runs the whole demo over HTTP with the same story as on the file', async () => {
    const demo = (args: string[]) => run(path.join(ROOT, 'scripts/demo.mjs'), args);
    const [local, remote] = [await demo([]), await demo(['--remote'])];
    expect(remote.code, remote.stderr + remote.stdout.slice(-2000)).toBe(0);
    expect(remote.stdout.trim().endsWith('demo: ok')).toBe(true);
    expect(remote.stdout).toMatch(/orch serve listens on http:\/\/127\.0\.0\.1:\d+/);
    expect(remote.stdout).toMatch(/leader\$ orch --db http:\/\/127\.0\.0\.1:\d+ status --run demo/);
    const story = (out: string) => out.slice(out.indexOf('What happened'), out.indexOf('\nRun demo is'));
    expect(local.code, local.stderr).toBe(0);
    expect(story(remote.stdout)).toBe(story(local.stdout));
    expect(story(remote.stdout)).toMatch(/D {4}added \(after A, B\) .* retry: attempt 2 .* done/);
  });

  it('16 remote runners over loopback: each thread claimed by one, no result lost', async () => {
    const { db, dir } = initDb();
    const THREADS = 48;
    for (let i = 0; i < THREADS; i++) ok(db, ['send', '--to', 'w', '--subject', `job ${i}`, '--body', `job ${i}`]);
    const s = await serve(db, { cwd: dir });
    const agent = path.join(dir, 'agent.mjs');
    fs.writeFileSync(agent, "setTimeout(() => console.log('done by ' + process.env.INBOX_THREAD_ID), 50);\n");
    const runners = Array.from({ length: 16 }, (_, i) =>
      watchRun(
        spawn(NODE, [INBOX_BIN, '--db', s.url, '--json', 'work', '--agent', 'w', '--idle-exit-seconds', '3', '--', NODE, agent], {
          cwd: dir,
          env: { ...process.env, NO_COLOR: '1' },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
        `runner ${i}`,
        110_000,
      ),
    );
    const outs = await Promise.all(runners.map((r) => r.done));
    const handled: string[] = [];
    for (const o of outs) {
      expect(o.code, o.stderr).toBe(0);
      for (const h of JSON.parse(o.stdout).handled) {
        expect(h.outcome).toBe('done');
        handled.push(h.thread_id);
      }
    }
    expect(handled.length).toBe(THREADS);
    expect(new Set(handled).size).toBe(THREADS);
    const threads = rows<{ state: string; claim_count: number }>(db, 'SELECT state, claim_count FROM inbox_threads');
    expect(threads.length).toBe(THREADS);
    expect(threads.every((t) => t.state === 'done' && t.claim_count === 1)).toBe(true);
    const results = rows<{ thread_id: string; body: string }>(db, "SELECT thread_id, body FROM inbox_messages WHERE kind = 'result'");
    expect(results.length).toBe(THREADS);
    for (const r of results) expect(r.body.trim()).toBe(`done by ${r.thread_id}`);
  });
});
