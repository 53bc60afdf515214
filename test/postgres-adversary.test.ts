// Holes an outside attack on the PostgreSQL engine found (the built executables, hostile URLs):
// each is exit 6 with one line, never exit 1, never a password shown, never a file made, never
// tables in another schema than the one every message names.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { redactLocation, urlPassword } from '../packages/store/src/location.ts';
import { mapPgError } from '../packages/store/src/pg/errors.ts';
import { hash32 } from '../packages/store/src/pg/url.ts';
import { type CliRun, INBOX_BIN, ORCH_BIN, tempDir } from './helpers.ts';
import { type Cluster, describeCluster, startCluster } from './pg-cluster.ts';
import { describePg, freshSchema, PG_BASE, pgClient, pgExec, pgRows, withSchema } from './pg-server.ts';

const PASSWORD = 'Adv3rsaryPw';

function cli(bin: string, args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): CliRun {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', ...options.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: options.cwd, encoding: 'utf8', env: env as NodeJS.ProcessEnv, timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Exit 6, nothing on stdout, one line on stderr without a stack or the password. */
function expectUnusable(r: CliRun, message: RegExp): void {
  const where = `exit ${r.code} stdout=${JSON.stringify(r.stdout)} stderr=${JSON.stringify(r.stderr)}`;
  expect(r.code, where).toBe(6);
  expect(r.stdout, where).toBe('');
  expect(r.stderr, where).toMatch(/^[^\n]+\n$/);
  expect(r.stderr, where).toMatch(message);
  expect(r.stderr, where).not.toContain(PASSWORD);
  expect(r.stderr, where).not.toMatch(/internal error|\bat .*\.(c?js|ts):\d+/);
}

describePg('PostgreSQL: hostile URLs (slow)', () => {
  it('a URL without // (postgres:USER:PASSWORD@HOST/DB) is refused as a URL: exit 6, the password not shown, no file made', () => {
    const dir = tempDir();
    const host = new URL(PG_BASE).host;
    for (const url of [`postgres:root:${PASSWORD}@${host}/test`, `postgresql:root:${PASSWORD}@${host}/test?schema=x`]) {
      for (const [bin, args] of [
        [INBOX_BIN, ['init']],
        [INBOX_BIN, ['--json', 'list']],
        [ORCH_BIN, ['--json', 'run', 'init', '--run', 'r', '--goal', 'g']],
      ] as const) {
        expectUnusable(cli(bin, ['--db', url, ...args], { cwd: dir }), /not a valid PostgreSQL URL/);
      }
    }
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(redactLocation(`postgres:root:${PASSWORD}@h/db?password=${PASSWORD}&schema=s`)).toBe('postgres:h/db?schema=s');
    // The key file's password (sslpassword) is a password too.
    expect(redactLocation(`postgres://root@h/db?sslpassword=${PASSWORD}&schema=s`)).toBe('postgres://root@h/db?schema=s');
    expect(redactLocation(`postgres:root@h/db?schema=s&sslpassword=${PASSWORD}`)).toBe('postgres:h/db?schema=s');
  });

  it('a schema PostgreSQL reserves (pg_temp, whose tables vanish with the connection; pg_catalog; pg_toast): exit 6 for init and the rest, not exit 1', () => {
    for (const schema of ['pg_temp', 'pg_catalog', 'pg_toast', 'PG_x']) {
      for (const args of [['init'], ['--json', 'list']]) {
        expectUnusable(cli(INBOX_BIN, ['--db', withSchema(PG_BASE, schema), ...args]), /reserved by PostgreSQL/);
      }
    }
  });

  it('the init hint of a missing or empty schema is quoted for the shell (an & in the URL would otherwise run it in the background)', async () => {
    const { url, schema } = freshSchema();
    const withTimeout = `${url}&connect_timeout=10`;
    const missing = cli(INBOX_BIN, ['--db', withTimeout, '--json', 'list']);
    expect(missing.code).toBe(6);
    expect(JSON.parse(missing.stderr).error).toMatchObject({ code: 'DB_MISSING' });
    expect(JSON.parse(missing.stderr).error.message).toContain(`\`inbox --db '${withTimeout}' init\``);
    await pgExec(undefined, `create schema "${schema}"`);
    for (const [bin, args] of [
      [INBOX_BIN, ['list']],
      [ORCH_BIN, ['status', '--run', 'r']],
    ] as const) {
      const empty = cli(bin, ['--db', withTimeout, '--json', ...args]);
      expect(empty.code).toBe(6);
      expect(JSON.parse(empty.stderr).error.message).toContain(`\`inbox --db '${withTimeout}' init\``);
    }
  });

  it('a server that takes no writes (a read-only replica; here default_transaction_read_only): exit 6 for writes and init, reads work', () => {
    const { url } = freshSchema();
    expect(cli(INBOX_BIN, ['--db', url, '--json', 'init']).code).toBe(0);
    const readOnly = (u: string) => {
      const v = new URL(u);
      v.searchParams.set('options', '-c default_transaction_read_only=on');
      return v.toString();
    };
    for (const [bin, args] of [
      [INBOX_BIN, ['send', '--to', 'w', '--subject', 's', '--body', 'b']],
      [ORCH_BIN, ['run', 'init', '--run', 'r', '--goal', 'g']],
    ] as const) {
      const r = cli(bin, ['--db', readOnly(url), '--json', ...args]);
      expect(r.code, r.stderr).toBe(6);
      expect(JSON.parse(r.stderr).error.message).toMatch(/takes no writes/);
    }
    expectUnusable(cli(INBOX_BIN, ['--db', readOnly(freshSchema().url), 'init']), /takes no writes/);
    const list = cli(INBOX_BIN, ['--db', readOnly(url), '--json', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual({ threads: [] });
  });

  it('a deadlock or serialization failure still there after the retries is DB_BUSY (exit 6), not a bug (exit 1)', () => {
    for (const code of ['40001', '40P01']) {
      const err = Object.assign(new Error('deadlock detected'), { code, severity: 'ERROR' });
      expect(mapPgError(err)).toMatchObject({ code: 'DB_BUSY', exitCode: 6 });
    }
  });

  it('sslmode=require against a server without TLS: one line on stderr (the warning of the driver about sslmode kept off it)', () => {
    const { url } = freshSchema();
    const r = cli(INBOX_BIN, ['--db', `${url}&sslmode=require`, '--json', 'list']);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/^[^\n]+\n$/);
    expect(JSON.parse(r.stderr).error.code).toBe('DB_CANNOT_OPEN');
  });

  it('an unparseable URL (port out of range) keeps a password parameter out of the message', () => {
    const r = cli(INBOX_BIN, ['--db', `postgres://127.0.0.1:99999/test?password=${PASSWORD}&schema=s`, 'list']);
    expectUnusable(r, /not a valid PostgreSQL URL/);
  });

  it('a password with a % that starts no escape (100%) is read as the driver reads it, not a crash', () => {
    const { url } = freshSchema();
    const u = new URL(url);
    const withPercent = `${u.protocol}//root:${PASSWORD}100%@${u.host}${u.pathname}${u.search}`;
    expect(urlPassword(withPercent)).toBe(`${PASSWORD}100%`);
    expect(cli(INBOX_BIN, ['--db', withPercent, '--json', 'init']).code).toBe(0);
    const r = cli(INBOX_BIN, ['--db', withPercent, '--json', 'list']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ threads: [] });
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  });

  it('TLS files that cannot be read, or an sslmode the driver refuses: exit 6 DB_CANNOT_OPEN, not exit 1', () => {
    const { url } = freshSchema();
    for (const extra of [
      'sslrootcert=/nonexistent/root.crt',
      'sslcert=/nonexistent/c.crt&sslkey=/nonexistent/c.key',
      'sslmode=verify-ca&uselibpqcompat=true',
    ]) {
      const r = cli(INBOX_BIN, ['--db', `${url}&${extra}`, '--json', 'list']);
      expect(r.code, r.stderr).toBe(6);
      expect(JSON.parse(r.stderr).error.code).toBe('DB_CANNOT_OPEN');
    }
  });

  it('a search_path in the URL options does not move the tables out of ?schema=: init creates them there, and every command uses them', async () => {
    const { url, schema } = freshSchema();
    const other = `${schema}_other`;
    await pgExec(undefined, `create schema "${other}"`);
    try {
      const u = new URL(url);
      u.searchParams.set('options', `-c search_path=${other} -c statement_timeout=60000`);
      const hostile = u.toString();
      expect(cli(INBOX_BIN, ['--db', hostile, '--json', 'init']).code).toBe(0);
      const tables = async (s: string) =>
        (await pgRows<{ t: string }>(undefined, 'select tablename as t from pg_tables where schemaname = $1', [s])).map((r) => r.t);
      expect(await tables(other)).toEqual([]);
      expect(await tables(schema)).toContain('inbox_threads');
      const sent = cli(INBOX_BIN, ['--db', hostile, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b']);
      expect(sent.code, sent.stderr).toBe(0);
      // The plain URL sees what the hostile one wrote.
      expect(JSON.parse(cli(INBOX_BIN, ['--db', url, '--json', 'list']).stdout).threads).toHaveLength(1);
    } finally {
      await pgExec(undefined, `drop schema if exists "${other}" cascade`);
    }
  });

  it('a URL without a host (postgres:///DB?host=...) and no USER or PGUSER logs in as the operating system user, as libpq does', () => {
    const { schema } = freshSchema();
    const base = new URL(PG_BASE);
    if (base.username !== '') return; // the server's URL names its user: nothing to default
    const url = withSchema(`postgres:///${base.pathname.slice(1)}?host=${base.hostname}&port=${base.port || '5432'}`, schema);
    const env = { USER: undefined, LOGNAME: undefined, PGUSER: undefined };
    const r = cli(INBOX_BIN, ['--db', url, '--json', 'init'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(cli(INBOX_BIN, ['--db', url, '--json', 'list'], { env }).code).toBe(0);
  });
});

describePg('PostgreSQL: the server clock after a wait for the writers lock (slow)', () => {
  it('a write that waited seconds for the lock stamps the server time it ran at, not one half the wait ahead', async () => {
    const { url, schema } = freshSchema();
    expect(cli(INBOX_BIN, ['--db', url, '--json', 'init']).code).toBe(0);
    expect(cli(ORCH_BIN, ['--db', url, '--json', 'run', 'init', '--run', 'r', '--goal', 'g']).code).toBe(0);
    const holder = await pgClient(schema);
    try {
      // What every writer of this schema takes first (pg/transactions.ts): hold it for 4 s.
      await holder.query('begin');
      await holder.query('select pg_advisory_xact_lock($1, $2)', [0x6f726368 | 0, hash32(`schema:${schema}`)]);
      const writer = spawn(
        process.execPath,
        [ORCH_BIN, '--db', url, '--json', 'task', 'add', '--run', 'r', '--task', 'T', '--title', 't', '--default-to', 'w'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      writer.stdout.on('data', (d) => (stdout += d));
      writer.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => writer.on('close', resolve));
      // Until the writer waits for the lock.
      for (let i = 0; i < 300; i++) {
        const waiting = await pgRows<{ n: number }>(
          undefined,
          "select count(*) as n from pg_locks where locktype = 'advisory' and not granted and objid = $1::oid",
          [hash32(`schema:${schema}`) >>> 0],
        );
        if ((waiting[0]?.n ?? 0) > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 4000));
      const released = (await holder.query<{ now: number }>('select (extract(epoch from clock_timestamp()) * 1000)::float8 as now')).rows[0]?.now as number;
      await holder.query('commit');
      expect(await exited, stderr).toBe(0);
      const stamped = Date.parse(JSON.parse(stdout).task.created_at);
      // Before: about 2 s ahead (half the wait). After: the moment the lock came free, plus a commit.
      expect(stamped - released).toBeGreaterThanOrEqual(-50);
      expect(stamped - released).toBeLessThan(1000);
    } finally {
      await holder.end();
    }
  });
});

// The shared server trusts every login, so a password there proves nothing: here a private cluster
// asks one role for its password (scram-sha-256), and every way of giving it is tried for real.
describeCluster('PostgreSQL: a login that needs a password (private cluster) (slow)', () => {
  let cluster: Cluster;
  const user = 'alice';
  const secret = `Al1ce-${process.pid}-pw`;
  beforeAll(async () => {
    cluster = await startCluster();
    const admin = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(`create role ${user} login password '${secret}'`);
      await admin.query(`grant create on database postgres to ${user}`);
      const hba = (await admin.query<{ hba_file: string }>('show hba_file')).rows[0]?.hba_file as string;
      fs.writeFileSync(hba, `host all ${user} 127.0.0.1/32 scram-sha-256\n${fs.readFileSync(hba, 'utf8')}`);
      await admin.query('select pg_reload_conf()');
    } finally {
      await admin.end();
    }
  }, 240_000);
  afterAll(() => cluster?.stop());

  /** The cluster's URL for `alice`, with `password` in it when given. */
  const url = (schema: string, password?: string) => {
    const u = new URL(cluster.url(schema));
    u.username = user;
    if (password !== undefined) u.password = encodeURIComponent(password);
    return u.toString();
  };
  /** An environment with no password from anywhere but `extra` (HOME without a .pgpass). */
  const clean = (extra: Record<string, string> = {}) => ({ PGPASSWORD: undefined, PGPASSFILE: undefined, HOME: tempDir(), ...extra });

  it('no password, or a wrong one: exit 6 DB_AUTH_FAILED, one line, the wrong password not shown, nothing created', async () => {
    for (const [what, db] of [
      ['none', url('p_none')],
      ['wrong', url('p_none', PASSWORD)],
    ] as const) {
      for (const args of [['init'], ['--json', 'list']]) {
        const r = cli(INBOX_BIN, ['--db', db, ...args], { env: clean() });
        expect({ what, code: r.code }, r.stderr).toEqual({ what, code: 6 });
        expect(r.stderr).toMatch(/DB_AUTH_FAILED|refused the login|password/);
        expect(r.stderr).toMatch(/^[^\n]+\n$/);
        expect(r.stderr).not.toContain(PASSWORD);
        expect(r.stderr).not.toMatch(/internal error/);
      }
    }
    const wrongEnv = cli(INBOX_BIN, ['--db', url('p_none'), '--json', 'list'], { env: clean({ PGPASSWORD: PASSWORD }) });
    expect(wrongEnv.code, wrongEnv.stderr).toBe(6);
    expect(JSON.parse(wrongEnv.stderr).error.code).toBe('DB_AUTH_FAILED');
    const admin = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    const made = await admin.query("select 1 from pg_namespace where nspname = 'p_none'");
    await admin.end();
    expect(made.rows).toEqual([]);
  });

  it('the password from the URL, PGPASSWORD or ~/.pgpass: every command works', () => {
    const viaUrl = cli(INBOX_BIN, ['--db', url('p_ok', secret), '--json', 'init'], { env: clean() });
    expect(viaUrl.code, viaUrl.stderr).toBe(0);
    expect(viaUrl.stdout).not.toContain(secret);
    const viaEnv = cli(INBOX_BIN, ['--db', url('p_ok'), '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b'], {
      env: clean({ PGPASSWORD: secret }),
    });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    const home = tempDir();
    const pgpass = path.join(home, '.pgpass');
    fs.writeFileSync(pgpass, `127.0.0.1:${cluster.port}:postgres:${user}:${secret}\n`, { mode: 0o600 });
    const viaFile = cli(INBOX_BIN, ['--db', url('p_ok'), '--json', 'list'], { env: { ...clean(), HOME: home } });
    expect(viaFile.code, viaFile.stderr).toBe(0);
    expect(JSON.parse(viaFile.stdout).threads).toHaveLength(1);
    expect(viaFile.stderr).toBe('');
  });

  it('inbox work given the password in the URL: its agent, with INBOX_DB and PGPASSWORD only, really logs in', () => {
    const dir = tempDir();
    const db = url('p_work', secret);
    expect(cli(INBOX_BIN, ['--db', db, '--json', 'init'], { env: clean() }).code).toBe(0);
    expect(cli(INBOX_BIN, ['--db', db, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b'], { env: clean() }).code).toBe(0);
    const out = path.join(dir, 'agent-list.txt');
    const agent = path.join(dir, 'agent.cjs');
    // The agent drops everything but what inbox work gave it, then lists the inbox as its brief says.
    fs.writeFileSync(
      agent,
      `const { spawnSync } = require('node:child_process');
const env = { PATH: process.env.PATH, HOME: ${JSON.stringify(tempDir())}, INBOX_DB: process.env.INBOX_DB, PGPASSWORD: process.env.PGPASSWORD };
const r = spawnSync(process.execPath, [${JSON.stringify(INBOX_BIN)}, '--db', env.INBOX_DB, '--json', 'list'], { env, encoding: 'utf8' });
require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ code: r.status, db: env.INBOX_DB, stdout: r.stdout, stderr: r.stderr }));
console.log('finished');
`,
    );
    const work = cli(INBOX_BIN, ['--db', db, '--json', 'work', '--agent', 'w', '--once', '--work-dir', path.join(dir, 'work'), '--', process.execPath, agent], {
      env: clean(),
    });
    expect(work.code, work.stderr).toBe(0);
    const seen = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(seen.db).not.toContain(secret);
    expect(seen.code, seen.stderr).toBe(0);
    expect(JSON.parse(seen.stdout).threads).toHaveLength(1);
  });
});

describePg('PostgreSQL: a writer behind a stuck writer (slow)', () => {
  it('DB_BUSY while one transaction keeps the lock (the same holder at two busy timeouts), however busy the rest of the server is', async () => {
    const { url, schema } = freshSchema();
    const other = freshSchema();
    expect(cli(INBOX_BIN, ['--db', url, '--json', 'init']).code).toBe(0);
    expect(cli(INBOX_BIN, ['--db', other.url, '--json', 'init']).code).toBe(0);
    const holder = await pgClient(schema);
    const neighbour = await pgClient(other.schema);
    let busy = true;
    // Another project on the same server commits all along (that moved the server-wide transaction
    // counter the wait used to judge progress by, so the writer waited up to ten timeouts).
    const traffic = (async () => {
      while (busy) {
        await neighbour.query(
          "insert into inbox_threads (id, subject, assigned_to, created_by, state, claim_count, created_at, updated_at) values (md5(random()::text), 's', 'x', 'y', 'open', 0, 0, 0)",
        );
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      await holder.query('begin');
      await holder.query('select pg_advisory_xact_lock($1, $2)', [0x6f726368 | 0, hash32(`schema:${schema}`)]);
      const writer = spawn(process.execPath, [INBOX_BIN, '--db', url, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      writer.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => writer.on('close', resolve));
      // The lock is let go after 25 s at the latest (five busy timeouts): a writer that is still
      // waiting then would succeed, which is what the old judgement did.
      const code = await Promise.race([exited, new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), 25_000))]);
      await holder.query('commit');
      expect(code, stderr).toBe(6);
      expect(JSON.parse(stderr.trim().split('\n').at(-1) as string).error.code).toBe('DB_BUSY');
      expect(await pgRows(schema, 'select id from inbox_threads')).toEqual([]);
    } finally {
      busy = false;
      await traffic;
      await holder.end();
      await neighbour.end();
    }
  });
});
