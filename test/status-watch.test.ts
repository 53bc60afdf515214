// `orch status --watch`, run as the built CLI: on a real pseudo-terminal (tmux) it redraws the
// table in place as a worker's commits arrive, fits the terminal and restores it on Ctrl-C; piped
// it prints the table once and one line per event until the run ends; a closed pipe is exit 7.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { screenLines } from '../packages/orch/src/status-screen.ts';
import type { StatusResult } from '../packages/orch/src/ops/status.ts';
import type { EventView } from '../packages/orch/src/views.ts';
import { displayWidth, shellWord } from '@orch/store';
import { ORCH_BIN, initDb, ok, orch, orchOk, watchRun } from './helpers.ts';
import { serve, post, type Served } from './server-harness.ts';

/** Generous: the machine is shared; a deadline only turns a hang into a clear failure. */
const DEADLINE_MS = 60_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns something other than undefined/false; fails after DEADLINE_MS saying what it waited for. */
async function until<T>(what: string, probe: () => T | undefined | false, last: () => string = () => ''): Promise<T> {
  const end = Date.now() + DEADLINE_MS;
  for (;;) {
    const got = probe();
    if (got !== undefined && got !== false) return got;
    if (Date.now() > end) throw new Error(`waited for ${what}; last seen:\n${last()}`);
    await sleep(100);
  }
}

/** A tmux server of its own (its own socket, no config) holding one session: a real pseudo-terminal. */
class Tmux {
  readonly socket = `orch-watch-${crypto.randomBytes(4).toString('hex')}`;
  constructor(command: string, width: number, height: number) {
    this.tmux('new-session', '-d', '-s', 'w', '-x', String(width), '-y', String(height), command);
  }
  tmux(...args: string[]): string {
    const r = spawnSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }
  /** What the pane shows now, one string per row, trailing spaces cut. */
  screen(): string[] {
    return this.tmux('capture-pane', '-p', '-t', 'w').replace(/\n$/, '').split('\n');
  }
  text(): string {
    return this.screen().join('\n');
  }
  format(f: string): string {
    return this.tmux('display-message', '-p', '-t', 'w', f).trim();
  }
  kill(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server']);
  }
}

const panes: Tmux[] = [];
afterEach(() => {
  while (panes.length > 0) panes.pop()?.kill();
});

/** A run r1: t1, t2 (waits on t1), t3 with a title longer than any terminal, t4; t1 dispatched to alice. */
function planRun(): { db: string; dir: string; thread: string } {
  const { db, dir } = initDb();
  orchOk(db, ['run', 'init', '--run', 'r1', '--goal', 'watch the run']);
  orchOk(db, ['task', 'add', '--run', 'r1', '--task', 't1', '--title', 'first task']);
  orchOk(db, ['task', 'add', '--run', 'r1', '--task', 't2', '--title', 'second task']);
  orchOk(db, ['task', 'add', '--run', 'r1', '--task', 't3', '--title', `long ${'title '.repeat(40)}END`]);
  orchOk(db, ['task', 'add', '--run', 'r1', '--task', 't4', '--title', 'fourth task']);
  orchOk(db, ['dep', 'add', '--run', 'r1', '--task', 't2', '--depends-on', 't1']);
  const d = orchOk(db, ['dispatch', '--run', 'r1', '--task', 't1', '--to', 'alice', '--execution-mode', 'analysis', '--body', 'do the first task']);
  return { db, dir, thread: d.attempt.thread_id as string };
}

/** The worker's side, through the inbox CLI: claim (returns the lease token). */
function claim(db: string, thread: string): string {
  const c = ok(db, ['claim', '--agent', 'alice', '--thread', thread]);
  expect(c.claimed).toBe(true);
  return c.lease.token as string;
}

function watchCommand(db: string): string {
  return `${shellWord(process.execPath)} ${shellWord(ORCH_BIN)} --db ${shellWord(db)} status --run r1 --watch`;
}

const row = (lines: string[], task: string) => lines.find((l) => l.startsWith(`${task} `));

describe('orch status --watch (slow)', () => {
  it('on a terminal: redraws in place after a worker commits, fits a resize, and Ctrl-C restores the screen (exit 0)', async () => {
    const { db, thread } = planRun();
    const pane = new Tmux(`bash -c ${shellWord(`printf 'BEFORE-WATCH\\n'; ${watchCommand(db)}; echo "WATCH-EXIT=$?"; exec sleep 600`)}`, 120, 40);
    panes.push(pane);
    const shown = (what: string, test: (lines: string[]) => boolean) =>
      until(
        what,
        () => test(pane.screen()),
        () => pane.text(),
      );

    await shown(
      'the first frame',
      (s) =>
        /^t1\s+dispatched\s+#1 alice/.test(row(s, 't1') ?? '') &&
        s.includes('0/4 done · 0 running · 0 blocked · 0 failed · 1 dispatched · 2 ready · last event 7'),
    );
    // The alternate screen, cursor hidden: what was on the terminal is out of sight, not overwritten.
    expect(pane.format('#{alternate_on} #{cursor_flag}')).toBe('1 0');
    expect(pane.text()).not.toContain('BEFORE-WATCH');
    let s = pane.screen();
    expect(s[0]).toBe('run r1 [active]  watch the run');
    expect(row(s, 't2')).toMatch(/^t2\s+pending \(waits on t1\)/);
    // A title wider than the terminal is cut on its line, not wrapped onto the next.
    const t3 = row(s, 't3') ?? '';
    expect(t3.endsWith('…')).toBe(true);
    expect(displayWidth(t3)).toBeLessThanOrEqual(120);
    expect(s[s.indexOf(t3) + 1]).toMatch(/^t4 /);
    expect(s.some((l) => /#7\s+task_dispatched\s+t1\s+attempt 1 to alice/.test(l))).toBe(true);

    const lease = claim(db, thread);
    await shown('t1 running', (l) => /^t1\s+running/.test(row(l, 't1') ?? '') && l.some((x) => x.startsWith('0/4 done · 1 running · 0 blocked · 0 failed')));
    expect(pane.text()).toMatch(/task_claimed\s+t1\s+by alice/);

    ok(db, ['result', '--thread', thread, '--lease', lease, '--body', 'first task finished']);
    await shown('t1 done and t2 ready', (l) => /^t1\s+done/.test(row(l, 't1') ?? '') && /^t2\s+pending \(ready\)/.test(row(l, 't2') ?? ''));
    s = pane.screen();
    expect(s[1]).toMatch(/^1\/4 done · 0 running · 0 blocked · 0 failed · 3 ready · last event \d+$/);
    expect(pane.text()).toMatch(/task_done\s+t1\s+first task finished/);
    expect(row(s, 't1')).toMatch(/result: first task finished/);

    // Smaller: redrawn to the new size (SIGWINCH), every line cut to 60 cells, the tasks that do not fit counted.
    pane.tmux('resize-window', '-t', 'w', '-x', '60', '-y', '8');
    await shown('the frame at 60x8', (l) => l.some((x) => /^… \d+ more tasks? \(/.test(x)) && l.length === 8);
    s = pane.screen();
    for (const line of s) expect(displayWidth(line)).toBeLessThanOrEqual(60);
    expect(s[0]).toBe('run r1 [active]  watch the run');
    expect(s.filter((l) => l.startsWith('TASK'))).toHaveLength(1);
    expect(s.at(-1)).toMatch(/^updated \d\d:\d\d:\d\d · Ctrl-C to leave/);

    pane.tmux('send-keys', '-t', 'w', 'C-c');
    await shown('the exit', (l) => l.some((x) => x === 'WATCH-EXIT=0'));
    // The normal screen is back as it was, with the cursor.
    expect(pane.format('#{alternate_on} #{cursor_flag}')).toBe('0 1');
    expect(pane.screen()[0]).toBe('BEFORE-WATCH');
    expect(pane.text()).not.toContain('Ctrl-C to leave');
  });

  it('on a terminal: when the run ends it leaves the final table on the normal screen and exits 0', async () => {
    const { db } = planRun();
    const pane = new Tmux(`bash -c ${shellWord(`printf 'BEFORE-WATCH\\n'; ${watchCommand(db)}; echo "WATCH-EXIT=$?"; exec sleep 600`)}`, 120, 40);
    panes.push(pane);
    await until(
      'the first frame',
      () => pane.text().includes('Ctrl-C to leave'),
      () => pane.text(),
    );
    orchOk(db, ['cancel', '--run', 'r1', '--reason', 'enough']);
    await until(
      'the exit',
      () => pane.screen().includes('WATCH-EXIT=0'),
      () => pane.text(),
    );
    const s = pane.screen();
    expect(pane.format('#{alternate_on} #{cursor_flag}')).toBe('0 1');
    expect(s[0]).toBe('BEFORE-WATCH');
    expect(s[1]).toBe('run r1 [cancelled]: watch the run');
    expect(s.some((l) => /^t1\s+cancelled/.test(l))).toBe(true);
    expect(s).toContain('run r1 is cancelled: 0/4 done · 0 running · 0 blocked · 0 failed · 4 cancelled');
  });

  it('piped: the table once, then one line per event as it arrives, until the run ends (exit 0)', async () => {
    const { db, thread } = planRun();
    const w = watchRun(
      spawn(process.execPath, [ORCH_BIN, '--db', db, 'status', '--run', 'r1', '--watch'], { stdio: ['ignore', 'pipe', 'pipe'] }),
      'status --watch',
      10 * DEADLINE_MS,
    );
    let out = '';
    w.child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    await until(
      'the table',
      () => out.includes('t4  '),
      () => out,
    );
    const lease = claim(db, thread);
    await until(
      'the claim line',
      () => /task_claimed\s+t1\s+by alice\n/.test(out),
      () => out,
    );
    ok(db, ['result', '--thread', thread, '--lease', lease, '--body', 'first task finished']);
    await until(
      'the done line',
      () => /task_done\s+t1\s+first task finished\n/.test(out),
      () => out,
    );
    orchOk(db, ['cancel', '--run', 'r1', '--reason', 'enough']);
    const r = await w.done;
    expect(r).toMatchObject({ code: 0, signal: null, stderr: '' });
    const lines = r.stdout.trimEnd().split('\n');
    // No escape sequence and no redraw: the table is printed once, as `orch status` prints it.
    expect(r.stdout).not.toContain('\u001b');
    expect(r.stdout.split('\n').filter((l) => l.startsWith('TASK ')).length).toBe(1);
    const table = orch(['--db', db, 'status', '--run', 'r1']);
    expect(lines[0]).toBe('run r1 [active]: watch the run');
    const events = lines.slice(lines.findIndex((l) => l.startsWith('t4 ')) + 1, -1);
    const types = events.map((l) => l.split(/\s+/)[2]);
    expect(types.slice(0, 2)).toEqual(['task_claimed', 'task_done']);
    expect(types.at(-1)).toBe('run_cancelled');
    for (const line of events) expect(line).toMatch(/^\d\d:\d\d:\d\d {2}#\d+ {2}[a-z_]+ +\S+/);
    expect(lines.at(-1)).toBe('run r1 is cancelled: 1/4 done · 0 running · 0 blocked · 0 failed · 3 cancelled');
    // Nothing follows the watch's own output (the CLI prints no result of its own after it).
    expect(r.stdout.endsWith('3 cancelled\n')).toBe(true);
    expect(table.stdout).toContain('run r1 [cancelled]');
  });

  it('piped: SIGTERM ends it with exit 0; a closed stdout ends it with exit 7 (EPIPE)', async () => {
    const { db, thread } = planRun();
    const start = () => {
      const w = watchRun(
        spawn(process.execPath, [ORCH_BIN, '--db', db, 'status', '--run', 'r1', '--watch'], { stdio: ['ignore', 'pipe', 'pipe'] }),
        'status --watch',
        10 * DEADLINE_MS,
      );
      let out = '';
      w.child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      return { w, out: () => out };
    };
    const a = start();
    await until('the table', () => a.out().includes('t4  '), a.out);
    a.w.child.kill('SIGTERM');
    expect(await a.w.done).toMatchObject({ code: 0, signal: null, stderr: '' });

    const b = start();
    await until('the table', () => b.out().includes('t4  '), b.out);
    b.w.child.stdout?.destroy();
    claim(db, thread);
    const r = await b.w.done;
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/^orch: .*output could not be written: the reader closed the pipe \(EPIPE\)/);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });

  it('--json is refused (exit 2), pointing at wait; a server refuses watch over its API; a remote --db watches through the server', async () => {
    const { db, thread } = planRun();
    const refused = orch(['--db', db, '--json', 'status', '--run', 'r1', '--watch']);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(JSON.parse(refused.stderr).error.message).toContain('orch --json wait --run RUN --after-event N');

    let served: Served | undefined;
    try {
      served = await serve(db);
      const api = await post(served.url, '/v1/orch/status', { run: 'r1', watch: true });
      expect(api.exit).toBe(2);
      expect(api.json.error.message).toMatch(/--watch runs in a terminal/);

      const w = watchRun(
        spawn(process.execPath, [ORCH_BIN, '--db', served.url, 'status', '--run', 'r1', '--watch'], { stdio: ['ignore', 'pipe', 'pipe'] }),
        'remote status --watch',
        10 * DEADLINE_MS,
      );
      let out = '';
      w.child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      await until(
        'the table',
        () => out.includes('t4  '),
        () => out,
      );
      claim(db, thread);
      await until(
        'the claim line',
        () => /task_claimed\s+t1\s+by alice\n/.test(out),
        () => out,
      );
      w.child.kill('SIGINT');
      const r = await w.done;
      expect(r).toMatchObject({ code: 0, signal: null, stderr: '' });
      expect(r.stdout.split('\n')[0]).toBe('run r1 [active]: watch the run');
    } finally {
      await served?.stop();
    }
  });
});

describe('the watch screen', () => {
  const task = (i: number, state: string, body = `note ${i}`) => ({
    id: `t${i}`,
    title: `task number ${i} with a title`,
    state,
    ready: false,
    waiting_on: [],
    depends_on: [],
    latest_attempt: null,
    latest_message: { kind: 'progress', body },
  });
  const result = (tasks: ReturnType<typeof task>[]) =>
    ({
      run: { id: 'r1', goal: 'a goal', summary: null, state: 'active' },
      counts: { total: tasks.length },
      last_event: 9,
      unmerged_tasks: [],
      tasks,
    }) as unknown as StatusResult;
  const event = (seq: number): EventView => ({
    seq,
    run: 'r1',
    task: 't1',
    attempt: null,
    type: 'task_progress',
    data: { body: `step ${seq}` },
    created_at: new Date(0).toISOString(),
  });

  it('fits any size: at most `rows` lines of at most `columns` cells, the tasks needing a look first', () => {
    const tasks = Array.from({ length: 30 }, (_, i) => task(i, i === 17 ? 'blocked' : i === 25 ? 'failed' : 'done'));
    const events = Array.from({ length: 9 }, (_, i) => event(i + 1));
    for (const [columns, rows] of [
      [80, 24],
      [40, 10],
      [20, 6],
      [200, 3],
      [1, 1],
    ] as const) {
      const lines = screenLines(result(tasks), events, { columns, rows }, new Date(0).toISOString());
      expect(lines.length).toBeLessThanOrEqual(rows);
      for (const l of lines) expect(displayWidth(l)).toBeLessThanOrEqual(columns);
    }
    const lines = screenLines(result(tasks), events, { columns: 100, rows: 16 }, new Date(0).toISOString());
    expect(lines.find((l) => l.startsWith('t17 '))).toMatch(/blocked/);
    expect(lines.find((l) => l.startsWith('t25 '))).toMatch(/failed/);
    expect(lines.some((l) => /^… \d+ more tasks \(\d+ done\)$/.test(l))).toBe(true);
    // The newest events, oldest of them first.
    expect(lines.filter((l) => l.includes('task_progress')).map((l) => l.split(/\s+/)[1])).toEqual(['#5', '#6', '#7', '#8', '#9']);
  });

  it('shows agent text as text: no escape sequence reaches the terminal', () => {
    const lines = screenLines(
      result([task(1, 'running', 'evil \u001b[2J\u001b]0;title\u0007 end')]),
      [{ ...event(1), data: { body: '\u001b[31mred' } }],
      { columns: 200, rows: 30 },
      new Date(0).toISOString(),
    );
    expect(lines.join('\n')).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
    expect(lines.join('\n')).toContain('evil');
  });
});
