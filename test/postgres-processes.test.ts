// The concurrency contract on PostgreSQL, with real OS processes against one schema on the server:
// exactly-once claims through the inbox library, one winner among leaders dispatching the same
// task, per-run event numbers 1..N without gaps under concurrent leaders, and every worker post
// folded exactly once under concurrent reconcilers.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { FIXTURES, type CliRun, inboxAsync, json, ok, orchAsync, orchOk, tempDir } from './helpers.ts';
import { describePg, freshSchema, pgExec, pgRows } from './pg-server.ts';

interface ClaimerReport {
  pid: number;
  won: string[];
  errors: { code: string; message: string }[];
}

/** Starts `n` claimer processes (test/fixtures/claimer.ts), releases them together once all are ready, and collects their reports. */
async function runClaimers(n: number, db: string, agent: string, dir: string): Promise<ClaimerReport[]> {
  const goFile = path.join(dir, 'go');
  let ready = 0;
  let release!: () => void;
  const allReady = new Promise<void>((r) => (release = r));
  const done = Array.from({ length: n }, () => {
    const child = spawn(process.execPath, [path.join(FIXTURES, 'claimer.cjs'), db, agent, goFile]);
    let out = '';
    let err = '';
    let counted = false;
    const count = () => {
      if (!counted && ++ready === n) release();
      counted = true;
    };
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) count();
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise<ClaimerReport>((resolve, reject) =>
      child.on('close', (code) => {
        count(); // one that died before "ready" must not leave the others waiting for the go file
        try {
          resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as ClaimerReport);
        } catch {
          reject(new Error(`claimer exited ${code}: ${out} ${err}`));
        }
      }),
    );
  });
  await allReady;
  fs.writeFileSync(goFile, '');
  return Promise.all(done);
}

/** Starts every command at once as its own OS process and waits for all of them. */
function together(db: string, commands: string[][]): Promise<CliRun[]> {
  return Promise.all(commands.map((args) => orchAsync(['--db', db, '--json', ...args])));
}

async function eventSeqs(schema: string, run: string): Promise<number[]> {
  return (await pgRows<{ seq: number }>(schema, 'select seq from orch_events where run_id = $1 order by id', [run])).map((r) => r.seq);
}
const oneToN = (seqs: number[]) => seqs.map((_, i) => i + 1);

describePg('PostgreSQL: concurrent claims through the inbox library (real OS processes) (slow)', () => {
  it('8 processes claiming from 200 open threads: every thread claimed exactly once, no errors, no DB_BUSY', async () => {
    const dir = tempDir();
    const { url, schema } = freshSchema();
    ok(url, ['init']);
    const ids = Array.from({ length: 200 }, (_, i) => `th_job${String(i).padStart(3, '0')}`);
    await pgExec(
      schema,
      `insert into inbox_threads (id, subject, assigned_to, created_by, state, claim_count, created_at, updated_at)
       select id, 'job', 'w', 'leader', 'open', 0, n, n from unnest($1::text[]) with ordinality as t(id, n)`,
      [ids],
    );

    const reports = await runClaimers(8, url, 'w', dir);

    expect(reports.flatMap((r) => r.errors)).toEqual([]);
    const won = reports.flatMap((r) => r.won);
    expect(won).toHaveLength(200);
    expect(new Set(won).size).toBe(200);
    expect([...won].sort()).toEqual(ids);
    // The work really was shared out, not done by one early process.
    expect(reports.filter((r) => r.won.length > 0).length).toBeGreaterThan(1);
    expect(await pgRows(schema, 'select state, claim_count, count(*) as n from inbox_threads group by state, claim_count')).toEqual([
      { state: 'done', claim_count: 1, n: 200 },
    ]);
    // Exactly one progress and one result per thread, each by the process that won it.
    const posts = await pgRows<{ thread_id: string; kinds: string; bodies: string }>(
      schema,
      `select thread_id, string_agg(kind, ',' order by id) as kinds, string_agg(distinct substring(body from '[0-9]+$'), ',') as bodies
       from inbox_messages where kind in ('progress', 'result') group by thread_id`,
    );
    expect(posts).toHaveLength(200);
    const winner = new Map(reports.flatMap((r) => r.won.map((t) => [t, String(r.pid)] as const)));
    for (const p of posts)
      expect({ thread: p.thread_id, kinds: p.kinds, pid: p.bodies }).toEqual({ thread: p.thread_id, kinds: 'progress,result', pid: winner.get(p.thread_id) });
  }, 600_000);
});

describePg('PostgreSQL: orch under concurrent leaders (real OS processes) (slow)', () => {
  it('6 processes dispatching the same ready task: exactly one attempt, the others refused with 4 CONFLICT, events 1..N', async () => {
    const { url, schema } = freshSchema();
    ok(url, ['init']);
    orchOk(url, ['run', 'init', '--run', 'r', '--goal', 'g']);
    orchOk(url, ['task', 'add', '--run', 'r', '--task', 'T', '--title', 't', '--default-to', 'w']);
    const results = await together(
      url,
      Array.from({ length: 6 }, (_, i) => ['dispatch', '--run', 'r', '--task', 'T', '--execution-mode', 'analysis', '--body', `leader ${i}`]),
    );
    const codes = results.map((r) => r.code).sort();
    expect(codes, results.map((r) => r.stderr).join('\n')).toEqual([0, 4, 4, 4, 4, 4]);
    for (const r of results.filter((x) => x.code === 4)) expect(JSON.parse(r.stderr).error.code).toBe('CONFLICT');
    const winner = json(results.find((r) => r.code === 0) as CliRun);
    expect(await pgRows(schema, 'select count(*) as n from orch_attempts')).toEqual([{ n: 1 }]);
    expect(await pgRows(schema, 'select id from inbox_threads')).toEqual([{ id: winner.attempt.thread_id }]);
    expect(await pgRows(schema, "select count(*) as n from orch_events where type = 'task_dispatched'")).toEqual([{ n: 1 }]);
    const seqs = await eventSeqs(schema, 'r');
    expect(seqs).toEqual(oneToN(seqs));
  }, 600_000);

  it('6 leaders adding tasks, dependencies and dispatching in one run at once: event numbers 1..N without gaps, nothing lost', async () => {
    const { url, schema } = freshSchema();
    ok(url, ['init']);
    orchOk(url, ['run', 'init', '--run', 'r', '--goal', 'g']);
    orchOk(url, ['run', 'init', '--run', 'other', '--goal', 'g']);
    const LEADERS = 6;
    const STEPS = 5;
    // Each leader is a chain of CLI processes: add a task, make it depend on the previous one of
    // its own, dispatch its first task; a second run gets events at the same time.
    const outcomes = await Promise.all(
      Array.from({ length: LEADERS }, async (_, l) => {
        const mine: { args: string; code: number; stderr: string }[] = [];
        const call = async (args: string[]) => {
          const r = await orchAsync(['--db', url, '--json', ...args]);
          mine.push({ args: args.join(' '), code: r.code, stderr: r.stderr });
        };
        for (let s = 0; s < STEPS; s++) {
          const task = `L${l}S${s}`;
          await call(['task', 'add', '--run', 'r', '--task', task, '--title', task, '--default-to', `w${l}`]);
          if (s > 0) await call(['dep', 'add', '--run', 'r', '--task', task, '--depends-on', `L${l}S${s - 1}`]);
          else await call(['dispatch', '--run', 'r', '--task', task, '--execution-mode', 'analysis', '--body', 'go']);
          if (s % 2 === 0) await call(['task', 'add', '--run', 'other', '--task', task, '--title', task]);
        }
        return mine;
      }),
    );
    expect(outcomes.flat().filter((o) => o.code !== 0)).toEqual([]);
    for (const run of ['r', 'other']) {
      const seqs = await eventSeqs(schema, run);
      expect(seqs, run).toEqual(oneToN(seqs));
    }
    const types = await pgRows<{ type: string; n: number }>(
      schema,
      "select type, count(*) as n from orch_events where run_id = 'r' group by type order by type",
    );
    expect(types).toEqual([
      { type: 'dependency_added', n: LEADERS * (STEPS - 1) },
      { type: 'run_created', n: 1 },
      { type: 'task_added', n: LEADERS * STEPS },
      { type: 'task_dispatched', n: LEADERS },
    ]);
    expect(await pgRows(schema, "select count(*) as n from orch_dependencies where run_id = 'r'")).toEqual([{ n: LEADERS * (STEPS - 1) }]);
  }, 600_000);

  it('reconcilers in 4 processes while 3 workers post results: every post folded exactly once, events 1..N, all tasks done', async () => {
    const { url, schema } = freshSchema();
    ok(url, ['init']);
    orchOk(url, ['run', 'init', '--run', 'r', '--goal', 'g']);
    const TASKS = 9;
    for (let i = 0; i < TASKS; i++) {
      orchOk(url, ['task', 'add', '--run', 'r', '--task', `T${i}`, '--title', `t${i}`, '--default-to', `w${i % 3}`]);
      orchOk(url, ['dispatch', '--run', 'r', '--task', `T${i}`, '--execution-mode', 'analysis', '--body', 'go']);
    }
    let workersDone = false;
    const worker = async (agent: string) => {
      const posted: string[] = [];
      for (;;) {
        const c = await inboxAsync(['--db', url, '--json', 'claim', '--agent', agent]);
        expect(c.code, c.stderr).toBe(0);
        const claimed = json(c);
        if (!claimed.claimed) return posted;
        const thread = claimed.thread.id as string;
        const lease = claimed.lease.token as string;
        for (const args of [
          ['progress', '--thread', thread, '--lease', lease, '--body', 'half way'],
          ['result', '--thread', thread, '--lease', lease, '--body', `done ${thread}`],
        ]) {
          const r = await inboxAsync(['--db', url, '--json', ...args]);
          expect(r.code, r.stderr).toBe(0);
        }
        posted.push(thread);
      }
    };
    const reconciler = async (i: number) => {
      const runs: CliRun[] = [];
      while (!workersDone) {
        const args = i % 2 === 0 ? ['reconcile', '--run', 'r'] : ['status', '--run', 'r'];
        runs.push(await orchAsync(['--db', url, '--json', ...args]));
      }
      return runs;
    };
    const reconcilers = Promise.all(Array.from({ length: 4 }, (_, i) => reconciler(i)));
    const posted = (await Promise.all(['w0', 'w1', 'w2'].map(worker))).flat();
    workersDone = true;
    const calls = (await reconcilers).flat();
    expect(posted).toHaveLength(TASKS);
    expect(calls.filter((r) => r.code !== 0).map((r) => r.stderr)).toEqual([]);
    expect(calls.length).toBeGreaterThan(4);
    // One last reconcile folds whatever came after the last one above.
    orchOk(url, ['reconcile', '--run', 'r']);
    const folded = await pgRows<{ message_id: number; n: number }>(
      schema,
      "select (data::jsonb ->> 'message_id')::bigint as message_id, count(*) as n from orch_events where data::jsonb ? 'message_id' group by 1",
    );
    const messages = await pgRows<{ id: number }>(schema, "select id from inbox_messages where kind in ('progress', 'result') order by id");
    expect(messages).toHaveLength(2 * TASKS);
    expect(new Map(folded.map((f) => [f.message_id, f.n]))).toEqual(new Map(messages.map((m) => [m.id, 1])));
    const count = async (type: string) => (await pgRows<{ n: number }>(schema, 'select count(*) as n from orch_events where type = $1', [type]))[0]?.n;
    expect(await count('task_claimed')).toBe(TASKS);
    expect(await count('task_progress')).toBe(TASKS);
    expect(await count('task_done')).toBe(TASKS);
    const seqs = await eventSeqs(schema, 'r');
    expect(seqs).toEqual(oneToN(seqs));
    expect(await pgRows(schema, "select state, count(*) as n from orch_tasks where run_id = 'r' group by state")).toEqual([{ state: 'done', n: TASKS }]);
  }, 600_000);
});
