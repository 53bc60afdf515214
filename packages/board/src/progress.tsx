import { TASK_STATES } from './states.ts';
import { stateClass } from './states.ts';

/** A bar of a run's tasks by state (done first), each segment in its state's colour. */
export function Progress({ counts }: { counts: Record<string, number> }) {
  const total = counts.total ?? 0;
  const order = ['done', ...TASK_STATES.filter((s) => s !== 'done')];
  const label = `${counts.done ?? 0} of ${total} tasks done`;
  return (
    <span class="progress" role="img" aria-label={label} title={label}>
      {total === 0
        ? null
        : order.map((s) => {
            const n = counts[s] ?? 0;
            return n > 0 ? <span key={s} class={`seg ${stateClass(s)}`} style={{ width: `${(100 * n) / total}%` }} /> : null;
          })}
    </span>
  );
}
