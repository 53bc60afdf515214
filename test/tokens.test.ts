// `orch token create | list | revoke` as real processes of the built CLI, on both engines: the
// database keeps only each token's SHA-256 (no column holds the token), list shows no secret, names
// are unique among live tokens, bad input exits 2 and writes nothing, and the file keeps its mode.
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshDb, onPostgres, PG_URL, schemaPrefix, sqliteOnly, withSchema } from './engine.ts';
import { ROOT, expectJsonError, inbox, initDb, orch, orchOk, rows, snapshot, tempDir } from './helpers.ts';

const TOKEN = /^orch_[A-Za-z0-9_-]{43}$/;

describe('orch token (slow)', () => {
  it('prints a token once and stores only its hash', () => {
    const { db } = initDb();
    const made = orchOk(db, ['token', 'create', '--role', 'worker', '--agent', 'qa', '--expires-in', '7d']);
    expect(Object.keys(made)).toEqual(['token', 'id', 'name', 'role', 'agent', 'expires_at']);
    expect(made.token).toMatch(TOKEN);
    expect(made).toMatchObject({ name: 'qa', role: 'worker', agent: 'qa' });
    expect(made.id).toMatch(/^tok_/);
    expect(Date.parse(made.expires_at) - Date.now()).toBeGreaterThan(6.9 * 86_400_000);

    const stored = rows<{ hash: string }>(db, 'select hash from server_tokens where id = ?', made.id);
    expect(stored).toEqual([{ hash: crypto.createHash('sha256').update(made.token).digest('hex') }]);
    // Nothing in the whole database holds the token's text, nor its random part.
    const whole = JSON.stringify(snapshot(db));
    expect(whole).not.toContain(made.token);
    expect(whole).not.toContain(made.token.slice(5));

    // The text form prints the token alone on its first line.
    const r = orch(['--db', db, 'token', 'create', '--role', 'leader']);
    expect(r.code, r.stderr).toBe(0);
    const [first, ...rest] = r.stdout.split('\n');
    expect(first).toMatch(TOKEN);
    expect(rest.join('\n')).toMatch(/only time the token is shown/);
    expect(rest.join('\n')).not.toContain(first);
  });

  it('lists tokens without their secret or hash, newest first, with their state', () => {
    const { db } = initDb();
    expect(orchOk(db, ['token', 'list'])).toEqual({ tokens: [] });
    const a = orchOk(db, ['token', 'create', '--role', 'leader']);
    const b = orchOk(db, ['token', 'create', '--role', 'leader']);
    const c = orchOk(db, ['token', 'create', '--role', 'worker', '--agent', 'w1', '--name', 'ci-runner-1']);
    expect([a.name, b.name, c.name]).toEqual(['leader', 'leader-2', 'ci-runner-1']);
    orchOk(db, ['token', 'revoke', '--token-id', b.id]);
    const listed = orchOk(db, ['token', 'list']);
    expect(listed.tokens.map((t: { id: string; state: string }) => [t.id, t.state])).toEqual([
      [c.id, 'live'],
      [b.id, 'revoked'],
      [a.id, 'live'],
    ]);
    expect(Object.keys(listed.tokens[0])).toEqual(['id', 'name', 'role', 'agent', 'state', 'created_at', 'expires_at', 'revoked_at', 'last_used_at']);
    const hashes = rows<{ hash: string }>(db, 'select hash from server_tokens').map((r) => r.hash);
    const text = orch(['--db', db, 'token', 'list']).stdout + JSON.stringify(listed);
    for (const secret of [a.token, b.token, c.token, ...hashes]) expect(text).not.toContain(secret);
    expect(text).toMatch(/leader-2 +leader +- +revoked/);
  });

  it('revokes by id or by name; again changes nothing; unknown is exit 3', () => {
    const { db } = initDb();
    const t = orchOk(db, ['token', 'create', '--role', 'worker', '--agent', 'qa']);
    const first = orchOk(db, ['token', 'revoke', '--name', 'qa']);
    expect(first.revoked).toBe(true);
    expect(first.token).toMatchObject({ id: t.id, state: 'revoked' });
    expect(orchOk(db, ['token', 'revoke', '--token-id', t.id]).revoked).toBe(false);
    expectJsonError(orch(['--db', db, '--json', 'token', 'revoke', '--name', 'qa']), 3, 'NOT_FOUND', /no live token named qa/);
    expectJsonError(orch(['--db', db, '--json', 'token', 'revoke', '--token-id', 'tok_nope']), 3, 'NOT_FOUND');
    // The name of a revoked token is free again.
    expect(orchOk(db, ['token', 'create', '--role', 'worker', '--agent', 'qa']).name).toBe('qa');
  });

  it('refuses bad input with exit 2 (or 4 for a taken name) and writes nothing', () => {
    const { db } = initDb();
    orchOk(db, ['token', 'create', '--role', 'leader', '--name', 'taken']);
    const before = snapshot(db);
    const cases: [string[], number, string, RegExp?][] = [
      [['create', '--role', 'leader', '--expires-in', '0m'], 2, 'VALIDATION', /--expires-in/],
      [['create', '--role', 'leader', '--expires-in', '7'], 2, 'VALIDATION', /--expires-in/],
      [['create', '--role', 'leader', '--expires-in', '7x'], 2, 'VALIDATION'],
      [['create', '--role', 'leader', '--expires-in=-1d'], 2, 'VALIDATION'],
      [['create', '--role', 'leader', '--expires-in', '1.5h'], 2, 'VALIDATION'],
      [['create', '--role', 'leader', '--expires-in', '3651d'], 2, 'VALIDATION'],
      [['create', '--role', 'leader', '--expires-in', ''], 2, 'VALIDATION'],
      [['create', '--role', 'admin'], 2, 'VALIDATION', /--role/],
      [['create', '--role', 'worker'], 2, 'VALIDATION', /--agent: is required for a worker token/],
      [['create', '--role', 'leader', '--agent', 'qa'], 2, 'VALIDATION', /--agent/],
      [['create', '--role', 'worker', '--agent', '../etc'], 2, 'VALIDATION'],
      [['create', '--role', 'leader', '--name', 'a b'], 2, 'VALIDATION'],
      [['create', '--role', 'leader', '--name', 'taken'], 4, 'CONFLICT', /already named taken/],
      [['revoke'], 2, 'VALIDATION', /exactly one/],
      [['revoke', '--token-id', 'tok_1', '--name', 'taken'], 2, 'VALIDATION', /exactly one/],
      [['list', '--limit', '0'], 2, 'VALIDATION'],
    ];
    for (const [args, exit, code, message] of cases) expectJsonError(orch(['--db', db, '--json', 'token', ...args]), exit, code, message);
    expect(snapshot(db)).toEqual(before);
  });

  it('works on the database itself only: a server URL is exit 2, an uninitialised database exit 6', () => {
    expectJsonError(orch(['--db', 'http://127.0.0.1:7420', '--json', 'token', 'list']), 2, 'USAGE', /does not run against a server URL/);
    const dir = tempDir();
    const db = freshDb(dir);
    if (!onPostgres) fs.writeFileSync(db, '');
    const r = orch(['--db', db, '--json', 'token', 'create', '--role', 'leader']);
    expect(r.code, r.stderr).toBe(6);
  });

  sqliteOnly.it('a copy from a SQLite file', 'orch copy moves the tokens to PostgreSQL with the rest (hashes only)', () => {
    const { db } = initDb();
    const live = orchOk(db, ['token', 'create', '--role', 'worker', '--agent', 'qa']);
    const gone = orchOk(db, ['token', 'create', '--role', 'leader']);
    orchOk(db, ['token', 'revoke', '--token-id', gone.id]);
    const target = withSchema(PG_URL, `${schemaPrefix()}${crypto.randomBytes(4).toString('hex')}`);
    // inbox copy cannot create the tokens table, and says which command can.
    expectJsonError(inbox(['--json', 'copy', '--from', db, '--to', target]), 6, 'DB_FOREIGN', /server tables .*`orch copy`/);
    const run = orch(['--json', 'copy', '--from', db, '--to', target]);
    expect(run.code, run.stderr).toBe(0);
    const copied = JSON.parse(run.stdout);
    expect(copied.schema_version.server).toBe(1);
    expect(copied.tables.server_tokens).toEqual({ rows: 2 });
    expect(orchOk(target, ['token', 'list'])).toEqual(orchOk(db, ['token', 'list']));
    expect(rows(target, 'select hash from server_tokens where id = ?', live.id)).toEqual(rows(db, 'select hash from server_tokens where id = ?', live.id));
  });

  sqliteOnly.it('copies of the built folder', 'the token commands read neither the server bundle (orch-server.cjs) nor the MCP SDK', () => {
    const { db } = initDb();
    const dir = tempDir();
    const to = path.join(dir, 'orch');
    fs.cpSync(path.join(ROOT, 'packages/orch/dist'), to, { recursive: true });
    for (const lib of ['orch-server.cjs', 'mcp-sdk.cjs']) {
      expect(fs.existsSync(path.join(to, lib)), lib).toBe(true);
      fs.writeFileSync(
        path.join(to, lib),
        `require('node:fs').writeFileSync(require('node:path').join(__dirname, 'tripped-${lib}'), ''); throw new Error('tripwire');\n`,
      );
    }
    const bin = path.join(to, 'orch.cjs');
    for (const args of [
      ['token', 'create', '--role', 'leader'],
      ['token', 'list'],
      ['token', 'revoke', '--name', 'leader'],
      ['token', '--help'],
    ]) {
      const r = spawnSync(process.execPath, [bin, '--db', db, ...args], { cwd: dir, encoding: 'utf8' });
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    expect(fs.readdirSync(to).filter((f) => f.startsWith('tripped'))).toEqual([]);
  });

  sqliteOnly.it('file permissions', 'keeps the database file owner-only', () => {
    const { db } = initDb();
    const mode = fs.statSync(db).mode & 0o777;
    expect(mode).toBe(0o600);
    orchOk(db, ['token', 'create', '--role', 'leader']);
    orchOk(db, ['token', 'revoke', '--name', 'leader']);
    expect(fs.statSync(db).mode & 0o777).toBe(mode);
  });
});
