// Holes an outside attack on the PostgreSQL engine found (the built executables, hostile URLs):
// each is exit 6 with one line, never exit 1, never a password shown, never a file made, never
// tables in another schema than the one every message names.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { expect, it } from 'vitest';
import { redactLocation, urlPassword } from '../packages/store/src/location.ts';
import { type CliRun, INBOX_BIN, ORCH_BIN, tempDir } from './helpers.ts';
import { describePg, freshSchema, PG_BASE, pgExec, pgRows, withSchema } from './pg-server.ts';

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
