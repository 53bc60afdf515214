import { useEffect, useRef, useState } from 'preact/hooks';
import { type ApiError, useAction, useQuery } from './api.ts';
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

/** The run's attempt_cleaned events (`orch wait` with no wait). */
type CleanedEvents = { events: { attempt: string | null; data: Record<string, unknown> | null }[] };

/**
 * Whether `orch diff` can still answer for the attempt, and whether to follow it. A live attempt's
 * branch moves with the worker's commits: read on every change. An ended one's can only go away,
 * when `orch cleanup` deletes it (its commits are on other branches): the run's attempt_cleaned
 * events say so (the attempt's JSON does not), so the diff is read once and never again after that.
 * A branch deleted some other way answers CONFLICT once (`gone`), and is not asked for again.
 */
function useDiffSource(attempt: Attempt): { ask: boolean; live: boolean; deleted: boolean; worktreeRemoved: boolean } {
  const ended = attempt.ended_at !== null;
  const cleaned = useQuery<CleanedEvents>('orch/wait', ended ? { run: attempt.run, for: 'attempt_cleaned', afterEvent: '0', timeoutSeconds: '0' } : undefined);
  const mine = (cleaned.data?.events ?? []).filter((e) => e.attempt === attempt.id);
  const deleted = mine.some((e) => e.data?.branch_deleted === true);
  const worktreeRemoved = mine.some((e) => e.data?.worktree_removed === true);
  // Until the events are read, an ended attempt's branch may be gone: wait for them (a refusal, e.g. a worker's token, leaves it to the diff's own answer).
  const known = !ended || cleaned.data !== undefined || cleaned.error !== undefined;
  return { ask: known && !deleted, live: !ended, deleted, worktreeRemoved };
}

/** Whether an `orch diff` refusal says the branch no longer exists (ConflictError naming the branch). */
function branchGone(e: ApiError | undefined): boolean {
  return e?.code === 'CONFLICT' && typeof (e.details as { branch?: unknown } | undefined)?.branch === 'string';
}

type MergeDoc = { merged: boolean; already_merged: boolean; up_to_date: boolean; into: string; commit: string | null };
type CleanupDoc = { attempts: { note: string | null }[] };

/**
 * A code attempt's `orch diff` (files with +/- counts, commits, the patch) with its Merge and Clean
 * up buttons. Re-read on every change while the attempt is live, so a worker's new commit shows up;
 * once its branch is gone (cleaned up), the last diff read stays, with a note saying so.
 */
export function DiffPanel({ attempt }: { attempt: Attempt }) {
  const source = useDiffSource(attempt);
  const [gone, setGone] = useState<ApiError | undefined>(undefined);
  const ask = source.ask && gone === undefined;
  const q = useQuery<DiffDoc>('orch/diff', ask ? { run: attempt.run, task: attempt.task, attempt: attempt.id } : undefined, { live: source.live });
  useEffect(() => {
    if (branchGone(q.error)) setGone(q.error);
  }, [q.error]);
  const last = useRef<DiffDoc | undefined>(undefined);
  if (q.data !== undefined) last.current = q.data;
  const diff = q.data ?? last.current;
  const goneNote = source.deleted ? 'Cleanup deleted the branch (its commits are on other branches)' : gone ? `The branch is gone: ${gone.message}` : undefined;
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
        <dd class="mono">
          {attempt.remote_url ?? attempt.worktree_path ?? '–'}
          {!attempt.remote_url && attempt.worktree_path && source.worktreeRemoved ? <span class="muted"> (removed)</span> : null}
        </dd>
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
        <Button variant="primary" busy={merge.busy} disabled={goneNote !== undefined} onClick={doMerge}>
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
      {goneNote !== undefined ? (
        <>
          <p class="notice small" data-testid="diff-gone">
            {goneNote}
            {diff ? '; the diff below is the last one read.' : ': there is no diff to show.'}
          </p>
          {diff && <DiffBody diff={diff} />}
        </>
      ) : diff === undefined ? (
        q.error ? (
          <ErrorText error={q.error} />
        ) : (
          <Loading />
        )
      ) : (
        <>
          {q.error && <p class="notice small">The diff below is the last one read; reading it again failed: {q.error.message}</p>}
          <DiffBody diff={diff} />
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
