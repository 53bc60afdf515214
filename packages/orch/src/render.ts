// Text renderings more than one command uses (each command's own rendering is in commands/<name>.ts).
import { messageText } from '@orch/inbox';
import { truncateToWidth, visible } from '@orch/store';
import type { DispatchResult } from './ops/dispatch.ts';
import type { RunView, StateCounts } from './views.ts';

export function countsText(counts: StateCounts): string {
  const parts = Object.entries(counts)
    .filter(([k]) => k !== 'total')
    .map(([k, v]) => `${v} ${k}`);
  return `${counts.total} task${counts.total === 1 ? '' : 's'}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}`;
}

export function runText(run: RunView, counts: StateCounts, lastEvent: number, unmergedTasks: string[] = []): string {
  const lines = [`run ${run.id} [${run.state}]: ${visible(run.goal)}`];
  if (run.summary) lines.push(`  ${visible(run.summary, { multiline: true })}`);
  lines.push(`  ${countsText(counts)} · last event ${lastEvent}`);
  if (unmergedTasks.length > 0) {
    lines.push(`  ${unmergedTasks.length} done code task(s) not merged yet: ${unmergedTasks.join(', ')} (\`orch merge\`, or \`orch retry\` after a conflict)`);
  }
  return lines.join('\n');
}

export function dispatchText(r: DispatchResult, verb = 'dispatched'): string {
  const a = r.attempt;
  return [
    `${verb} ${r.run.id}/${r.task.id} attempt ${a.number} (${a.id}) to ${a.assigned_to} [${a.execution_mode}]`,
    `  thread ${a.thread_id}: the worker claims it with \`inbox --db PATH claim --agent ${a.assigned_to} --thread ${a.thread_id}\``,
    ...(a.remote_url !== null
      ? [`  branch ${a.branch ?? '?'} on ${a.remote_url} (no worktree here): a worker elsewhere runs \`inbox work --repo ITS_CLONE\``]
      : a.worktree_path !== null
        ? [`  worktree ${a.worktree_path} on branch ${a.branch ?? '?'}`]
        : []),
  ].join('\n');
}

/**
 * `text` on one line (runs of white space become one space, control characters are made visible),
 * cut to `max` terminal cells.
 */
export function oneLine(text: string, max: number): string {
  return truncateToWidth(visible(text.replace(/\s+/g, ' ').trim()), max);
}

export { messageText };
