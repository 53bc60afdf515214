import { useCallback, useEffect, useState } from 'preact/hooks';
import { useQuery } from './api.ts';
import { Empty, ErrorText, JsonBlock, Link, Loading, Time } from './components.tsx';
import { AnswerForm } from './blocked-answer.tsx';
import type { BlockedDoc, BlockedItem } from './task-types.ts';

/**
 * `#/blocked`: every pending question across runs, each with an answer box. Asks `orch blocked`
 * without --run (every run that is not done or cancelled); an orch that still requires --run
 * (exit 2) is asked once per active run instead. Re-read on every change, so an answered question
 * leaves the list and a new one appears without a reload.
 */
export function BlockedPage() {
  const all = useQuery<BlockedDoc>('orch/blocked', {});
  const perRun = all.error?.exitCode === 2;
  return (
    <main class="page blocked-page" data-testid="blocked-page">
      <header class="page-head">
        <h1>Blocked</h1>
        <p class="muted">Questions workers are waiting on, oldest first. An answer unblocks the worker at once.</p>
      </header>
      {perRun ? (
        <PerRunBlocked />
      ) : all.data === undefined ? (
        all.error ? (
          <ErrorText error={all.error} />
        ) : (
          <Loading />
        )
      ) : (
        <>
          {all.error && <ErrorText error={all.error} />}
          <QuestionList items={all.data.tasks} />
        </>
      )}
    </main>
  );
}

/** The fallback: `orch blocked --run R` for every active run, shown as one list. */
function PerRunBlocked() {
  const runs = useQuery<{ runs: { id: string }[] }>('orch/run/list', { state: 'active' });
  const [found, setFound] = useState<Record<string, BlockedItem[]>>({});
  const report = useCallback((run: string, list: BlockedItem[]) => setFound((f) => ({ ...f, [run]: list })), []);
  if (runs.data === undefined) return runs.error ? <ErrorText error={runs.error} /> : <Loading />;
  const ids = runs.data.runs.map((r) => r.id);
  const items = ids.flatMap((id) => found[id] ?? []);
  return (
    <>
      {ids.map((id) => (
        <RunBlocked key={id} run={id} report={report} />
      ))}
      <QuestionList items={items} />
    </>
  );
}

/** Reads one run's blocked tasks and hands them up; renders only a refusal. */
function RunBlocked({ run, report }: { run: string; report: (run: string, items: BlockedItem[]) => void }) {
  const q = useQuery<BlockedDoc>('orch/blocked', { run });
  const items = q.data?.tasks;
  useEffect(() => {
    if (items)
      report(
        run,
        items.map((i) => ({ ...i, run })),
      );
  }, [items, run, report]);
  return q.error ? <ErrorText error={q.error} /> : null;
}

function QuestionList({ items }: { items: BlockedItem[] }) {
  if (items.length === 0) return <Empty>No pending questions. Every worker has what it needs.</Empty>;
  const sorted = [...items].sort((a, b) => a.question.asked_at.localeCompare(b.question.asked_at));
  return (
    <ol class="questions">
      {sorted.map((item) => (
        <Question key={`${item.run ?? item.task.run}/${item.task.id}/${item.question.message_id}`} item={item} />
      ))}
    </ol>
  );
}

function Question({ item }: { item: BlockedItem }) {
  const run = item.run ?? item.task.run;
  const { task, attempt, question } = item;
  return (
    <li class="question panel" data-testid="question" data-run={run} data-task={task.id}>
      <div class="question-head">
        <Link href={`#/runs/${encodeURIComponent(run)}`}>{run}</Link> /{' '}
        <Link href={`#/runs/${encodeURIComponent(run)}/tasks/${encodeURIComponent(task.id)}`}>
          {task.id}: {task.title}
        </Link>
      </div>
      <p class="muted small">
        asked by {question.asked_by} (attempt {attempt.number}, {attempt.execution_mode}) <Time iso={question.asked_at} />
      </p>
      {question.body && (
        <div class="text-body question-body" data-testid="question-body">
          {question.body}
        </div>
      )}
      {question.payload != null && (
        <div class="question-payload" data-testid="question-payload">
          <JsonBlock value={question.payload} />
        </div>
      )}
      <AnswerForm run={run} task={task.id} />
    </li>
  );
}
