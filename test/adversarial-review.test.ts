import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { rows, snapshot, tempDir, type CliRun } from './helpers.ts';
import { outside, outsideEnv, run } from './outside.ts';
import { freshDb } from './engine.ts';

/**
 * Holes a review found where two fixes met (the brief in the task message against the payload
 * limits; delivery marks against unwritable output; a blocked release against the runner's brief;
 * escaped text against the one brief), attacked through the copied skill executables.
 */

function must(r: CliRun, what: string): any {
  expect(r.code, `${what}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
}

function setup() {
  const dir = fs.realpathSync(tempDir('orch-adv-review-'));
  const db = freshDb(dir);
  const orch = (args: string[]) => must(run('orch', ['--db', db, '--json', ...args], { cwd: dir }), `orch ${args.join(' ').slice(0, 200)}`);
  const inbox = (args: string[]) => must(run('inbox', ['--db', db, '--json', ...args], { cwd: dir }), `inbox ${args.join(' ')}`);
  inbox(['init']);
  orch(['run', 'init', '--run', 'r1', '--goal', 'g']);
  return { dir, db, orch, inbox };
}

describe('the brief in the task message fits whatever task add and dispatch accept (slow)', () => {
  it('a 900 KB body with acceptance criteria nested 64 levels deep dispatches (the brief quotes both), and the worker reads it back', () => {
    const s = setup();
    const deep = `${'['.repeat(62)}{"k":"${'x'.repeat(100)}"}${']'.repeat(62)}`; // 64 levels with the outer object
    const wide = JSON.stringify({ deep: JSON.parse(deep), items: Array.from({ length: 900 }, (_, i) => `criterion ${i} ${'y'.repeat(80)}`) });
    expect(Buffer.byteLength(wide)).toBeLessThan(100 * 1024); // one argument fits the OS limit
    const acceptance = path.join(s.dir, 'acc.json');
    fs.writeFileSync(acceptance, wide);
    s.orch(['task', 'add', '--run', 'r1', '--task', 'T', '--title', 't', '--default-to', 'w', '--acceptance-json', fs.readFileSync(acceptance, 'utf8')]);
    const body = path.join(s.dir, 'body.md');
    fs.writeFileSync(body, 'z'.repeat(900 * 1024));
    const d = s.orch(['dispatch', '--run', 'r1', '--task', 'T', '--execution-mode', 'analysis', '--body-file', body]);
    const claimed = s.inbox(['claim', '--agent', 'w']);
    expect(claimed.thread.id).toBe(d.attempt.thread_id);
    const task = claimed.messages[0];
    expect(task.payload.unreadable_json).toBeUndefined();
    expect(task.payload.task.acceptance.items).toHaveLength(900);
    expect(task.payload.brief.text).toContain('z'.repeat(1000));
  });
});

describe('output that cannot be written after a leased wait advanced the delivery mark (slow)', () => {
  it('exits 7 saying what was delivered and how to read it again; the answer is not lost', () => {
    const s = setup();
    const t = s.inbox(['send', '--to', 'w', '--subject', 's', '--body', 'do it']);
    const c = s.inbox(['claim', '--agent', 'w']);
    const q = s.inbox(['ask', '--thread', t.thread.id, '--lease', c.lease.token, '--body', 'which one?']);
    s.inbox(['reply', '--thread', t.thread.id, '--body', 'the blue one']);
    const full = fs.openSync('/dev/full', 'w');
    const r = spawnSync(outside().inbox, ['--db', s.db, '--json', 'wait', '--thread', t.thread.id, '--lease', c.lease.token, '--timeout-seconds', '5'], {
      env: outsideEnv(),
      stdio: ['ignore', full, 'pipe'],
      encoding: 'utf8',
    });
    fs.closeSync(full);
    expect(r.status).toBe(7);
    const err = JSON.parse(r.stderr);
    expect(err.error.code).toBe('OUTPUT_FAILED');
    expect(err.error.details.committed).toBe(true);
    expect(err.error.details.see).toContain(`show --thread ${t.thread.id} --after-message ${q.message.id}`);
    // The command it quotes gives the answer back.
    const again = s.inbox(['show', '--thread', t.thread.id, '--after-message', String(q.message.id)]);
    expect(again.messages.map((m: any) => m.body)).toEqual(['the blue one']);
  });

  it('a read-only show whose output fails says it is safe to run again, and writes nothing', () => {
    const s = setup();
    const t = s.inbox(['send', '--to', 'w', '--subject', 's', '--body', 'do it']);
    const before = snapshot(s.db);
    const full = fs.openSync('/dev/full', 'w');
    const r = spawnSync(outside().inbox, ['--db', s.db, '--json', 'show', '--thread', t.thread.id], {
      env: outsideEnv(),
      stdio: ['ignore', full, 'pipe'],
      encoding: 'utf8',
    });
    fs.closeSync(full);
    expect(r.status).toBe(7);
    expect(JSON.parse(r.stderr).error.details.committed).toBe(false);
    expect(snapshot(s.db)).toEqual(before);
  });
});

describe('a runner that claims a thread released while blocked (slow)', () => {
  it('tells its command the question is pending, and records its own posts with role runner', () => {
    const s = setup();
    const t = s.inbox(['send', '--to', 'w', '--subject', 's', '--body', 'do it']);
    const c = s.inbox(['claim', '--agent', 'w']);
    s.inbox(['ask', '--thread', t.thread.id, '--lease', c.lease.token, '--body', 'red or blue?']);
    s.inbox(['release', '--thread', t.thread.id, '--lease', c.lease.token]);
    const seen = path.join(s.dir, 'stdin.txt');
    const w = must(
      run('inbox', ['--db', s.db, '--json', 'work', '--agent', 'w', '--once', '--', 'sh', '-c', `cat > '${seen}'; echo ok`], { cwd: s.dir }),
      'inbox work',
    );
    expect(w.handled[0]).toMatchObject({ thread_id: t.thread.id, outcome: 'done' });
    const stdin = fs.readFileSync(seen, 'utf8');
    expect(stdin).toContain('A question is pending on this thread');
    expect(stdin).toContain('red or blue?');
    const roles = rows<{ kind: string; role: string }>(
      s.db,
      "select kind, role from inbox_messages where thread_id = ? and author = 'w' order by id",
      t.thread.id,
    );
    expect(roles.filter((m) => m.kind === 'result')).toEqual([{ kind: 'result', role: 'runner' }]);
  });
});

describe('orch-worker-brief prints the stored brief byte for byte when piped (slow)', () => {
  it('a body with CRLF line ends and an escape sequence comes out exactly as inbox work hands it on', () => {
    const s = setup();
    s.orch(['task', 'add', '--run', 'r1', '--task', 'T', '--title', 't', '--default-to', 'w']);
    const body = 'line one\r\nline two \u001b[31mred\u001b[0m\r\n';
    const bodyFile = path.join(s.dir, 'body.md');
    fs.writeFileSync(bodyFile, body);
    const d = s.orch(['dispatch', '--run', 'r1', '--task', 'T', '--execution-mode', 'analysis', '--body-file', bodyFile]);
    const file = path.join(s.dir, 'd.json');
    fs.writeFileSync(file, JSON.stringify(d));
    const r = run('brief', ['--db', s.db, '--dispatch-json', file], { cwd: s.dir });
    expect(r.code, r.stderr).toBe(0);
    const stored = rows<{ payload: string }>(s.db, "select payload from inbox_messages where thread_id = ? and kind = 'task'", d.attempt.thread_id)[0];
    const text = JSON.parse(stored?.payload ?? '{}').brief.text as string;
    expect(r.stdout).toBe(text);
    expect(r.stdout).toContain('line two \u001b[31mred');
  });
});
