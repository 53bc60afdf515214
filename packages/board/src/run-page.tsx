import { useQuery } from './api.ts';
import { ErrorText, Loading, StateBadge } from './components.tsx';

interface RunShow {
  run: { id: string; goal: string; state: string };
  counts: Record<string, number>;
}

/** A run: header, DAG, kanban, timeline and the leader's forms. */
export function RunPage({ run }: { run: string }) {
  const q = useQuery<RunShow>('orch/run/show', { run });
  return (
    <main class="page" data-testid="run-page">
      {q.error ? <ErrorText error={q.error} /> : null}
      {q.data ? (
        <h1>
          {q.data.run.id}{' '}
          <span data-testid="run-state">
            <StateBadge state={q.data.run.state} />
          </span>
        </h1>
      ) : q.loading ? (
        <Loading />
      ) : null}
    </main>
  );
}
