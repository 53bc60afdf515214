import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { useQuery } from './api.ts';
import { Empty, ErrorText, JsonBlock, Link, Loading, Time } from './components.tsx';
import { runHref, taskHref } from './router.ts';
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
  let body: ComponentChildren;
  if (perRun) body = <PerRunBlocked />;
  else if (all.data !== undefined) body = <QuestionList items={all.data.tasks} />;
  else body = all.error ? <ErrorText error={all.error} /> : <Loading />;
  return (
    <main class="page blocked-page" data-testid="blocked-page">
      <div class="page-head">
        <h1>Blocked</h1>
        <span class="muted">Questions workers are waiting on, oldest first. An answer unblocks the worker at once.</span>
      </div>
      {!perRun && all.data !== undefined && <ErrorText error={all.error} />}
      {body}
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
  return (
    <>
      {ids.map((id) => (
        <RunBlocked key={id} run={id} report={report} />
      ))}
      <QuestionList items={ids.flatMap((id) => found[id] ?? [])} />
    </>
  );
}

/** Reads one run's blocked tasks and hands them up; renders only a refusal. */
function RunBlocked({ run, report }: { run: string; report: (run: string, items: BlockedItem[]) => void }) {
  const q = useQuery<BlockedDoc>('orch/blocked', { run });
  const items = q.data?.tasks;
  useEffect(() => {
    if (items) report(run, items);
  }, [items, run, report]);
  return <ErrorText error={q.error} />;
}

function QuestionList({ items }: { items: BlockedItem[] }) {
  if (items.length === 0)
    return (
      <Empty>
        <strong>No pending questions.</strong> Every worker has what it needs; a question appears here the moment a worker asks.
      </Empty>
    );
  const askedAt = (i: BlockedItem) => i.question?.asked_at ?? i.task.updated_at;
  const sorted = [...items].sort((a, b) => askedAt(a).localeCompare(askedAt(b)));
  return (
    <ol class="items">
      {sorted.map((item) => (
        <Question key={`${item.run ?? item.task.run}/${item.task.id}/${item.attempt.id}`} item={item} />
      ))}
    </ol>
  );
}

function Question({ item }: { item: BlockedItem }) {
  const run = item.run ?? item.task.run;
  const { task, attempt, question } = item;
  return (
    <li class="item card" data-testid="question" data-run={run} data-task={task.id}>
      <div class="question-grid">
        <div>
          <h2 class="title-wrap">
            <Link href={runHref(run)}>{run}</Link> / <Link href={taskHref(run, task.id)}>{task.id}</Link> <span>{task.title}</span>
          </h2>
          <p class="muted small title-wrap">
            {question ? `${question.asked_by} asked ` : 'blocked '}
            <Time iso={question?.asked_at ?? task.updated_at} /> · attempt {attempt.number} ({attempt.execution_mode}) for {attempt.assigned_to}
          </p>
          {question?.body ? (
            <p class="text-body" data-testid="question-body">
              {question.body}
            </p>
          ) : null}
          {question?.payload != null && (
            <div class="message-payload" data-testid="question-payload">
              <JsonBlock value={question.payload} />
            </div>
          )}
          {!question && <p class="muted">The question could not be read (see the task's thread).</p>}
        </div>
        <AnswerForm run={run} task={task.id} />
      </div>
    </li>
  );
}
