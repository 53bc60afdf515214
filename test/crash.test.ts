// Crash injection: processes are killed with SIGKILL at random moments of their work (claim,
// progress, result, dispatch, retry, answer, reconcile), and in code mode at exact points between
// the git step and the database step. After every kill: SQLite's integrity check passes, `orch
// doctor` finds no error, nothing the library acknowledged is lost, and the next processes work
// at once (no lock left behind). At the end every interrupted attempt is shown to be recoverable:
// the run is driven to done.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { claim, openInbox, postResult } from '@orch/inbox';
import { addDependency, addTask, dispatch, initRun, openOrch, orchDoctor, readyTasks, retry, status, type Orch } from '@orch/orch';
import { describe, expect, it } from 'vitest';
import { FIXTURES, ORCH_BIN, initDb, makeGitRepo, orchOk, rows } from './helpers.ts';
import { mulberry32 } from './random.ts';
import { onPostgres, perEngine } from './engine.ts';

const DRIVER = path.join(FIXTURES, 'crash-driver.cjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface JournalLine {
  pid: number;
  role: string;
  op: string;
  thread?: string;
  task?: string;
  attempt?: string;
  body?: string;
  error?: string;
  exit?: number;
  message?: string;
}

function readJournal(file: string): JournalLine[] {
  if (!fs.existsSync(file)) return [];
  // A kill can cut the last line short: it was never acknowledged, so it is ignored.
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.endsWith('}'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as JournalLine];
      } catch {
        return [];
      }
    });
}

/** The doctor's verdict through the library: no error, integrity ok. */
async function assertHealthy(db: string, where: string): Promise<{ warnings: string[] }> {
  const report = await orchDoctor({ path: db });
  expect(report.integrity, where).toBe('ok');
  expect(
    report.problems.filter((p) => p.severity === 'error'),
    where,
  ).toEqual([]);
  return { warnings: report.problems.map((p) => p.kind) };
}

describe('crash injection (slow)', () => {
  it(`keeps every invariant over ${onPostgres ? 100 : 200} cycles of SIGKILLed leaders and workers, loses no acknowledged result, and the run still finishes`, async () => {
    // On PostgreSQL each step is a round trip to the server: a worker's question and the leader's
    // answer need longer between kills to happen at all, so fewer, longer cycles.
    const CYCLES = onPostgres ? 100 : 200;
    const WORK_SCALE = onPostgres ? 3 : 1;
    const { db, dir } = initDb();
    const journal = path.join(dir, 'journal.jsonl');
    const setup: Orch = await openOrch({ path: db });
    await initRun(setup, { runId: 'r', goal: 'survive kill -9' });
    await addTasksWith(setup, 0, 30);
    await setup.close();
    let added = 30;

    const rng = mulberry32(20261121);
    let kills = 0;
    const phases = new Map<string, number>();
    for (let cycle = 0; cycle < CYCLES; cycle += 1) {
      const roles = ['leader', 'worker:w1', 'worker:w2'].filter(() => rng() < 0.8);
      if (roles.length === 0) roles.push('leader');
      const children = roles.map((role) => {
        const child = spawn(process.execPath, [DRIVER, db, role, 'r', journal, String(cycle * 7 + roles.indexOf(role))], { stdio: 'ignore' });
        return { role, child, exited: new Promise<void>((resolve) => child.on('exit', () => resolve())) };
      });
      // Each is killed at its own moment: a quarter during start-up and opening (counted from the
      // spawn), the rest mid-work (counted from when the driver has opened the database, so a
      // loaded machine's slow start-up cannot starve the test of acknowledged work).
      await Promise.all(
        children.map(async ({ child, exited }) => {
          const midWork = rng() < 0.75;
          const delay = (40 + rng() * 400) * WORK_SCALE;
          if (midWork) {
            const marker = `${journal}.open.${child.pid}`;
            const started = performance.now();
            while (!fs.existsSync(marker) && child.exitCode === null && performance.now() - started < 20_000) await sleep(5);
          }
          await sleep(delay);
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGKILL');
            kills += 1;
          }
          await exited;
        }),
      );
      const lines = readJournal(journal);
      const errors = lines.filter((l) => l.error !== undefined);
      expect(errors, `cycle ${cycle}: unexpected errors`).toEqual([]);
      await assertHealthy(db, `after cycle ${cycle}`);
      if (cycle % 20 === 19) {
        // Keep work available: once few tasks are left unfinished, add more.
        const o = await openOrch({ path: db });
        try {
          const s = await status(o, { runId: 'r' });
          if (s.tasks.filter((t) => t.state !== 'done').length < 10) {
            await addTasksWith(o, added, 15);
            added += 15;
          }
        } finally {
          await o.close();
        }
      }
    }

    // Nothing acknowledged was lost: every result a worker was told it posted is the thread's result.
    const lines = readJournal(journal);
    for (const l of lines) phases.set(l.op, (phases.get(l.op) ?? 0) + 1);
    const results = lines.filter((l) => l.op === 'result' || l.op === 'fail');
    expect(results.length, 'results acknowledged before their worker was killed').toBeGreaterThan(20);
    for (const r of results) {
      const kind = r.op === 'result' ? 'result' : 'failure';
      expect(rows(db, 'select body from inbox_messages where thread_id = ? and kind = ?', r.thread, kind), `${r.op} on ${r.thread}`).toEqual([
        { body: r.body },
      ]);
      expect(rows(db, 'select state from inbox_threads where id = ?', r.thread)).toEqual([{ state: r.op === 'result' ? 'done' : 'failed' }]);
    }
    for (const d of lines.filter((l) => l.op === 'dispatch' || l.op === 'retry')) {
      expect(rows(db, 'select thread_id from orch_attempts where id = ?', d.attempt), `${d.op} ${d.attempt}`).toEqual([{ thread_id: d.thread }]);
    }
    for (const kind of ['claim', 'dispatch', 'result', 'fail', 'answer', 'retry']) expect(phases.get(kind) ?? 0, `acknowledged ${kind}s`).toBeGreaterThan(0);

    // Every interrupted attempt is recoverable: once the killed workers' leases run out, a leader
    // and a worker that are left alone finish the whole run.
    await sleep(2100);
    const orch = await openOrch({ path: db });
    const inbox = await openInbox({ path: db });
    try {
      for (let round = 0; round < 400; round += 1) {
        const s = await status(orch, { runId: 'r' });
        if (s.run.state === 'done') break;
        for (const t of (await readyTasks(orch, { runId: 'r' })).tasks) {
          if (t.state === 'failed' || t.state === 'expired') await retry(orch, { runId: 'r', taskId: t.id, to: 'w1' });
          else await dispatch(orch, { runId: 'r', taskId: t.id, executionMode: 'analysis', to: 'w1', body: 'finish' });
        }
        for (const agent of ['w1', 'w2']) {
          for (;;) {
            const c = await claim(inbox, { agent, leaseSeconds: 60 });
            if (!c.claimed) break;
            await postResult(inbox, { threadId: c.thread.id, lease: c.lease.token, body: 'finished after the crashes' });
          }
        }
        // Attempts still held by a killed worker expire once their lease runs out.
        if (s.tasks.some((t) => t.state === 'running' || t.state === 'blocked')) await sleep(200);
      }
      const s = await status(orch, { runId: 'r' });
      expect(s.run.state).toBe('done');
      expect(s.tasks.every((t) => t.state === 'done')).toBe(true);
    } finally {
      await inbox.close();
      await orch.close();
    }
    const final = await orchDoctor({ path: db });
    expect(final.problems.filter((p) => p.severity === 'error')).toEqual([]);
    expect(kills).toBeGreaterThan(CYCLES);
    const summary = { cycles: CYCLES, kills, acknowledged: Object.fromEntries(phases), tasks: added };
    fs.mkdirSync(path.join(FIXTURES, '..'), { recursive: true });
    fs.writeFileSync(path.join(FIXTURES, '..', perEngine('crash.json')), `${JSON.stringify(summary, null, 2)}\n`);
    console.log(`crash injection: ${JSON.stringify(summary)}`);
  }, 900_000);
});

/** Tasks t<from>..; every third waits on the one before it, so readiness changes as tasks finish. */
async function addTasksWith(orch: Orch, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i += 1) {
    await addTask(orch, { runId: 'r', taskId: `t${i}`, title: `t${i}`, defaultTo: 'w1' });
    if (i > from && i % 3 === 0) await addDependency(orch, { runId: 'r', taskId: `t${i}`, dependsOn: `t${i - 1}` });
  }
}

describe('crash injection in code mode (slow)', () => {
  function git(cwd: string, ...args: string[]): string {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  }
  function orchRun(
    db: string,
    cwd: string,
    args: string[],
    failpoint?: string,
  ): { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [ORCH_BIN, '--db', db, '--json', ...args], {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, ...(failpoint ? { ORCH_FAILPOINT: failpoint } : {}) },
    });
    return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  }

  it('a dispatch killed before or after its git step, or at a random moment, leaves nothing a new dispatch or doctor --repair cannot take over', async () => {
    const { db, dir } = initDb();
    // Resolved, as orch records and reports paths (a temp dir may sit behind a symbolic link).
    const repo = makeGitRepo(dir);
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    const CYCLES = 24;
    for (let i = 0; i < CYCLES + 1; i += 1) orchOk(db, ['task', 'add', '--run', 'r', '--task', `c${i}`, '--title', `c${i}`, '--default-to', 'w1']);
    // How long a whole code-mode dispatch takes here, so random kills land anywhere inside one.
    orchOk(db, ['task', 'add', '--run', 'r', '--task', 'timing', '--title', 'timing', '--default-to', 'w1']);
    const started = Date.now();
    orchOk(db, ['dispatch', '--run', 'r', '--task', 'timing', '--execution-mode', 'code', '--repo-path', repo, '--body', 'x'], { cwd: dir });
    const dispatchMs = Date.now() - started;
    const rng = mulberry32(7);
    const points = ['dispatch:before-worktree', 'dispatch:after-worktree', 'random'];
    const left = { worktree: 0, none: 0, recorded: 0 };
    for (let i = 0; i < CYCLES; i += 1) {
      const task = `c${i}`;
      const point = points[i % points.length] as string;
      const args = ['dispatch', '--run', 'r', '--task', task, '--execution-mode', 'code', '--repo-path', repo, '--body', 'x'];
      if (point === 'random') {
        // Its own process group, killed whole (as a harness kills an agent's tree), so no git child outlives it.
        const child = spawn(process.execPath, [ORCH_BIN, '--db', db, '--json', ...args], { cwd: dir, stdio: 'ignore', detached: true });
        const closed = new Promise((r) => child.once('close', r));
        await sleep(dispatchMs * (0.3 + 1.5 * rng()));
        try {
          process.kill(-(child.pid as number), 'SIGKILL');
        } catch {
          // It had already finished.
        }
        await closed;
      } else {
        const r = orchRun(db, dir, args, point);
        expect(r.signal, `${point} on ${task}`).toBe('SIGKILL');
      }
      await assertHealthy(db, `after ${point} on ${task}`);
      const recorded = rows(db, "select worktree_path from orch_attempts where run_id = 'r' and task_id = ?", task);
      const wt = path.join(repo, '.orch/worktrees/r', task, '1');
      if (recorded.length > 0) {
        left.recorded += 1;
        continue;
      }
      if (fs.existsSync(wt)) left.worktree += 1;
      else left.none += 1;
      if (point === 'dispatch:after-worktree') {
        // The window this test is for: a worktree and branch exist, but no attempt owns them.
        expect(fs.existsSync(wt)).toBe(true);
        const seen = (await orchDoctor({ path: db })).problems.filter((p) => p.kind === 'orphan_worktree');
        expect(seen.map((p) => p.path)).toContain(fs.realpathSync(wt));
      }
      // Recoverable: dispatching the task again takes the leftover over.
      const again = orchRun(db, dir, args);
      expect(again.code, `re-dispatch of ${task} after ${point}: ${again.stderr}`).toBe(0);
      const attempt = JSON.parse(again.stdout).attempt;
      expect(fs.existsSync(attempt.worktree_path)).toBe(true);
      expect(git(attempt.worktree_path, 'status', '--porcelain')).toBe('');
      await assertHealthy(db, `after re-dispatch of ${task}`);
    }
    expect(left.worktree, 'cycles that left a worktree no attempt owned').toBeGreaterThan(0);

    // A leftover nobody dispatches again is removed by doctor --repair once it is a minute old.
    const last = `c${CYCLES}`;
    const r = orchRun(
      db,
      dir,
      ['dispatch', '--run', 'r', '--task', last, '--execution-mode', 'code', '--repo-path', repo, '--body', 'x'],
      'dispatch:after-worktree',
    );
    expect(r.signal).toBe('SIGKILL');
    const wt = path.join(repo, '.orch/worktrees/r', last, '1');
    const old = new Date(Date.now() - 5 * 60_000);
    fs.utimesSync(wt, old, old);
    const fixed = JSON.parse(orchRun(db, dir, ['doctor', '--repair']).stdout);
    expect(fixed.problems.filter((p: { kind: string; repaired: boolean }) => p.kind === 'orphan_worktree' && p.repaired)).toHaveLength(1);
    expect(fs.existsSync(wt)).toBe(false);
    expect(git(repo, 'branch', '--list', `orch/r/${last}/1`)).toBe('');

    // cleanup killed between removing a worktree and recording it: a warning, and cleanup again records it.
    const inbox = await openInbox({ path: db });
    for (;;) {
      const c = await claim(inbox, { agent: 'w1', leaseSeconds: 60 });
      if (!c.claimed) break;
      await postResult(inbox, { threadId: c.thread.id, lease: c.lease.token, body: 'done' });
    }
    await inbox.close();
    const done = rows<{ id: string; worktree_path: string }>(
      db,
      "select id, worktree_path from orch_attempts where run_id = 'r' and execution_mode = 'code' order by seq limit 1",
    )[0];
    expect(done).toBeDefined();
    const killed = orchRun(db, dir, ['cleanup', '--run', 'r', '--attempt', done!.id], 'cleanup:before-record');
    expect(killed.signal).toBe('SIGKILL');
    expect(fs.existsSync(done!.worktree_path)).toBe(false);
    const { warnings } = await assertHealthy(db, 'after the killed cleanup');
    expect(warnings).toContain('worktree_missing');
    expect(orchRun(db, dir, ['cleanup', '--run', 'r', '--attempt', done!.id]).code).toBe(0);
    expect(rows(db, 'select case when worktree_removed_at is not null then 1 else 0 end as removed from orch_attempts where id = ?', done!.id)).toEqual([
      { removed: 1 },
    ]);
    const after = await assertHealthy(db, 'after cleanup ran again');
    expect(after.warnings).not.toContain('worktree_missing');
    const summary = { cycles: CYCLES + 2, ...left };
    fs.writeFileSync(path.join(FIXTURES, '..', perEngine('crash-code.json')), `${JSON.stringify(summary, null, 2)}\n`);
    console.log(`code-mode crash injection: ${JSON.stringify(summary)}`);
  }, 600_000);
});
