import { useState } from 'preact/hooks';
import { isLeader, useMe } from './api.ts';
import { Button, Link, StateBadge, Time } from './components.tsx';
import { DispatchForm } from './dispatch-form.tsx';
import { taskHref } from './router.ts';
import type { StatusTask } from './run-types.ts';
import { COLUMNS, stateClass } from './states.ts';

/**
 * Cards a column shows before "Show all". A 1,000-task run draws every card (about 0.2 s of script
 * in `npm run bench`); a bigger column waits to be asked.
 */
const FIRST_CARDS = 1000;

/** The column a task belongs in: pending splits into ready and waiting (`pending`). */
export function columnOf(t: StatusTask): string {
  return t.state === 'pending' ? (t.ready ? 'ready' : 'pending') : t.state;
}

/** The run's tasks as columns by state; empty columns collapse to a narrow strip. */
export function Kanban({ run, tasks }: { run: string; tasks: StatusTask[] }) {
  const by = new Map<string, StatusTask[]>(COLUMNS.map((c) => [c.state, []]));
  for (const t of tasks) {
    const col = columnOf(t);
    if (!by.has(col)) by.set(col, []);
    by.get(col)?.push(t);
  }
  const columns = [...COLUMNS, ...[...by.keys()].filter((s) => !COLUMNS.some((c) => c.state === s)).map((s) => ({ state: s, title: s }))];
  return (
    <div class="kanban" data-testid="kanban">
      {columns.map((c) => (
        <Column key={c.state} run={run} state={c.state} title={c.title} tasks={by.get(c.state) ?? []} />
      ))}
    </div>
  );
}

function Column({ run, state, title, tasks }: { run: string; state: string; title: string; tasks: StatusTask[] }) {
  const [all, setAll] = useState(false);
  const shown = all ? tasks : tasks.slice(0, FIRST_CARDS);
  const empty = tasks.length === 0;
  return (
    <section
      class={`column ${stateClass(state)} ${empty ? 'column-empty' : ''}`}
      data-testid="column"
      data-state={state}
      aria-label={`${title}: ${tasks.length}`}
    >
      <h3 class="column-head">
        <span class="column-title">{title}</span> <span class="count">{tasks.length}</span>
      </h3>
      {empty ? null : (
        <ul class="cards">
          {shown.map((t) => (
            <Card key={t.id} run={run} task={t} />
          ))}
        </ul>
      )}
      {shown.length < tasks.length ? (
        <Button class="show-all" onClick={() => setAll(true)}>
          Show all {tasks.length}
        </Button>
      ) : null}
    </section>
  );
}

function Card({ run, task }: { run: string; task: StatusTask }) {
  const leader = isLeader(useMe());
  const a = task.latest_attempt;
  const ready = task.state === 'pending' && task.ready;
  return (
    <li class={`kcard ${stateClass(columnOf(task))}`} data-testid="card" data-task={task.id}>
      <div class="kcard-head">
        <Link href={taskHref(run, task.id)} class="kcard-id ellipsis" title={task.id}>
          {task.id}
        </Link>
        {task.state === 'pending' ? null : <StateBadge state={task.state} />}
      </div>
      <p class="kcard-title" title={task.title}>
        {task.title}
      </p>
      <p class="kcard-meta muted">
        {a ? (
          <>
            <span class="ellipsis" title={a.assigned_to}>
              {a.assigned_to}
            </span>
            <span>
              #{a.number} {a.execution_mode}
            </span>
          </>
        ) : task.waiting_on.length > 0 ? (
          <span class="ellipsis" title={`waits for ${task.waiting_on.join(', ')}`}>
            waits for {task.waiting_on.join(', ')}
          </span>
        ) : null}
        <Time iso={task.updated_at} />
      </p>
      {task.state === 'blocked' && leader ? (
        <p class="kcard-ask">
          <Link href="#/blocked">Waiting for an answer →</Link>
        </p>
      ) : null}
      {ready && leader ? <DispatchForm run={run} task={task.id} title={task.title} summary={task.summary} defaultTo={task.default_to} /> : null}
    </li>
  );
}
