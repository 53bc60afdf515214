import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { orchMigrations } from '../packages/orch/src/migrations.ts';
import { inbox, initDb, json, ok, orch, orchAsync, orchOk, rows, type CliRun } from './helpers.ts';

/** Starts every command at once as its own OS process and waits for all of them. */
function together(db: string, commands: string[][]): Promise<CliRun[]> {
  return Promise.all(commands.map((args) => orchAsync(['--db', db, '--json', ...args])));
}

function eventSeqs(db: string, run: string): number[] {
  return rows<{ seq: number }>(db, 'select seq from orch_events where run_id = ? order by id', run).map((r) => r.seq);
}

describe('orch under concurrent leaders (real OS processes) (slow)', () => {
  it('6 processes creating runs on a database without orch tables: all succeed, the tables are made once', async () => {
    const { db } = initDb();
    const results = await together(
      db,
      Array.from({ length: 6 }, (_, i) => ['run', 'init', '--run', `r${i}`, '--goal', 'g']),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    // Each migration step recorded exactly once.
    expect(rows(db, "select version from schema_migrations where package = 'orch' order by version")).toEqual(
      orchMigrations.migrations.map((m) => ({ version: m.version })),
    );
    expect(orchOk(db, ['run', 'list']).runs).toHaveLength(6);
  });

  it('6 processes dispatching the same ready task: exactly one attempt, the others are refused with 4', async () => {
    const { db } = initDb();
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    orchOk(db, ['task', 'add', '--run', 'r', '--task', 'T', '--title', 't', '--default-to', 'w']);
    const results = await together(
      db,
      Array.from({ length: 6 }, (_, i) => ['dispatch', '--run', 'r', '--task', 'T', '--execution-mode', 'analysis', '--body', `leader ${i}`]),
    );
    const codes = results.map((r) => r.code).sort();
    expect(codes, results.map((r) => r.stderr).join('\n')).toEqual([0, 4, 4, 4, 4, 4]);
    for (const r of results.filter((x) => x.code === 4)) expect(JSON.parse(r.stderr).error.code).toBe('CONFLICT');
    expect(rows(db, 'select count(*) as n from orch_attempts')).toEqual([{ n: 1 }]);
    expect(rows(db, 'select count(*) as n from inbox_threads')).toEqual([{ n: 1 }]);
    const seqs = eventSeqs(db, 'r');
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  });

  it('4 processes dispatching the same task in code mode: one attempt with its own clean worktree, nothing taken from the winner, nothing left over', async () => {
    const { db, dir } = initDb();
    const repo = path.join(dir, 'repo');
    fs.mkdirSync(repo);
    const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
    git(repo, 'init', '-q', '-b', 'main');
    fs.writeFileSync(path.join(repo, 'README'), 'hi\n');
    git(repo, 'add', '.');
    git(repo, '-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', 'init');
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    orchOk(db, ['task', 'add', '--run', 'r', '--task', 'T', '--title', 't', '--default-to', 'w']);
    const results = await together(
      db,
      Array.from({ length: 4 }, (_, i) => ['dispatch', '--run', 'r', '--task', 'T', '--execution-mode', 'code', '--repo-path', repo, '--body', `leader ${i}`]),
    );
    const codes = results.map((r) => r.code).sort();
    expect(codes, results.map((r) => r.stderr).join('\n')).toEqual([0, 4, 4, 4]);
    const won = json(results.find((r) => r.code === 0) as CliRun).attempt;
    expect(rows(db, 'select worktree_path from orch_attempts')).toEqual([{ worktree_path: won.worktree_path }]);
    // The winner's worktree survived the losers, is clean, and is the only one besides the repository.
    expect(git(won.worktree_path, 'status', '--porcelain')).toBe('');
    expect(git(won.worktree_path, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('orch/r/T/1');
    const listed = git(repo, 'worktree', 'list', '--porcelain')
      .split('\n')
      .filter((l) => l.startsWith('worktree '));
    expect(listed).toHaveLength(2);
    expect(fs.readdirSync(path.dirname(won.worktree_path))).toEqual(['1']);
    const doctor = orch(['--db', db, '--json', 'doctor']);
    expect(doctor.code, doctor.stdout).toBe(0);
    expect(JSON.parse(doctor.stdout).problems).toEqual([]);
  });

  it('6 processes reconciling the same worker activity at once: every message is folded exactly once, no gaps', async () => {
    const { db } = initDb();
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    const tasks = ['A', 'B', 'C', 'D'];
    for (const t of tasks) {
      orchOk(db, ['task', 'add', '--run', 'r', '--task', t, '--title', t, '--default-to', `w${t}`]);
      orchOk(db, ['dispatch', '--run', 'r', '--task', t, '--execution-mode', 'analysis', '--body', 'go']);
    }
    // Workers do everything before any reconcile, so all the folding happens in the race below.
    for (const t of tasks) {
      const c = ok(db, ['claim', '--agent', `w${t}`]);
      for (let i = 0; i < 3; i++) ok(db, ['progress', '--thread', c.thread.id, '--lease', c.lease.token, '--body', `step ${i}`]);
      if (t === 'D') ok(db, ['fail', '--thread', c.thread.id, '--lease', c.lease.token, '--body', 'no']);
      else ok(db, ['result', '--thread', c.thread.id, '--lease', c.lease.token, '--body', 'ok']);
    }
    const results = await together(db, [
      ['status', '--run', 'r'],
      ['reconcile', '--run', 'r'],
      ['ready', '--run', 'r'],
      ['blocked', '--run', 'r'],
      ['wait', '--run', 'r', '--after-event', '0', '--timeout-seconds', '0'],
      ['reconcile', '--run', 'r'],
    ]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const count = (type: string) => rows<{ n: number }>(db, 'select count(*) as n from orch_events where type = ?', type)[0]?.n;
    expect(count('task_claimed')).toBe(4);
    expect(count('task_progress')).toBe(12);
    expect(count('task_done')).toBe(3);
    expect(count('task_failed')).toBe(1);
    const seqs = eventSeqs(db, 'r');
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    const written = results.filter((_, i) => i === 1 || i === 5).map((r) => json(r).events_written as number);
    // Whoever reconciled first wrote the events; a later reconcile found nothing new.
    expect(written.filter((n) => n > 0).length).toBeLessThanOrEqual(1);
    expect(inbox(['--db', db, '--json', 'list']).code).toBe(0);
    expect(rows(db, 'select id, state from orch_tasks order by id')).toEqual([
      { id: 'A', state: 'done' },
      { id: 'B', state: 'done' },
      { id: 'C', state: 'done' },
      { id: 'D', state: 'failed' },
    ]);
  });
});
