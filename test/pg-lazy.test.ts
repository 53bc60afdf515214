// The PostgreSQL driver is only for `--db postgres://...`: the bundled CLIs keep it in a file of its
// own beside them (pg-driver.cjs, scripts/build.mjs) and a SQLite call must never read it (issue 15:
// SQLite start-up must not pay for PostgreSQL). Real processes on copies of the built folders; no
// PostgreSQL server is needed (the driver fails before any connection is tried).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectJsonError, ROOT, tempDir } from './helpers.ts';

const URL = 'postgres://127.0.0.1:5432/test?schema=lazy_never_made';
const MARK = 'pg-driver-was-loaded';

/** Copies packages/<pkg>/dist into `dir`/<pkg>; `driver` decides what becomes of its pg-driver.cjs. */
function copyDist(dir: string, pkg: 'inbox' | 'orch', driver: 'absent' | 'tripwire'): string {
  const to = path.join(dir, pkg);
  fs.cpSync(path.join(ROOT, 'packages', pkg, 'dist'), to, { recursive: true });
  const file = path.join(to, 'pg-driver.cjs');
  expect(fs.existsSync(file), `the build puts pg-driver.cjs beside ${pkg}.cjs`).toBe(true);
  if (driver === 'absent') fs.rmSync(file);
  // Loading this driver leaves a mark beside it and fails.
  else fs.writeFileSync(file, `require('node:fs').writeFileSync(require('node:path').join(__dirname, '${MARK}'), ''); throw new Error('tripwire driver');\n`);
  return path.join(to, `${pkg}.cjs`);
}

function run(bin: string, args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function sqliteCalls(inbox: string, orch: string, dir: string): void {
  const db = path.join(dir, 'coord.db');
  for (const [bin, args] of [
    [inbox, ['init']],
    [inbox, ['send', '--to', 'w', '--subject', 's', '--body', 'b']],
    [inbox, ['claim', '--agent', 'w']],
    [inbox, ['list']],
    [orch, ['run', 'init', '--run', 'r', '--goal', 'g']],
    [orch, ['task', 'add', '--run', 'r', '--task', 'a', '--title', 'a', '--default-to', 'w']],
    [orch, ['ready', '--run', 'r']],
    [orch, ['status', '--run', 'r']],
    [inbox, ['doctor']],
  ] as const) {
    const r = run(bin, ['--db', db, '--json', ...args], dir);
    expect(r.code, `${path.basename(bin)} ${args.join(' ')}: ${r.stderr}`).toBe(0);
    JSON.parse(r.stdout);
  }
  const claimed = JSON.parse(run(inbox, ['--db', db, '--json', 'list'], dir).stdout);
  expect(JSON.stringify(claimed)).toContain('"claimed"');
}

describe('the PostgreSQL driver loads only for a postgres:// URL (slow)', () => {
  it('without pg-driver.cjs, SQLite calls work and a postgres:// URL is exit 6 saying the engine cannot load', () => {
    const dir = tempDir();
    const inbox = copyDist(dir, 'inbox', 'absent');
    const orch = copyDist(dir, 'orch', 'absent');
    sqliteCalls(inbox, orch, dir);
    for (const bin of [inbox, orch]) {
      const args = path.basename(bin) === 'inbox.cjs' ? ['list'] : ['status', '--run', 'r'];
      const e = expectJsonError(run(bin, ['--db', URL, '--json', ...args], dir), 6, 'DB_CANNOT_OPEN', /PostgreSQL engine cannot load/);
      expect(e.message).toContain('pg-driver.cjs');
      const plain = run(bin, ['--db', URL, ...args], dir);
      expect(plain.code).toBe(6);
      expect(plain.stderr.trim().split('\n')).toHaveLength(1);
      expect(plain.stderr).toMatch(/PostgreSQL engine cannot load .*copy the whole folder/);
    }
  });

  it('a SQLite call never reads pg-driver.cjs; a postgres:// URL does (a tripwire driver in its place)', () => {
    const dir = tempDir();
    const inbox = copyDist(dir, 'inbox', 'tripwire');
    const orch = copyDist(dir, 'orch', 'tripwire');
    sqliteCalls(inbox, orch, dir);
    expect(fs.existsSync(path.join(dir, 'inbox', MARK))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'orch', MARK))).toBe(false);
    // The tripwire works: the first PostgreSQL call trips it, and fails cleanly.
    expectJsonError(run(inbox, ['--db', URL, '--json', 'list'], dir), 6, 'DB_CANNOT_OPEN', /PostgreSQL engine cannot load \(tripwire driver\)/);
    expect(fs.existsSync(path.join(dir, 'inbox', MARK))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'orch', MARK))).toBe(false);
  });
});
