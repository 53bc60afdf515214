import type { ComponentChildren } from 'preact';
import { useQuery } from './api.ts';
import { Empty, ErrorText, JsonBlock, Link, Loading, Time } from './components.tsx';
import { runHref, taskHref } from './router.ts';
import { AnswerForm } from './blocked-answer.tsx';
import type { BlockedDoc, BlockedItem } from './task-types.ts';

/**
 * `#/blocked`: every pending question across runs, each with an answer box. `orch blocked` without
 * --run (every run that is not done or cancelled), re-read on every change, so an answered question
 * leaves the list and a new one appears without a reload. Only this page reads the questions: the
 * nav's badge asks for the count alone (`--count`), so other pages never fetch their bodies.
 */
export function BlockedPage() {
  const all = useQuery<BlockedDoc>('orch/blocked', {});
  let body: ComponentChildren;
  if (all.data !== undefined) body = <QuestionList items={all.data.tasks} />;
  else body = all.error ? <ErrorText error={all.error} /> : <Loading />;
  return (
    <main class="page blocked-page" data-testid="blocked-page">
      <div class="page-head">
        <h1>Blocked</h1>
        <span class="muted">Questions workers are waiting on, oldest first. An answer unblocks the worker at once.</span>
      </div>
      {all.data !== undefined && <ErrorText error={all.error} />}
      {body}
    </main>
  );
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
