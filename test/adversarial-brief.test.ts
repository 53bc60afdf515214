import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { taskPayloadSchema } from '../packages/inbox/src/task-payload.ts';
import { makeGitRepo, tempDir, type CliRun } from './helpers.ts';
import { outside, run } from './outside.ts';
import { freshDb, relativeDb } from './engine.ts';

/**
 * One brief per attempt, attacked from outside through the skill executables copied out of the
 * repository: what `orch-worker-brief` prints for a hand-launched worker is byte for byte what
 * `inbox work` hands its command on stdin, for dispatch, retry and reassign, in analysis and code
 * mode; the task payload both sides read has one schema; a thread orch did not open still gets a
 * brief; and the brief's commands run as printed.
 */

function must(r: CliRun, what: string): any {
  expect(r.code, `${what}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
}

interface Setup {
  dir: string;
  db: string;
  repo: string;
  orch: (args: string[], cwd?: string) => any;
  inbox: (args: string[]) => any;
  /** `orch-worker-brief` on a saved dispatch output: the text it prints. */
  brief: (dispatch: unknown, extra?: string[]) => string;
}

function setup(): Setup {
  const dir = fs.realpathSync(tempDir('orch-adv-brief-'));
  const db = freshDb(dir);
  const repo = makeGitRepo(dir);
  let n = 0;
  const s: Setup = {
    dir,
    db,
    repo,
    orch: (args, cwd = dir) => must(run('orch', ['--db', db, '--json', ...args], { cwd }), `orch ${args.join(' ')}`),
    inbox: (args) => must(run('inbox', ['--db', db, '--json', ...args], { cwd: dir }), `inbox ${args.join(' ')}`),
    brief: (dispatch, extra = []) => {
      const file = path.join(dir, `dispatch-${++n}.json`);
      fs.writeFileSync(file, JSON.stringify(dispatch));
      const r = run('brief', ['--db', db, '--dispatch-json', file, ...extra], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    },
  };
  s.inbox(['init']);
  s.orch(['run', 'init', '--run', 'r1', '--goal', 'Ship the greeting', '--summary', 'A small feature']);
  s.orch(['task', 'add', '--run', 'r1', '--task', 'A', '--title', 'Analyse', '--default-to', 'wa', '--acceptance-json', '{"must":["say why"]}']);
  s.orch(['task', 'add', '--run', 'r1', '--task', 'C', '--title', 'Code it', '--default-to', 'wc']);
  return s;
}

/**
 * Runs `inbox work --once` for `agent` with a command that saves its stdin, its working directory
 * and its environment's INBOX_WORKTREE, then exits 0. Returns what the command saw.
 */
function workOnce(s: Setup, agent: string): { stdin: string; cwd: string; worktreeEnv: string; report: any } {
  const out = path.join(s.dir, `seen-${agent}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const script = `cat > '${out}.stdin'; pwd -P > '${out}.cwd'; printf %s "$INBOX_WORKTREE" > '${out}.env'; echo done`;
  const report = must(
    run('inbox', ['--db', s.db, '--json', 'work', '--agent', agent, '--once', '--', 'sh', '-c', script], { cwd: s.dir }),
    `inbox work ${agent}`,
  );
  return {
    stdin: fs.readFileSync(`${out}.stdin`, 'utf8'),
    cwd: fs.readFileSync(`${out}.cwd`, 'utf8').trim(),
    worktreeEnv: fs.readFileSync(`${out}.env`, 'utf8'),
    report,
  };
}

describe('one brief per attempt (issue 14 item 4) (slow)', () => {
  it('analysis: inbox work hands its command exactly the brief orch-worker-brief prints, then how the runner reports', () => {
    const s = setup();
    const d = s.orch([
      'dispatch',
      '--run',
      'r1',
      '--task',
      'A',
      '--execution-mode',
      'analysis',
      '--body',
      'Find out why the greeting is late.\nQuote "it"; ignore $HOME.',
    ]);
    const printed = s.brief(d);
    expect(printed).toContain(`Your thread is ${d.attempt.thread_id}.`);
    const seen = workOnce(s, 'wa');
    expect(seen.report.handled[0]).toMatchObject({ thread_id: d.attempt.thread_id, outcome: 'done' });
    // The same text, not a second layout: the printed brief is the head of what the command read.
    expect(seen.stdin.startsWith(printed)).toBe(true);
    const tail = seen.stdin.slice(printed.length);
    expect(tail).toMatch(/inbox work/);
    expect(tail).toContain('$INBOX_LEASE');
    expect(tail).toContain('$INBOX_RESULT_FILE');
    // No second copy of the task as JSON ("Details:") any more.
    expect(seen.stdin).not.toMatch(/^Details:$/m);
  });

  it('code: the same brief, and the command runs in the worktree the payload names', () => {
    const s = setup();
    const d = s.orch(['dispatch', '--run', 'r1', '--task', 'C', '--execution-mode', 'code', '--body', 'Add greet.js and commit it.'], s.repo);
    const printed = s.brief(d);
    expect(printed).toContain(`    cd ${d.attempt.worktree_path}\n`);
    const seen = workOnce(s, 'wc');
    expect(seen.stdin.startsWith(printed)).toBe(true);
    expect(seen.cwd).toBe(fs.realpathSync(d.attempt.worktree_path));
    expect(seen.worktreeEnv).toBe(d.attempt.worktree_path);
  });

  it('retry and reassign store a fresh brief for their own attempt and thread; inbox work hands over that one', () => {
    const s = setup();
    const d1 = s.orch(['dispatch', '--run', 'r1', '--task', 'A', '--execution-mode', 'analysis', '--body', 'First try.']);
    const c1 = s.inbox(['claim', '--agent', 'wa', '--thread', d1.attempt.thread_id]);
    s.inbox(['fail', '--thread', d1.attempt.thread_id, '--lease', c1.lease.token, '--body', 'no logs']);
    const d2 = s.orch(['retry', '--run', 'r1', '--task', 'A', '--body', 'Second try, with the logs in ci/.']);
    const d3 = s.orch(['reassign', '--run', 'r1', '--task', 'A', '--to', 'wb']);
    const b2 = s.brief(d2);
    const b3 = s.brief(d3);
    expect(b2).toContain('# Your task: A (attempt 2)');
    expect(b3).toContain('# Your task: A (attempt 3)');
    expect(b3.startsWith('You are wb, a worker on run r1.')).toBe(true);
    expect(b3).toContain('Second try, with the logs in ci/.');
    const seen = workOnce(s, 'wb');
    expect(seen.report.handled[0].thread_id).toBe(d3.attempt.thread_id);
    expect(seen.stdin.startsWith(b3)).toBe(true);
  });

  it('the brief lives in the task message: its payload holds it, and the payload parses with the one shared schema', () => {
    const s = setup();
    const a = s.orch(['dispatch', '--run', 'r1', '--task', 'A', '--execution-mode', 'analysis', '--body', 'Look.']);
    const c = s.orch(['dispatch', '--run', 'r1', '--task', 'C', '--execution-mode', 'code', '--body', 'Build.'], s.repo);
    for (const d of [a, c]) {
      const shown = s.inbox(['show', '--thread', d.attempt.thread_id]);
      const payload = taskPayloadSchema.parse(shown.messages[0].payload);
      expect(payload.brief.text).toBe(s.brief(d));
      expect(payload.brief.db).toBe(s.db);
      expect(payload.brief.inbox).toBe(outside().inbox);
      expect(payload.attempt).toMatchObject({ id: d.attempt.id, number: 1, execution_mode: d.attempt.execution_mode });
      if (payload.attempt.execution_mode === 'code') expect(payload.attempt.worktree_path).toBe(d.attempt.worktree_path);
    }
  });

  it('orch-worker-brief prints what was dispatched, whatever --db spelling or directory it runs from; --inbox re-renders only the commands', () => {
    const s = setup();
    const d = s.orch(['dispatch', '--run', 'r1', '--task', 'A', '--execution-mode', 'analysis', '--body', 'Look.']);
    const stored = s.inbox(['show', '--thread', d.attempt.thread_id]).messages[0].payload.brief.text as string;
    const file = path.join(s.dir, 'd.json');
    fs.writeFileSync(file, JSON.stringify(d));
    const sub = path.join(s.dir, 'sub');
    fs.mkdirSync(sub);
    const rel = run('brief', ['--db', relativeDb(s.db, sub), '--dispatch-json', '../d.json'], { cwd: sub });
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.stdout).toBe(stored);
    const other = s.brief(d, ['--inbox', '/opt/tools/inbox']);
    expect(other).toBe(stored.split(outside().inbox).join('/opt/tools/inbox'));
  });

  it('a thread orch did not open still gets a brief (the task as written, how to report), in a scratch directory', () => {
    const s = setup();
    const sent = s.inbox([
      'send',
      '--to',
      'hand',
      '--subject',
      'Tidy up',
      '--body',
      'Remove the tmp files.',
      '--payload-json',
      '{"attempt": {"worktree_path": "/nowhere"}}',
    ]);
    const seen = workOnce(s, 'hand');
    expect(seen.report.handled[0].thread_id).toBe(sent.thread.id);
    expect(seen.stdin).toContain('Remove the tmp files.');
    expect(seen.stdin).toContain('$INBOX_RESULT_FILE');
    expect(seen.cwd).not.toBe('/nowhere');
    expect(seen.worktreeEnv).toBe('');
  });

  it('the code brief says where the report goes, in a sentence that reads the right way round', () => {
    const s = setup();
    const d = s.orch(['dispatch', '--run', 'r1', '--task', 'C', '--execution-mode', 'code', '--body', 'Build.'], s.repo);
    const text = s.brief(d);
    expect(text).not.toMatch(/outside\s+the worktree \(step 4 names one\), where it would be an uncommitted change/);
    expect(text).toContain(`--body-file ${d.attempt.worktree_path}.report.md`);
    expect(text.replace(/\n/g, ' ')).toMatch(/not inside it, where it would be an uncommitted change/);
  });
});
