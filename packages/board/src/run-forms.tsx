import { useState } from 'preact/hooks';
import { useAction } from './api.ts';
import { Button, ErrorText, Field, formValues } from './components.tsx';
import type { StatusTask } from './run-types.ts';

/** Adds a task (`orch task add`): id, title, summary, and optionally the agent dispatch defaults to. */
export function AddTask({ run }: { run: string }) {
  const action = useAction<{ task: { id: string } }>();
  const [added, setAdded] = useState<string | undefined>(undefined);
  return (
    <form
      class="card"
      data-testid="add-task"
      onSubmit={async (e) => {
        e.preventDefault();
        const form = e.currentTarget;
        const doc = await action.run('orch/task/add', { run, ...formValues(form) });
        setAdded(doc?.task.id);
        if (doc) form.reset();
      }}
    >
      <h2>Add a task</h2>
      <div class="form-row">
        <Field label="Task id" name="task" required placeholder="T1" autocomplete="off" class="narrow" />
        <Field label="Title" name="title" required placeholder="One line" autocomplete="off" />
      </div>
      <Field label="Summary" name="summary" placeholder="Optional" autocomplete="off" />
      <Field label="Default agent" name="defaultTo" placeholder="Optional: who dispatch hands it to" autocomplete="off" />
      <Button type="submit" variant="primary" busy={action.busy}>
        Add task
      </Button>
      <ErrorText error={action.error} />
      {added ? (
        <p class="ok" role="status">
          Added {added}.
        </p>
      ) : null}
    </form>
  );
}

/** Adds a dependency (`orch dep add`); a cycle is refused by the CLI, which names it (shown as is). */
export function AddDependency({ run, tasks }: { run: string; tasks: StatusTask[] }) {
  const action = useAction<{ created: boolean; task: string; depends_on: string }>();
  const [done, setDone] = useState<string | undefined>(undefined);
  const list = `dep-tasks-${run}`;
  return (
    <form
      class="card"
      data-testid="add-dep"
      onSubmit={async (e) => {
        e.preventDefault();
        const form = e.currentTarget;
        const doc = await action.run('orch/dep/add', { run, ...formValues(form) });
        setDone(doc ? `${doc.task} now waits for ${doc.depends_on}${doc.created ? '' : ' (it already did)'}.` : undefined);
        if (doc) form.reset();
      }}
    >
      <h2>Add a dependency</h2>
      <div class="form-row">
        <Field label="Task" name="task" required list={list} placeholder="T2" autocomplete="off" hint="the one that waits" />
        <Field label="Depends on" name="dependsOn" required list={list} placeholder="T1" autocomplete="off" hint="must be done first" />
      </div>
      <datalist id={list}>
        {tasks.map((t) => (
          <option key={t.id} value={t.id}>
            {t.title}
          </option>
        ))}
      </datalist>
      <Button type="submit" variant="primary" busy={action.busy}>
        Add dependency
      </Button>
      <ErrorText error={action.error} />
      {done ? (
        <p class="ok" role="status">
          {done}
        </p>
      ) : null}
    </form>
  );
}
