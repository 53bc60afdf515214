import { useState } from 'preact/hooks';
import { useAction, useQuery } from './api.ts';
import { ErrorText, JsonBlock, Loading } from './components.tsx';
import type { Attempt, DiffDoc } from './task-types.ts';

/** Lines of a patch drawn at most; the rest is summarised (a huge patch would stall the page). */
const MAX_PATCH_LINES = 4000;

/** The CSS class of one patch line: added, removed, hunk header, file header, or context. */
function lineClass(line: string): string {
  if (line.startsWith('+++') || line.startsWith('---') || line.startsWith('diff --git') || line.startsWith('index ')) return 'diff-line diff-file';
  if (line.startsWith('+')) return 'diff-line diff-add';
  if (line.startsWith('-')) return 'diff-line diff-del';
  if (line.startsWith('@@')) return 'diff-line diff-hunk';
  return 'diff-line';
}

/** The patch as text, one element per line so a class can colour it; never parsed as HTML. */
function Patch({ patch }: { patch: string }) {
  const lines = patch.replace(/\n$/, '').split('\n');
  const shown = lines.slice(0, MAX_PATCH_LINES);
  return (
    <pre class="diff-patch" data-testid="diff-patch">
      {shown.map((line, i) => (
        <span key={i} class={lineClass(line)}>
          {line}
          {'\n'}
        </span>
      ))}
      {lines.length > shown.length && <span class="diff-line diff-more">… {lines.length - shown.length} more lines (orch diff shows them all)</span>}
    </pre>
  );
}

/**
 * A code attempt's `orch diff` (files with +/- counts, commits, the patch) and its Merge and Clean
 * up buttons. Re-read on every change, so a worker's new commit shows up.
 */
export function DiffPanel({ attempt }: { attempt: Attempt }) {
  const q = useQuery<DiffDoc>('orch/diff', { run: attempt.run, task: attempt.task, attempt: attempt.id });
  const merge = useAction<Record<string, unknown>>();
  const cleanup = useAction<{ attempts: { note: string | null; error: unknown }[] }>();
  const [outcome, setOutcome] = useState<string | undefined>(undefined);

  async function doMerge() {
    setOutcome(undefined);
    const r = await merge.run('orch/merge', { run: attempt.run, task: attempt.task, attempt: attempt.id });
    if (r)
      setOutcome(
        r.merged
          ? `Merged into ${String(r.into)} (${String(r.commit ?? '').slice(0, 12)}).`
          : r.already_merged
            ? 'Already merged.'
            : 'Nothing to merge: the target already has this work.',
      );
  }
  async function doCleanup() {
    setOutcome(undefined);
    const r = await cleanup.run('orch/cleanup', { run: attempt.run, attempt: attempt.id });
    if (r)
      setOutcome(
        r.attempts
          .map((a) => a.note ?? '')
          .filter(Boolean)
          .join(' ') || 'Nothing to clean up.',
      );
  }

  return (
    <section class="diff" data-testid="diff" aria-label="Changes">
      <h3>Changes</h3>
      <dl class="facts">
        <dt>Branch</dt>
        <dd class="mono">{attempt.branch ?? '—'}</dd>
        <dt>Worktree</dt>
        <dd class="mono">{attempt.worktree_path ?? (attempt.remote_url ? `remote: ${attempt.remote_url}` : '—')}</dd>
        {attempt.merged_into && (
          <>
            <dt>Merged</dt>
            <dd class="mono">
              into {attempt.merged_into} at {(attempt.merge_commit ?? '').slice(0, 12)}
            </dd>
          </>
        )}
      </dl>
      <div class="actions">
        <button type="button" onClick={doMerge} disabled={merge.busy}>
          Merge
        </button>
        <button type="button" onClick={doCleanup} disabled={cleanup.busy}>
          Clean up
        </button>
      </div>
      <ErrorText error={merge.error} />
      <ErrorText error={cleanup.error} />
      {outcome && (
        <p class="notice" role="status">
          {outcome}
        </p>
      )}
      {q.data === undefined ? q.error ? <ErrorText error={q.error} /> : <Loading /> : <DiffBody diff={q.data} />}
    </section>
  );
}

function DiffBody({ diff }: { diff: DiffDoc }) {
  if (diff.files.length === 0 && diff.commits.length === 0) {
    return (
      <p class="muted">No commits on the branch yet{diff.uncommitted?.length ? ` (${diff.uncommitted.length} uncommitted files in the worktree)` : ''}.</p>
    );
  }
  return (
    <>
      <ul class="diff-files" data-testid="diff-files">
        {diff.files.map((f) => (
          <li key={f.path}>
            <span class="mono diff-path">{f.path}</span> <span class="diff-stat-add">+{f.additions}</span> <span class="diff-stat-del">−{f.deletions}</span>
          </li>
        ))}
      </ul>
      <p class="muted small">
        {diff.commits.length} commit{diff.commits.length === 1 ? '' : 's'}: {diff.commits.map((c) => c.subject).join(' · ')}
      </p>
      {diff.uncommitted && diff.uncommitted.length > 0 && (
        <div class="notice">
          Uncommitted in the worktree (not part of the diff): <JsonBlock value={diff.uncommitted} />
        </div>
      )}
      {diff.patch !== undefined && <Patch patch={diff.patch} />}
    </>
  );
}
