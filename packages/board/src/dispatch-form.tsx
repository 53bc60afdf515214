import { useAction } from './api.ts';
import { Button, ErrorText, formValues } from './components.tsx';
import { defaultInstructions } from './task-logic.ts';

/**
 * A ready card's Dispatch (`orch dispatch`): the agent (`to`, default the task's default_to) and the
 * mode (analysis | code); the body is the task's title and summary. Code mode uses the server's
 * defaults (its repository and current branch). The task page's fuller form is task-actions.tsx.
 */
export function DispatchForm({
  run,
  task,
  title,
  summary,
  defaultTo,
}: {
  run: string;
  task: string;
  title: string;
  summary?: string | null;
  defaultTo?: string | null;
}) {
  const action = useAction();
  return (
    <form
      class="dispatch dispatch-compact"
      data-testid="dispatch"
      onSubmit={async (e) => {
        e.preventDefault();
        const v = formValues(e.currentTarget);
        const input: Record<string, unknown> = {
          run,
          task,
          executionMode: v.mode ?? 'analysis',
          body: defaultInstructions({ title, summary }),
        };
        if (v.to) input.to = v.to;
        await action.run('orch/dispatch', input);
      }}
    >
      <div class="dispatch-row">
        <input name="to" aria-label={`Agent for ${task}`} placeholder={defaultTo ?? 'agent'} defaultValue={defaultTo ?? ''} autocomplete="off" />
        <select name="mode" aria-label={`Mode for ${task}`}>
          <option value="analysis">analysis</option>
          <option value="code">code</option>
        </select>
        <Button type="submit" variant="primary" busy={action.busy}>
          Dispatch
        </Button>
      </div>
      <ErrorText error={action.error} />
    </form>
  );
}
