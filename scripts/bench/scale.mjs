// 4. Scale: 10,000 tasks and 30,000 dependency edges
import Database from 'better-sqlite3';
import path from 'node:path';
import { at, figure, inbox, median, ok, orch, quick, TIME, timed, tmp } from './common.mjs';

export function scale() {
  const db = path.join(tmp, 'scale.db');
  const tasks = quick ? 2000 : 10_000;
  const edges = tasks * 3;
  ok(inbox(db, 'init'));
  ok(orch(db, 'run', 'init', '--run', 'big', '--goal', 'scale'));
  const conn = new Database(db);
  const now = Date.now();
  const addTask = conn.prepare(
    "insert into orch_tasks (run_id, id, title, summary, default_to, acceptance, priority, state, created_at, updated_at) values ('big', ?, ?, null, 'w', null, 0, 'pending', ?, ?)",
  );
  const addEdge = conn.prepare("insert or ignore into orch_dependencies (run_id, task_id, depends_on, created_at) values ('big', ?, ?, ?)");
  conn.transaction(() => {
    for (let i = 0; i < tasks; i++) addTask.run(`T${i}`, `task ${i}`, now, now);
    let made = 0;
    // Tasks 0..99 have no dependencies (ready); every other task depends on earlier ones only (acyclic).
    while (made < edges) {
      const t = 100 + Math.floor(Math.random() * (tasks - 100));
      const d = Math.floor(Math.random() * t);
      made += addEdge.run(`T${t}`, `T${d}`, now).changes;
    }
  })();
  conn.close();
  let k = 0;
  /** @type {Record<string, () => string[]>} */
  const ops = {
    'node -e 0': () => ['-e', '0'],
    ready: () => orch(db, 'ready', '--run', 'big'),
    'status --json': () => orch(db, 'status', '--run', 'big'),
    'dep add': () => {
      k += 1;
      return orch(db, 'dep', 'add', '--run', 'big', '--task', `T${tasks - k}`, '--depends-on', `T${k}`);
    },
    dispatch: () => orch(db, 'dispatch', '--run', 'big', '--task', `T${k}`, '--execution-mode', 'analysis', '--body', 'go'),
  };
  /** @type {Record<string, import('./common.mjs').Timing[]>} */
  const samples = Object.fromEntries(Object.keys(ops).map((x) => [x, []]));
  for (let round = 0; round < (quick ? 3 : 5); round++) {
    for (const x of Object.keys(ops)) at(samples, x).push(timed(at(ops, x)()));
  }
  const base = median(at(samples, 'node -e 0').map((s) => s.ms));
  /** @type {Record<string, number>} */
  const targets = { ready: 2, 'status --json': 10, 'dep add': 2, dispatch: 2 };
  for (const [x, target] of Object.entries(targets)) {
    const ms = median(at(samples, x).map((s) => s.ms));
    const rss = median(at(samples, x).map((s) => s.rssKiB));
    figure(
      'scale',
      `${x} (${tasks} tasks, ${edges} edges) / node -e 0`,
      ms / base,
      'x',
      x === 'dep add' ? '(none)' : `<= ${target}`,
      x === 'dep add' ? null : ms / base <= target,
      `${ms.toFixed(0)} ms${TIME ? `, peak RSS ${Math.round(rss / 1024)} MiB` : ''}`,
    );
  }
}
