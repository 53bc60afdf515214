import { useState } from 'preact/hooks';
import { useAction } from './api.ts';
import { Button, ErrorText, Field, TextArea } from './components.tsx';
import { defaultInstructions } from './task-logic.ts';
import type { Task } from './task-types.ts';

/**
 * Dispatch a ready task (`orch dispatch`): agent, mode, instructions, and for code mode where the
 * repository is (on the server's machine). Empty instructions send the task's title and summary
 * (as the run page's Dispatch does): the CLI needs a body and the task already says what to do.
 */
export function DispatchForm({ task, onDone }: { task: Task; onDone?: () => void }) {
  const action = useAction();
  const [to, setTo] = useState(task.default_to ?? '');
  const [mode, setMode] = useState('analysis');
  const [body, setBody] = useState('');
  const [repoPath, setRepoPath] = useState('');
  const [baseRef, setBaseRef] = useState('');

  async function submit(e: Event) {
    e.preventDefault();
    const input: Record<string, unknown> = {
      run: task.run,
      task: task.id,
      executionMode: mode,
      body: body.trim() || defaultInstructions(task),
    };
    if (to.trim() !== '') input.to = to.trim();
    if (mode === 'code' && repoPath.trim() !== '') input.repoPath = repoPath.trim();
    if (mode === 'code' && baseRef.trim() !== '') input.baseRef = baseRef.trim();
    if ((await action.run('orch/dispatch', input)) !== undefined) {
      setBody('');
      onDone?.();
    }
  }

  return (
    <form data-testid="dispatch" onSubmit={submit}>
      <div class="controls">
        <Field
          label="Agent"
          name="to"
          value={to}
          onInput={(e) => setTo(e.currentTarget.value)}
          placeholder={task.default_to ?? 'agent name'}
          autocomplete="off"
        />
        <label class="field field-wide">
          <span class="field-label">Mode</span>
          <select name="mode" value={mode} onChange={(e) => setMode(e.currentTarget.value)}>
            <option value="analysis">analysis (read-only)</option>
            <option value="code">code (a worktree and branch)</option>
          </select>
        </label>
      </div>
      {mode === 'code' && (
        <div class="controls">
          <Field
            label="Repository"
            name="repoPath"
            value={repoPath}
            onInput={(e) => setRepoPath(e.currentTarget.value)}
            placeholder="the server's directory"
            autocomplete="off"
          />
          <Field
            label="Base ref"
            name="baseRef"
            value={baseRef}
            onInput={(e) => setBaseRef(e.currentTarget.value)}
            placeholder="its current branch"
            autocomplete="off"
          />
        </div>
      )}
      <TextArea
        label="Instructions"
        name="body"
        rows={2}
        value={body}
        onInput={(e) => setBody(e.currentTarget.value)}
        placeholder="Default: the task's title and summary"
      />
      <Button type="submit" variant="primary" busy={action.busy}>
        Dispatch
      </Button>
      <ErrorText error={action.error} />
    </form>
  );
}

/** Task states in which each control is offered (the CLI still decides, and its refusal is shown). */
const RETRY_STATES = new Set(['failed', 'expired', 'done']);
const LIVE_OR_ENDED = new Set(['dispatched', 'running', 'blocked', 'failed', 'expired']);

/** Whether a task in `state` has any leader control to offer. */
export function hasLeaderActions(state: string): boolean {
  return RETRY_STATES.has(state) || LIVE_OR_ENDED.has(state);
}

/**
 * The leader's controls for a dispatched task: Retry (failed, expired, or done code work not
 * merged), Reassign (to another agent) and Cancel (until the task is done or cancelled). The CLI
 * decides; its refusal is shown as it words it.
 */
export function LeaderActions({ task }: { task: Task }) {
  const retry = useAction();
  const reassign = useAction();
  const cancel = useAction();
  const [to, setTo] = useState('');
  const [reason, setReason] = useState('');
  const key = { run: task.run, task: task.id };

  async function doReassign(e: Event) {
    e.preventDefault();
    if ((await reassign.run('orch/reassign', { ...key, to: to.trim() })) !== undefined) setTo('');
  }
  async function doCancel(e: Event) {
    e.preventDefault();
    const input: Record<string, unknown> = { ...key };
    if (reason.trim() !== '') input.reason = reason.trim();
    if ((await cancel.run('orch/cancel', input)) !== undefined) setReason('');
  }

  return (
    <div class="stack">
      {RETRY_STATES.has(task.state) && (
        <div>
          <div class="actions">
            <Button busy={retry.busy} onClick={() => retry.run('orch/retry', key)}>
              Retry
            </Button>
            <span class="muted small">a failed or expired task, or a done code task not merged</span>
          </div>
          <ErrorText error={retry.error} />
        </div>
      )}
      {LIVE_OR_ENDED.has(task.state) && (
        <form data-testid="reassign" onSubmit={doReassign}>
          <div class="controls">
            <Field label="Reassign to" name="to" value={to} onInput={(e) => setTo(e.currentTarget.value)} placeholder="another agent" autocomplete="off" />
            <Button type="submit" busy={reassign.busy}>
              Reassign
            </Button>
          </div>
          <ErrorText error={reassign.error} />
        </form>
      )}
      {LIVE_OR_ENDED.has(task.state) && (
        <form data-testid="cancel" onSubmit={doCancel}>
          <div class="controls">
            <Field
              label="Reason"
              name="reason"
              value={reason}
              onInput={(e) => setReason(e.currentTarget.value)}
              placeholder="optional; the worker sees it"
              autocomplete="off"
            />
            <Button type="submit" variant="danger" busy={cancel.busy}>
              Cancel
            </Button>
          </div>
          <ErrorText error={cancel.error} />
        </form>
      )}
    </div>
  );
}
