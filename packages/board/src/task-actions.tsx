import { useState } from 'preact/hooks';
import { useAction } from './api.ts';
import { ErrorText } from './components.tsx';
import type { Task } from './task-types.ts';

/**
 * Dispatch a ready task (`orch dispatch`): agent, mode, instructions, and for code mode where the
 * repository is (on the server's machine). Empty instructions send the task's summary or title:
 * the CLI needs a body and the task already says what to do.
 */
export function DispatchForm({ task, onDone }: { task: Task; onDone?: () => void }) {
  const action = useAction();
  const [to, setTo] = useState(task.default_to ?? '');
  const [mode, setMode] = useState('analysis');
  const [body, setBody] = useState('');
  const [repoPath, setRepoPath] = useState('');
  const [baseRef, setBaseRef] = useState('');
  const id = `dispatch-${task.id}`;

  async function submit(e: Event) {
    e.preventDefault();
    const input: Record<string, unknown> = { run: task.run, task: task.id, executionMode: mode, body: body.trim() || task.summary || task.title };
    if (to.trim() !== '') input.to = to.trim();
    if (mode === 'code' && repoPath.trim() !== '') input.repoPath = repoPath.trim();
    if (mode === 'code' && baseRef.trim() !== '') input.baseRef = baseRef.trim();
    if ((await action.run('orch/dispatch', input)) !== undefined) {
      setBody('');
      onDone?.();
    }
  }

  return (
    <form class="dispatch-form stack" data-testid="dispatch" onSubmit={submit}>
      <div class="row">
        <label for={`${id}-to`}>Agent</label>
        <input
          id={`${id}-to`}
          name="to"
          value={to}
          onInput={(e) => setTo(e.currentTarget.value)}
          placeholder={task.default_to ?? 'agent name'}
          autocomplete="off"
        />
        <label for={`${id}-mode`}>Mode</label>
        <select id={`${id}-mode`} name="mode" value={mode} onChange={(e) => setMode(e.currentTarget.value)}>
          <option value="analysis">analysis</option>
          <option value="code">code</option>
        </select>
      </div>
      {mode === 'code' && (
        <div class="row">
          <label for={`${id}-repo`}>Repository</label>
          <input id={`${id}-repo`} name="repoPath" value={repoPath} onInput={(e) => setRepoPath(e.currentTarget.value)} placeholder="the server's directory" />
          <label for={`${id}-base`}>Base ref</label>
          <input id={`${id}-base`} name="baseRef" value={baseRef} onInput={(e) => setBaseRef(e.currentTarget.value)} placeholder="current branch" />
        </div>
      )}
      <label for={`${id}-body`}>Instructions</label>
      <textarea id={`${id}-body`} name="body" rows={2} value={body} onInput={(e) => setBody(e.currentTarget.value)} placeholder="default: the task's summary" />
      <div class="actions">
        <button type="submit" disabled={action.busy}>
          Dispatch
        </button>
      </div>
      <ErrorText error={action.error} />
    </form>
  );
}

/**
 * The leader's buttons for a dispatched task: Retry, Reassign (to another agent), Cancel. Each is
 * offered whenever it can make sense; the CLI decides, and its refusal is shown as it words it.
 */
export function LeaderActions({ task }: { task: Task }) {
  const retry = useAction();
  const reassign = useAction();
  const cancel = useAction();
  const [to, setTo] = useState('');
  const [reason, setReason] = useState('');
  const id = `actions-${task.id}`;
  const key = { run: task.run, task: task.id };

  async function doReassign(e: Event) {
    e.preventDefault();
    if ((await reassign.run('orch/reassign', { ...key, to: to.trim() })) !== undefined) setTo('');
  }
  async function doCancel() {
    const input: Record<string, unknown> = { ...key };
    if (reason.trim() !== '') input.reason = reason.trim();
    if ((await cancel.run('orch/cancel', input)) !== undefined) setReason('');
  }

  return (
    <div class="leader-actions stack">
      <div class="row">
        <button type="button" onClick={() => retry.run('orch/retry', key)} disabled={retry.busy}>
          Retry
        </button>
        <ErrorText error={retry.error} />
      </div>
      <form class="row" data-testid="reassign" onSubmit={doReassign}>
        <label for={`${id}-to`}>Reassign to</label>
        <input id={`${id}-to`} name="to" value={to} onInput={(e) => setTo(e.currentTarget.value)} placeholder="agent name" autocomplete="off" />
        <button type="submit" disabled={reassign.busy}>
          Reassign
        </button>
      </form>
      <ErrorText error={reassign.error} />
      <div class="row">
        <label for={`${id}-reason`}>Reason</label>
        <input
          id={`${id}-reason`}
          name="reason"
          value={reason}
          onInput={(e) => setReason(e.currentTarget.value)}
          placeholder="optional, posted to the worker"
        />
        <button type="button" class="danger" onClick={doCancel} disabled={cancel.busy}>
          Cancel
        </button>
      </div>
      <ErrorText error={cancel.error} />
    </div>
  );
}
