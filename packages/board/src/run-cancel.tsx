import { useState } from 'preact/hooks';
import { useAction } from './api.ts';
import { Button, ErrorText } from './components.tsx';

/**
 * Cancels the whole run (`orch cancel --run R`): every unfinished task and its live attempt. Two
 * steps (no browser dialog): the button asks again, with an optional reason, before it acts.
 */
export function CancelRun({ run }: { run: string }) {
  const [asking, setAsking] = useState(false);
  const action = useAction();
  if (!asking)
    return (
      <div class="cancel-run">
        <Button variant="danger" onClick={() => setAsking(true)}>
          Cancel run…
        </Button>
      </div>
    );
  return (
    <form
      class="cancel-run cancel-run-ask"
      data-testid="cancel-run"
      onSubmit={async (e) => {
        e.preventDefault();
        const reason = (new FormData(e.currentTarget).get('reason') as string | null)?.trim();
        const doc = await action.run('orch/cancel', reason ? { run, reason } : { run });
        if (doc) setAsking(false);
      }}
    >
      <span>Cancel every unfinished task of {run} and the run itself?</span>
      <input name="reason" aria-label="Reason (optional)" placeholder="Reason (optional)" autocomplete="off" />
      <div class="row">
        <Button type="submit" variant="danger" busy={action.busy}>
          Cancel the run
        </Button>
        <Button
          onClick={() => {
            setAsking(false);
            action.clear();
          }}
        >
          Keep it
        </Button>
      </div>
      <ErrorText error={action.error} />
    </form>
  );
}
