import { useState } from 'preact/hooks';
import { isLeader, useMe, useQuery } from './api.ts';
import { Empty, ErrorText, JsonBlock, Link, Loading, StateBadge, Time } from './components.tsx';
import { runHref, taskHref } from './router.ts';
import { AnswerForm } from './blocked-answer.tsx';
import { DispatchForm, hasLeaderActions, LeaderActions } from './task-actions.tsx';
import { DiffPanel } from './task-diff.tsx';
import { ThreadPanel } from './task-thread.tsx';
import type { Attempt, TaskDetail, TaskShow } from './task-types.ts';

/**
 * `#/runs/<run>/tasks/<task>`: the task (`orch task show`), its attempts, the selected attempt's
 * thread and, for code mode, its diff; the leader's actions. Everything re-reads on every change.
 */
export function TaskPage({ run, task }: { run: string; task: string }) {
  const q = useQuery<TaskShow>('orch/task/show', { run, task });
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const leader = isLeader(useMe());
  const claims = useClaimTimes(run, task, leader);

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
      <div class="page-head">
        <h1 class="title-wrap">
          {t.id} · {t.title}
        </h1>
        <span data-testid="task-state" data-state={t.state}>
          <StateBadge state={t.state} />
        </span>
        {t.ready && <StateBadge state="ready" />}
      </div>
      <ErrorText error={q.error} />
      <div class="two-col">
        <div class="stack">
          <TaskFacts task={t} />
          {leader && t.ready && (
            <section class="card" aria-label="Dispatch">
              <h2>Dispatch</h2>
              <DispatchForm task={t} />
            </section>
          )}
          <section class="card" aria-label="Attempts">
            <h2>Attempts</h2>
            {attempts.length === 0 ? (
              <Empty>{t.ready ? 'Not dispatched yet: the task is ready.' : `Not dispatched yet: waiting on ${t.waiting_on.join(', ') || 'nothing'}.`}</Empty>
            ) : (
              <ol class="items">
                {[...attempts].reverse().map((a) => (
                  <AttemptRow key={a.id} attempt={a} claimedAt={claims.get(a.id)} selected={a.id === current?.id} onSelect={() => setSelected(a.id)} />
                ))}
              </ol>
            )}
          </section>
          {leader && attempts.length > 0 && hasLeaderActions(t.state) && (
            <section class="card" aria-label="Leader actions">
              <h2>Actions</h2>
              <LeaderActions task={t} />
            </section>
          )}
        </div>
        <div class="stack">
          {leader && t.state === 'blocked' && (
            <section class="card" aria-label="Pending question">
              <h2>Answer the pending question</h2>
              <p class="muted small">The worker is waiting; the question is the thread's last message below.</p>
              <AnswerForm run={t.run} task={t.id} />
            </section>
          )}
          {current ? (
            <section class="card" aria-label={`Attempt ${current.number}'s thread`}>
              <ThreadPanel threadId={current.thread_id} />
            </section>
          ) : null}
          {current?.execution_mode === 'code' && <DiffPanel key={current.id} attempt={current} />}
        </div>
      </div>
    </main>
  );
}

interface ClaimEvents {
  events: { task: string | null; attempt: string | null; created_at: string }[];
}

/** When each attempt of the task was last claimed: the run's task_claimed events (`orch wait` with no wait). */
function useClaimTimes(run: string, task: string, leader: boolean): Map<string, string> {
  const q = useQuery<ClaimEvents>('orch/wait', leader ? { run, for: 'task_claimed', afterEvent: '0', timeoutSeconds: '0' } : undefined);
  const out = new Map<string, string>();
  for (const e of q.data?.events ?? []) if (e.task === task && e.attempt) out.set(e.attempt, e.created_at);
  return out;
}

function Crumbs({ run, task }: { run: string; task: string }) {
  return (
    <nav class="crumbs" aria-label="Breadcrumbs">
      <Link href="#/">Runs</Link> / <Link href={runHref(run)}>{run}</Link> / <span>{task}</span>
    </nav>
  );
}

function TaskFacts({ task }: { task: TaskDetail }) {
  return (
    <section class="card" aria-label="Task">
      {task.summary ? <p class="text-body">{task.summary}</p> : <p class="muted">No summary.</p>}
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
        <details open>
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
    <span>
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

function AttemptRow({ attempt: a, claimedAt, selected, onSelect }: { attempt: Attempt; claimedAt?: string; selected: boolean; onSelect: () => void }) {
  return (
    <li class={selected ? 'item selected' : 'item'} data-testid="attempt" data-attempt={a.id} data-state={a.state}>
      <div class="item-head">
        <button type="button" class="link-button" aria-pressed={selected} onClick={onSelect} title="Show this attempt's thread">
          Attempt {a.number}
        </button>
        <StateBadge state={a.state} />
        <span class="title-wrap">{a.assigned_to}</span>
        <span class="muted">{a.execution_mode}</span>
      </div>
      <div class="small muted">
        dispatched <Time iso={a.created_at} />
        {a.thread?.claimed_by && (
          <>
            {' '}
            · claimed by {a.thread.claimed_by} {claimedAt && <Time iso={claimedAt} />}
          </>
        )}
        {a.ended_at && (
          <>
            {' '}
            · ended <Time iso={a.ended_at} />
          </>
        )}
      </div>
      {a.execution_mode === 'code' && (
        <div class="small mono title-wrap">
          {a.branch ?? ''}
          {a.worktree_path ? ` · ${a.worktree_path}` : a.remote_url ? ` · ${a.remote_url}` : ''}
        </div>
      )}
    </li>
  );
}
