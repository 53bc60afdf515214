import { isLeader, useMe, useQuery } from './api.ts';
import { Empty, ErrorText, Link, Loading, StateBadge, Time } from './components.tsx';
import { DagView } from './dag-view.tsx';
import { Kanban } from './kanban.tsx';
import { Progress } from './progress.tsx';
import { CancelRun } from './run-cancel.tsx';
import { AddDependency, AddTask } from './run-forms.tsx';
import type { RunStatus } from './run-types.ts';
import { COLUMNS } from './states.ts';
import { Timeline } from './timeline.tsx';

/**
 * A run: its header (goal, state, counts, progress), the task graph, the kanban, the timeline,
 * and the leader's forms. All of it from `orch status` (which folds worker activity in first),
 * fetched again on every change.
 */
export function RunPage({ run }: { run: string }) {
  const leader = isLeader(useMe());
  const q = useQuery<RunStatus>('orch/status', { run });
  const s = q.data;
  return (
    <main class="page run-page" data-testid="run-page">
      <p class="crumbs">
        <Link href="#/">Runs</Link> / <span class="mono">{run}</span>
      </p>
      {s ? <RunHeader status={s} leader={leader} /> : q.loading ? <Loading /> : null}
      <ErrorText error={q.error} />
      {!s && q.error?.exitCode === 3 ? (
        <Empty>
          There is no run <span class="mono">{run}</span> on this server. <Link href="#/">See the runs</Link>.
        </Empty>
      ) : null}
      {s ? (
        <div class="run-layout">
          <div class="run-main">
            <section aria-label="Task graph" class="panel">
              <h2>Graph</h2>
              <DagView run={run} tasks={s.tasks} />
            </section>
            <section aria-label="Tasks by state" class="panel">
              <h2>Tasks</h2>
              <Kanban run={run} tasks={s.tasks} />
            </section>
            {leader ? (
              <div class="run-forms">
                <AddTask run={run} />
                <AddDependency run={run} tasks={s.tasks} />
              </div>
            ) : null}
          </div>
          <aside class="run-side panel">
            <Timeline run={run} lastEvent={s.last_event} />
          </aside>
        </div>
      ) : null}
    </main>
  );
}

function RunHeader({ status, leader }: { status: RunStatus; leader: boolean }) {
  const { run, counts } = status;
  const total = counts.total ?? 0;
  const ready = status.tasks.filter((t) => t.state === 'pending' && t.ready).length;
  const shown = COLUMNS.map((c) => c.state).filter((st) => st !== 'ready' && (counts[st] ?? 0) > (st === 'pending' ? ready : 0));
  return (
    <header class="run-head">
      <div class="run-title">
        <h1 class="wrap">{run.id}</h1>
        <span data-testid="run-state" data-state={run.state}>
          <StateBadge state={run.state} />
        </span>
      </div>
      <p class="run-goal-line wrap">{run.goal}</p>
      {run.summary ? <p class="muted wrap">{run.summary}</p> : null}
      <div class="run-stats">
        <Progress counts={counts} />
        <span>
          <strong>{counts.done ?? 0}</strong>/{total} done
        </span>
        {ready > 0 ? <span class="stat s-ready">{ready} ready</span> : null}
        {shown
          .filter((st) => st !== 'done')
          .map((st) => (
            <span key={st} class={`stat s-${st}`}>
              {st === 'pending' ? `${(counts[st] ?? 0) - ready} waiting` : `${counts[st]} ${st}`}
            </span>
          ))}
        {status.unmerged > 0 ? <span class="stat">{status.unmerged} not merged</span> : null}
        <span class="muted">
          updated <Time iso={run.updated_at} />
        </span>
      </div>
      {leader && run.state === 'active' ? <CancelRun run={run.id} /> : null}
    </header>
  );
}
