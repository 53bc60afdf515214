import { Empty } from './components.tsx';

/** A task's page: attempts, thread, diff and the leader's buttons (ui-task builds it). */
export function TaskPage({ run, task }: { run: string; task: string }) {
  return (
    <main class="page" data-testid="task-page">
      <h1>
        {run} / {task}
      </h1>
      <Empty>The task page is on its way.</Empty>
    </main>
  );
}
