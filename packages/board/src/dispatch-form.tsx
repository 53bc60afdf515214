import { useAction } from './api.ts';
import { Button, ErrorText, formValues } from './components.tsx';

/**
 * Dispatch a ready task (`orch dispatch`): the agent (`to`, default the task's default_to), the
 * mode (analysis | code) and, optionally, instructions; without them the task's title and summary
 * are the body. Code mode uses the server's defaults (its repository and current branch).
 */
export function DispatchForm({
  run,
  task,
  title,
  summary,
  defaultTo,
  compact,
}: {
  run: string;
  task: string;
  title: string;
  summary?: string | null;
  defaultTo?: string | null;
  compact?: boolean;
}) {
  const action = useAction();
  return (
    <form
      class={`dispatch ${compact ? 'dispatch-compact' : ''}`}
      data-testid="dispatch"
      onSubmit={async (e) => {
        e.preventDefault();
        const v = formValues(e.currentTarget);
        const input: Record<string, unknown> = {
          run,
          task,
          executionMode: v.mode ?? 'analysis',
          body: v.body ?? (summary ? `${title}\n\n${summary}` : title),
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
      {compact ? null : <textarea name="body" rows={3} aria-label="Instructions" placeholder="Instructions (default: the task's title and summary)" />}
      <ErrorText error={action.error} />
    </form>
  );
}
