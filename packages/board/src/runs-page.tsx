import { useState } from 'preact/hooks';
import { useAction, useQuery } from './api.ts';
import { Button, Empty, ErrorText, Field, formValues, Link, Loading, StateBadge, Time } from './components.tsx';
import { Progress } from './progress.tsx';
import { runHref } from './router.ts';

/** One run of `orch run list --json`. */
export interface RunRow {
  id: string;
  goal: string;
  summary: string | null;
  state: string;
  created_at: string;
  updated_at: string;
  last_activity?: string;
  counts: Record<string, number>;
}

/** The runs list (newest first, live) and the form that creates a run. */
/** The run states the list can be narrowed to (`orch run list --state`); '' is every run. */
const FILTERS: [string, string][] = [
  ['', 'All'],
  ['active', 'Active'],
  ['done', 'Done'],
  ['cancelled', 'Cancelled'],
];

/** `orch run list`'s default and largest --limit: the list shows the newest this many, then more on request. */
const FIRST_LIMIT = 100;
const MAX_LIMIT = 10_000;

export function RunsPage() {
  const [state, setState] = useState('');
  const [limit, setLimit] = useState(FIRST_LIMIT);
  const q = useQuery<{ runs: RunRow[] }>('orch/run/list', state ? { state, limit: String(limit) } : { limit: String(limit) });
  return (
    <main class="page runs-page">
      <div class="page-head">
        <h1>Runs</h1>
        <div class="filters" role="toolbar" aria-label="Show runs">
          {FILTERS.map(([value, label]) => (
            <button
              key={value}
              type="button"
              class="btn filter"
              aria-pressed={state === value ? 'true' : 'false'}
              onClick={() => {
                setState(value);
                setLimit(FIRST_LIMIT);
              }}
            >
              {label}
            </button>
          ))}
        </div>
      </div>
      <div class="runs-layout">
        <section aria-label="Runs" class="runs-section">
          {q.error ? <ErrorText error={q.error} /> : null}
          {q.data === undefined ? (
            q.loading ? (
              <Loading />
            ) : null
          ) : q.data.runs.length === 0 ? (
            <Empty>
              {state ? (
                <>No {state} runs.</>
              ) : (
                <>
                  <strong>No runs yet.</strong> Create one here, or with <code>orch run init</code>; it appears at once.
                </>
              )}
            </Empty>
          ) : (
            <>
              <ul class="runs" data-testid="runs">
                {q.data.runs.map((r) => (
                  <RunItem key={r.id} run={r} />
                ))}
              </ul>
              <Shown count={q.data.runs.length} limit={limit} onMore={() => setLimit(Math.min(limit * 4, MAX_LIMIT))} />
            </>
          )}
        </section>
        <CreateRun />
      </div>
    </main>
  );
}

/**
 * How many runs the list shows. `orch run list` answers the newest `limit`; a full page may have
 * more behind it: "Show more" asks for up to 4 times as many, up to the command's largest limit.
 */
function Shown({ count, limit, onMore }: { count: number; limit: number; onMore(): void }) {
  const full = count >= limit;
  return (
    <p class="muted small runs-shown" data-testid="runs-shown">
      {full ? `Showing the newest ${count} runs.` : `${count} ${count === 1 ? 'run' : 'runs'}.`}{' '}
      {full && limit < MAX_LIMIT ? (
        <Button onClick={onMore}>Show more</Button>
      ) : full ? (
        <>
          Older runs: <code>orch run list</code>.
        </>
      ) : null}
    </p>
  );
}

function RunItem({ run }: { run: RunRow }) {
  const total = run.counts.total ?? 0;
  const done = run.counts.done ?? 0;
  const parts = Object.entries(run.counts).filter(([k, n]) => k !== 'total' && n > 0);
  return (
    <li class="run-row" data-testid="run-row" data-run={run.id}>
      <div class="run-row-main">
        <Link href={runHref(run.id)} class="run-id ellipsis" title={run.id}>
          {run.id}
        </Link>
        <StateBadge state={run.state} />
      </div>
      <p class="run-goal ellipsis" title={run.goal}>
        {run.goal}
      </p>
      <div class="run-row-meta">
        <Progress counts={run.counts} />
        <span class="muted">
          {done}/{total} done
          {parts.length > 0 ? ' · ' : ''}
          {parts
            .filter(([k]) => k !== 'done')
            .map(([k, n]) => `${n} ${k}`)
            .join(', ')}
        </span>
        <span class="muted">
          active <Time iso={run.last_activity ?? run.updated_at} />
        </span>
      </div>
    </li>
  );
}

/** Creates a run and stays on the list (the new row appears live), with a link to the run. */
function CreateRun() {
  const action = useAction<{ run: { id: string } }>();
  const [created, setCreated] = useState<string | undefined>(undefined);
  return (
    <form
      class="card create-run"
      data-testid="create-run"
      onSubmit={async (e) => {
        e.preventDefault();
        const form = e.currentTarget;
        const doc = await action.run('orch/run/init', formValues(form));
        setCreated(doc?.run.id);
        if (doc) form.reset();
      }}
    >
      <h2>New run</h2>
      <Field label="Run id" name="run" required placeholder="blog_mvp_001" autocomplete="off" />
      <Field label="Goal" name="goal" required placeholder="One line: what the run achieves" autocomplete="off" />
      <Field label="Summary" name="summary" placeholder="Optional" autocomplete="off" />
      <Button type="submit" variant="primary" busy={action.busy}>
        Create run
      </Button>
      <ErrorText error={action.error} />
      {created ? (
        <p class="ok" role="status">
          Created <Link href={runHref(created)}>{created}</Link>.
        </p>
      ) : null}
    </form>
  );
}
