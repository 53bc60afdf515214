import { useState } from 'preact/hooks';
import { useAction, useQuery } from './api.ts';
import { Button, ErrorText, Loading } from './components.tsx';
import { patchLineClasses } from './task-logic.ts';
import type { Attempt, DiffDoc } from './task-types.ts';

/** Lines of a patch drawn at most; the rest is summarised (a huge patch would stall the page). */
const MAX_PATCH_LINES = 5000;

/** The patch as text, one element per line so a class can colour it; never parsed as HTML. */
function Patch({ patch }: { patch: string }) {
  const lines = patch.replace(/\n$/, '').split('\n');
  const shown = lines.slice(0, MAX_PATCH_LINES);
  const classes = patchLineClasses(shown);
  return (
    <pre class="diff-patch" data-testid="diff-patch">
      {shown.map((line, i) => (
        <span key={i} class={classes[i]}>
          {line}
          {'\n'}
        </span>
      ))}
      {lines.length > shown.length && <span class="diff-line diff-more">… {lines.length - shown.length} more lines: see orch diff</span>}
    </pre>
  );
}

type MergeDoc = { merged: boolean; already_merged: boolean; up_to_date: boolean; into: string; commit: string | null };
type CleanupDoc = { attempts: { note: string | null }[] };

/**
 * A code attempt's `orch diff` (files with +/- counts, commits, the patch) with its Merge and Clean
 * up buttons. Re-read on every change, so a worker's new commit shows up.
 */
export function DiffPanel({ attempt }: { attempt: Attempt }) {
  const q = useQuery<DiffDoc>('orch/diff', { run: attempt.run, task: attempt.task, attempt: attempt.id });
  const merge = useAction<MergeDoc>();
  const cleanup = useAction<CleanupDoc>();
  const [outcome, setOutcome] = useState<string | undefined>(undefined);

  async function doMerge() {
    setOutcome(undefined);
    cleanup.clear();
    const r = await merge.run('orch/merge', { run: attempt.run, task: attempt.task, attempt: attempt.id });
    if (!r) return;
    if (r.merged) setOutcome(`Merged into ${r.into} (${(r.commit ?? '').slice(0, 12)}).`);
    else setOutcome(r.already_merged ? 'Already merged.' : `Nothing to merge: ${r.into} already has this work.`);
  }
  async function doCleanup() {
    setOutcome(undefined);
    merge.clear();
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
    <section class="card" data-testid="diff" aria-label="Changes">
      <h2>Changes</h2>
      <dl class="facts">
        <dt>Branch</dt>
        <dd class="mono">{attempt.branch ?? '–'}</dd>
        <dt>{attempt.remote_url ? 'Remote' : 'Worktree'}</dt>
        <dd class="mono">{attempt.remote_url ?? attempt.worktree_path ?? '–'}</dd>
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
        <Button variant="primary" busy={merge.busy} onClick={doMerge}>
          Merge
        </Button>
        <Button busy={cleanup.busy} onClick={doCleanup}>
          Clean up
        </Button>
      </div>
      <ErrorText error={merge.error ?? cleanup.error} />
      {outcome && (
        <p class="ok" role="status">
          {outcome}
        </p>
      )}
      {q.data === undefined ? (
        q.error ? (
          <ErrorText error={q.error} />
        ) : (
          <Loading />
        )
      ) : (
        <>
          {q.error && <p class="notice small">The diff below is the last one read; reading it again failed: {q.error.message}</p>}
          <DiffBody diff={q.data} />
        </>
      )}
    </section>
  );
}

function DiffBody({ diff }: { diff: DiffDoc }) {
  const uncommitted = diff.uncommitted ?? [];
  return (
    <>
      {diff.commits.length === 0 ? (
        <p class="muted">No commits on the branch yet.</p>
      ) : (
        <p class="muted small title-wrap">
          {diff.commits.length} commit{diff.commits.length === 1 ? '' : 's'}: {diff.commits.map((c) => c.subject).join(' · ')}
        </p>
      )}
      {diff.files.length > 0 && (
        <ul class="diff-files" data-testid="diff-files">
          {diff.files.map((f) => (
            <li key={f.path}>
              <span class="mono diff-path">{f.path}</span>
              <span class="diff-stat-add">+{f.additions}</span>
              <span class="diff-stat-del">−{f.deletions}</span>
            </li>
          ))}
        </ul>
      )}
      {uncommitted.length > 0 && (
        <p class="notice small">
          Uncommitted in the worktree (not in the diff; only committed work counts): <span class="mono">{uncommitted.join(', ')}</span>
        </p>
      )}
      {diff.patch ? <Patch patch={diff.patch} /> : null}
    </>
  );
}
