// Bad input and faults on PostgreSQL: a server that cannot be used is exit 6 with the matching code
// and one line (never a hang, never exit 1), a schema that is not ours is refused and left as it
// was, and a URL's password is never shown: not in output, errors, briefs, logs or the environment
// `inbox work` gives its agents (there it travels as PGPASSWORD only).
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type CliRun, expectJsonError, INBOX_BIN, ORCH_BIN, ROOT, tempDir } from './helpers.ts';
import { describePg, freshSchema, PG_BASE, pgExec, pgRows, withSchema } from './pg-server.ts';

const BRIEF_BIN = path.join(ROOT, 'packages/worker-brief/dist/orch-worker-brief.cjs');

/** Runs a built CLI; a hang is killed after 60 s (then the exit code is not what the test expects). */
function cli(bin: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): CliRun {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: options.cwd ?? ROOT,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
const inbox = (args: string[], options?: { cwd?: string; env?: Record<string, string> }) => cli(INBOX_BIN, args, options);
const orch = (args: string[], options?: { cwd?: string; env?: Record<string, string> }) => cli(ORCH_BIN, args, options);
const okJson = (r: CliRun) => {
  if (r.code !== 0) throw new Error(`exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
};

/** A URL like PG_BASE with another host:port, user or database. */
function variant(parts: { host?: string; user?: string; password?: string; database?: string; schema?: string }): string {
  const u = new URL(withSchema(PG_BASE, parts.schema ?? 'public'));
  if (parts.host !== undefined) u.host = parts.host;
  if (parts.user !== undefined) u.username = encodeURIComponent(parts.user);
  if (parts.password !== undefined) u.password = encodeURIComponent(parts.password);
  if (parts.database !== undefined) u.pathname = `/${parts.database}`;
  return u.toString();
}

/** Every command's plain-text error contract: exit `exit`, nothing on stdout, one line on stderr naming the problem. */
function expectTextError(r: CliRun, exit: number, message: RegExp): void {
  const where = `stdout=${JSON.stringify(r.stdout)} stderr=${JSON.stringify(r.stderr)}`;
  expect(r.code, where).toBe(exit);
  expect(r.stdout, where).toBe('');
  expect(r.stderr, where).toMatch(/^[^\n]+\n$/);
  expect(r.stderr, where).toMatch(message);
  expect(r.stderr, where).not.toMatch(/\bat .*\.(c?js|ts):\d+/);
}

describePg('PostgreSQL: a server that cannot be used (slow)', () => {
  it('nothing listening on the port: exit 6 DB_CANNOT_OPEN, one line, for inbox, orch and the brief', () => {
    const url = variant({ host: '127.0.0.1:1', schema: 'x' });
    expectJsonError(inbox(['--db', url, '--json', 'list']), 6, 'DB_CANNOT_OPEN', /127\.0\.0\.1:1/);
    expectJsonError(inbox(['--db', url, '--json', 'init']), 6, 'DB_CANNOT_OPEN');
    expectJsonError(orch(['--db', url, '--json', 'run', 'list']), 6, 'DB_CANNOT_OPEN');
    expectTextError(orch(['--db', url, 'status', '--run', 'r']), 6, /^orch: cannot reach the PostgreSQL server at 127\.0\.0\.1:1/);
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'd.json'), JSON.stringify({ attempt: { id: 'a', run_id: 'r', task_id: 't', thread_id: 'th' } }));
    const brief = cli(BRIEF_BIN, ['--db', url, '--json', '--dispatch-json', path.join(dir, 'd.json')]);
    expect([2, 6], brief.stderr).toContain(brief.code);
    if (brief.code === 6) expectJsonError(brief, 6, 'DB_CANNOT_OPEN');
  });

  it('a server that accepts the connection but never answers: DB_CANNOT_OPEN after connect_timeout, not a hang', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const url = `${variant({ host: `127.0.0.1:${port}`, schema: 'x' })}&connect_timeout=2`;
      const r = await new Promise<CliRun>((resolve) => {
        const child = spawn(process.execPath, [INBOX_BIN, '--db', url, '--json', 'list'], { env: { ...process.env, NO_COLOR: '1' } });
        let stdout = '';
        let stderr = '';
        const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (code) => {
          clearTimeout(guard);
          resolve({ code: code ?? -1, stdout, stderr });
        });
      });
      expectJsonError(r, 6, 'DB_CANNOT_OPEN');
      expect(sockets.length).toBeGreaterThan(0);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('a role the server does not know: exit 6 DB_AUTH_FAILED (the server answers 28000 under trust)', () => {
    const url = variant({ user: `nobody_${crypto.randomBytes(4).toString('hex')}`, schema: 'x' });
    expectJsonError(inbox(['--db', url, '--json', 'list']), 6, 'DB_AUTH_FAILED', /refused the login.*does not exist/);
    expectTextError(orch(['--db', url, 'run', 'list']), 6, /^orch: the PostgreSQL server at [^ ]+ refused the login/);
  });

  it('a database the server does not have: exit 6 DB_MISSING, also for init (which creates schemas, not databases)', () => {
    const url = variant({ database: `nodb_${crypto.randomBytes(4).toString('hex')}`, schema: 'x' });
    expectJsonError(inbox(['--db', url, '--json', 'list']), 6, 'DB_MISSING', /does not exist/);
    expectJsonError(inbox(['--db', url, '--json', 'init']), 6, 'DB_MISSING');
    expectJsonError(orch(['--db', url, '--json', 'run', 'init', '--run', 'r', '--goal', 'g']), 6, 'DB_MISSING');
  });
});

describePg('PostgreSQL: schemas that are not ours to use (slow)', () => {
  const role = `orch_t_${crypto.randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    await pgExec(undefined, `create role "${role}" login`);
  });
  afterAll(async () => {
    await pgExec(undefined, `drop owned by "${role}" cascade; drop role if exists "${role}"`);
  });

  it('a role without rights on the schema: exit 6 DB_PERMISSION for reads and writes, nothing changed', async () => {
    const { url, schema } = freshSchema();
    okJson(inbox(['--db', url, '--json', 'init']));
    okJson(orch(['--db', url, '--json', 'run', 'init', '--run', 'r', '--goal', 'g']));
    const before = await pgRows(schema, 'select * from orch_events order by id');
    const stranger = variant({ user: role, schema });
    expectJsonError(inbox(['--db', stranger, '--json', 'list']), 6, 'DB_PERMISSION', /permission denied/);
    expectJsonError(orch(['--db', stranger, '--json', 'task', 'add', '--run', 'r', '--task', 'T', '--title', 't']), 6, 'DB_PERMISSION');
    expectJsonError(inbox(['--db', stranger, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b']), 6, 'DB_PERMISSION');
    expectTextError(orch(['--db', stranger, 'status', '--run', 'r']), 6, /^orch: permission denied/);
    // USAGE on the schema but no rights on its tables: still DB_PERMISSION, not "not initialised" or "foreign".
    await pgExec(undefined, `grant usage on schema "${schema}" to "${role}"`);
    expectJsonError(inbox(['--db', stranger, '--json', 'list']), 6, 'DB_PERMISSION', /permission denied/);
    expectJsonError(orch(['--db', stranger, '--json', 'task', 'add', '--run', 'r', '--task', 'T', '--title', 't']), 6, 'DB_PERMISSION');
    expect(await pgRows(schema, 'select * from orch_events order by id')).toEqual(before);
    expect(await pgRows(schema, 'select count(*) as n from inbox_threads')).toEqual([{ n: 0 }]);
  });

  it('a role that may not create a schema: init is exit 6 DB_PERMISSION and creates nothing', async () => {
    const { schema } = freshSchema();
    // PostgreSQL 15 gives PUBLIC no CREATE on a database, so a plain login role cannot make a schema.
    expectJsonError(inbox(['--db', variant({ user: role, schema }), '--json', 'init']), 6, 'DB_PERMISSION');
    expect(await pgRows(undefined, 'select 1 from information_schema.schemata where schema_name = $1', [schema])).toEqual([]);
  });

  it('a schema without our tables: DB_NOT_INITIALISED for every command but init', async () => {
    const { url, schema } = freshSchema();
    await pgExec(undefined, `create schema "${schema}"`);
    for (const [bin, args] of [
      [INBOX_BIN, ['list']],
      [INBOX_BIN, ['claim', '--agent', 'w']],
      [ORCH_BIN, ['run', 'list']],
      [ORCH_BIN, ['doctor']],
    ] as const) {
      expectJsonError(cli(bin, ['--db', url, '--json', ...args]), 6, 'DB_NOT_INITIALISED', /inbox --db .* init/);
    }
    expect(await pgRows(undefined, 'select table_name from information_schema.tables where table_schema = $1', [schema])).toEqual([]);
  });

  it("a schema holding another program's table: init refuses DB_FOREIGN and leaves it untouched; other commands do not touch it either", async () => {
    const { url, schema } = freshSchema();
    await pgExec(
      undefined,
      `create schema "${schema}"; create table "${schema}".customers (id int primary key, name text); insert into "${schema}".customers values (1, 'ada')`,
    );
    const tables = () => pgRows(undefined, 'select table_name from information_schema.tables where table_schema = $1 order by 1', [schema]);
    const err = expectJsonError(inbox(['--db', url, '--json', 'init']), 6, 'DB_FOREIGN', /customers/);
    expect(err.details).toEqual({ tables: ['customers'] });
    expectJsonError(orch(['--db', url, '--json', 'run', 'init', '--run', 'r', '--goal', 'g']), 6);
    expectJsonError(inbox(['--db', url, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b']), 6);
    expect(await tables()).toEqual([{ table_name: 'customers' }]);
    expect(await pgRows(schema, 'select * from customers')).toEqual([{ id: 1, name: 'ada' }]);
  });
});

describePg('PostgreSQL: a URL with a password never shows it (slow)', () => {
  it('not in output, errors, the brief, dispatch text, doctor, the database, or inbox work: agents get INBOX_DB without it and PGPASSWORD', async () => {
    const dir = tempDir();
    const { schema } = freshSchema();
    const password = `Pw${crypto.randomBytes(6).toString('hex')}!x`;
    const url = variant({ user: 'root', password, schema });
    const leaks = (text: string) => text.includes(password) || text.includes(encodeURIComponent(password)) || text.includes(password.slice(0, 12));
    const seen: { what: string; r: CliRun }[] = [];
    const run = (what: string, bin: string, args: string[], cwd = dir) => {
      const r = cli(bin, ['--db', url, ...args], { cwd });
      seen.push({ what, r });
      return r;
    };

    okJson(run('init', INBOX_BIN, ['--json', 'init']));
    run('init again, text', INBOX_BIN, ['init']);
    okJson(run('run init', ORCH_BIN, ['--json', 'run', 'init', '--run', 'r', '--goal', 'g']));
    for (const t of ['T1', 'T2'])
      okJson(run(`task add ${t}`, ORCH_BIN, ['--json', 'task', 'add', '--run', 'r', '--task', t, '--title', t, '--default-to', 'w']));
    const dispatched = run('dispatch --json', ORCH_BIN, ['--json', 'dispatch', '--run', 'r', '--task', 'T1', '--execution-mode', 'analysis', '--body', 'go']);
    okJson(dispatched);
    expect(run('dispatch text', ORCH_BIN, ['dispatch', '--run', 'r', '--task', 'T2', '--execution-mode', 'analysis', '--body', 'go']).code).toBe(0);
    const saved = path.join(dir, 'dispatch.json');
    fs.writeFileSync(saved, dispatched.stdout);
    const brief = run('brief', BRIEF_BIN, ['--dispatch-json', saved]);
    expect(brief.code, brief.stderr).toBe(0);
    expect(brief.stdout).toContain(`?schema=${schema}`);
    expect(run('brief --format json', BRIEF_BIN, ['--dispatch-json', saved, '--format', 'json']).code).toBe(0);
    expect(run('status', ORCH_BIN, ['status', '--run', 'r']).code).toBe(0);
    expect(run('doctor', ORCH_BIN, ['--json', 'doctor']).code).toBe(0);
    expectJsonError(run('not found', ORCH_BIN, ['--json', 'task', 'show', '--run', 'r', '--task', 'nope']), 3);
    expectJsonError(run('usage', INBOX_BIN, ['--json', 'claim']), 2);
    // Errors that name the database.
    const elsewhere = [
      variant({ host: '127.0.0.1:1', user: 'root', password, schema }),
      variant({ user: 'root', password, schema: `${schema}_none` }),
      variant({ user: 'root', password, database: 'nodb_x', schema }),
    ];
    for (const bad of elsewhere) {
      for (const args of [['--json', 'list'], ['list']]) {
        const r = cli(INBOX_BIN, ['--db', bad, ...args]);
        expect(r.code).toBe(6);
        seen.push({ what: `error ${bad.replace(password, '***')} ${args.join(' ')}`, r });
      }
    }

    // inbox work: the agent writes its environment to a file and finishes.
    const envFile = path.join(dir, 'agent-env.json');
    const agent = path.join(dir, 'agent.cjs');
    fs.writeFileSync(agent, `require('node:fs').writeFileSync(${JSON.stringify(envFile)}, JSON.stringify(process.env)); console.log('finished');\n`);
    const workDir = path.join(dir, 'work');
    const work = run('work', INBOX_BIN, ['--json', 'work', '--agent', 'w', '--once', '--work-dir', workDir, '--', process.execPath, agent]);
    expect(work.code, work.stderr).toBe(0);
    const env = JSON.parse(fs.readFileSync(envFile, 'utf8')) as Record<string, string>;
    expect(env.PGPASSWORD).toBe(password);
    expect(env.INBOX_DB).toBe(withSchema(`postgres://root@${new URL(PG_BASE).host}${new URL(PG_BASE).pathname}`, schema));
    expect(Object.entries(env).filter(([k, v]) => k !== 'PGPASSWORD' && leaks(v))).toEqual([]);
    // The agent, given INBOX_DB and PGPASSWORD only, reaches the database.
    const agentCall = cli(INBOX_BIN, ['--db', env.INBOX_DB as string, '--json', 'list'], { env: { PGPASSWORD: password } });
    expect(agentCall.code, agentCall.stderr).toBe(0);
    const logs = fs.readdirSync(workDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.log'));
    expect(logs.length).toBeGreaterThan(0);
    for (const f of logs) expect(leaks(fs.readFileSync(path.join(workDir, f), 'utf8')), f).toBe(false);

    expect(seen.length).toBeGreaterThan(15);
    for (const { what, r } of seen) expect({ what, leaked: leaks(r.stdout) || leaks(r.stderr) }).toEqual({ what, leaked: false });
    // Nor in anything written to the database (the stored brief, events, attempts).
    const stored = await pgRows<{ t: string }>(
      schema,
      `select string_agg(body, ' ') as t from inbox_messages
       union all select string_agg(data, ' ') from orch_events
       union all select string_agg(row_to_json(a)::text, ' ') from orch_attempts a`,
    );
    expect(stored.map((s) => s.t ?? '').join(' ').length).toBeGreaterThan(0);
    expect(stored.some((s) => leaks(s.t ?? ''))).toBe(false);
  });
});
