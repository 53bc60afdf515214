import { useState } from 'preact/hooks';
import { isLeader, useMe, useQuery } from './api.ts';
import { Empty, ErrorText, JsonBlock, Link, Loading, StateBadge, Time } from './components.tsx';
import { AnswerForm } from './blocked-answer.tsx';
import { DispatchForm, LeaderActions } from './task-actions.tsx';
import { DiffPanel } from './task-diff.tsx';
import { ThreadPanel } from './task-thread.tsx';
import type { Attempt, TaskDetail, TaskShow } from './task-types.ts';

const taskHref = (run: string, task: string) => `#/runs/${encodeURIComponent(run)}/tasks/${encodeURIComponent(task)}`;

/**
 * `#/runs/<run>/tasks/<task>`: the task (`orch task show`), its attempts, the selected attempt's
 * thread and, for code mode, its diff; the leader's actions. Everything re-reads on every change.
 */
export function TaskPage({ run, task }: { run: string; task: string }) {
  const q = useQuery<TaskShow>('orch/task/show', { run, task });
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const me = useMe();
  const leader = isLeader(me);

  if (q.data === undefined) {
    return (
      <main class="page task-page" data-testid="task-page">
        <Crumbs run={run} task={task} />
        {q.error ? <ErrorText error={q.error} /> : <Loading />}
      </main>
    );
  }
  const { task: t, attempts } = q.data;
  const latest = attempts.reduce<Attempt | undefined>((a, b) => (a === undefined || b.number > a.number ? b : a), undefined);
  const current = attempts.find((a) => a.id === selected) ?? latest;

  return (
    <main class="page task-page" data-testid="task-page">
      <Crumbs run={run} task={task} />
      <header class="page-head">
        <h1 class="title-wrap">
          {t.id}: {t.title}
        </h1>
        <span data-testid="task-state" data-state={t.state} class="task-state">
          <StateBadge state={t.state} />
        </span>
        {t.ready && <StateBadge state="ready" />}
      </header>
      {q.error && <ErrorText error={q.error} />}
      <TaskFacts task={t} />
      {leader && t.state === 'blocked' && current && (
        <section class="panel" aria-label="Pending question">
          <h2>Answer the pending question</h2>
          <p class="muted small">The question is the last message of the thread below.</p>
          <AnswerForm run={t.run} task={t.id} />
        </section>
      )}
      {leader && t.ready && (
        <section class="panel" aria-label="Dispatch">
          <h2>Dispatch</h2>
          <DispatchForm task={t} />
        </section>
      )}
      {leader && attempts.length > 0 && (
        <section class="panel" aria-label="Leader actions">
          <h2>Actions</h2>
          <LeaderActions task={t} />
        </section>
      )}
      <section class="panel" aria-label="Attempts">
        <h2>Attempts</h2>
        {attempts.length === 0 ? (
          <Empty>{t.ready ? 'Not dispatched yet: the task is ready.' : `Not dispatched yet: waiting on ${t.waiting_on.join(', ') || 'nothing'}.`}</Empty>
        ) : (
          <ol class="attempts">
            {attempts.map((a) => (
              <AttemptRow key={a.id} attempt={a} selected={a.id === current?.id} onSelect={() => setSelected(a.id)} />
            ))}
          </ol>
        )}
      </section>
      {current && (
        <section class="panel" aria-label={`Attempt ${current.number}`}>
          <h2>Attempt {current.number}</h2>
          <ThreadPanel threadId={current.thread_id} />
          {current.execution_mode === 'code' && <DiffPanel key={current.id} attempt={current} />}
        </section>
      )}
    </main>
  );
}

function Crumbs({ run, task }: { run: string; task: string }) {
  return (
    <nav class="crumbs" aria-label="Breadcrumbs">
      <Link href="#/">Runs</Link> / <Link href={`#/runs/${encodeURIComponent(run)}`}>{run}</Link> / <span>{task}</span>
    </nav>
  );
}

function TaskFacts({ task }: { task: TaskDetail }) {
  return (
    <section class="panel" aria-label="Task">
      {task.summary && <p class="text-body">{task.summary}</p>}
      <dl class="facts">
        <dt>Depends on</dt>
        <dd>
          <TaskLinks run={task.run} ids={task.depends_on} waiting={task.waiting_on} />
        </dd>
        <dt>Needed by</dt>
        <dd>
          <TaskLinks run={task.run} ids={task.dependents} waiting={[]} />
        </dd>
        <dt>Priority</dt>
        <dd>{task.priority}</dd>
        {task.default_to && (
          <>
            <dt>Default agent</dt>
            <dd>{task.default_to}</dd>
          </>
        )}
        <dt>Updated</dt>
        <dd>
          <Time iso={task.updated_at} />
        </dd>
      </dl>
      {task.acceptance != null && (
        <details open class="acceptance">
          <summary>Acceptance</summary>
          <JsonBlock value={task.acceptance} />
        </details>
      )}
    </section>
  );
}

function TaskLinks({ run, ids, waiting }: { run: string; ids: string[]; waiting: string[] }) {
  if (ids.length === 0) return <span class="muted">none</span>;
  return (
    <span class="task-links">
      {ids.map((id, i) => (
        <span key={id}>
          {i > 0 && ', '}
          <Link href={taskHref(run, id)}>{id}</Link>
          {waiting.includes(id) && <span class="muted"> (not done)</span>}
        </span>
      ))}
    </span>
  );
}

function AttemptRow({ attempt: a, selected, onSelect }: { attempt: Attempt; selected: boolean; onSelect: () => void }) {
  return (
    <li class={selected ? 'attempt selected' : 'attempt'} data-testid="attempt" data-attempt={a.id} data-state={a.state}>
      <button type="button" class="link-button" aria-pressed={selected} onClick={onSelect}>
        #{a.number}
      </button>{' '}
      <StateBadge state={a.state} /> <span class="attempt-agent">{a.assigned_to}</span> <span class="muted">{a.execution_mode}</span>
      <span class="attempt-times small muted">
        {' '}
        dispatched <Time iso={a.created_at} />
        {a.thread?.claimed_by && <> · claimed by {a.thread.claimed_by}</>}
        {a.ended_at && (
          <>
            {' '}
            · ended <Time iso={a.ended_at} />
          </>
        )}
      </span>
      {a.execution_mode === 'code' && (
        <div class="attempt-code small mono">
          {a.branch ?? ''} {a.worktree_path ? `· ${a.worktree_path}` : a.remote_url ? `· ${a.remote_url}` : ''}
        </div>
      )}
    </li>
  );
}
