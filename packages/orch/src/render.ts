import { messageText } from '@orch/inbox';
import { formatTable, truncateToWidth, visible } from '@orch/store';
import type { DispatchResult } from './ops/dispatch.ts';
import type { StatusResult } from './ops/status.ts';
import type { EventView, RunView, StateCounts } from './views.ts';

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
  ].join('\n');
}

export function statusText(r: StatusResult): string {
  const rows = r.tasks.map((t) => {
    const a = t.latest_attempt;
    const m = t.latest_message;
    const state = t.ready ? `${t.state} (ready)` : t.waiting_on.length > 0 && t.state === 'pending' ? `pending (waits on ${t.waiting_on.join(',')})` : t.state;
    const where =
      a?.thread === null
        ? ' (thread missing)'
        : a?.worktree_exists === false
          ? ['dispatched', 'running', 'blocked'].includes(a.state)
            ? ' (worktree missing)'
            : ' (worktree gone)'
          : a?.merged_into
            ? ` (merged into ${visible(a.merged_into)})`
            : '';
    return [t.id, state, a ? `#${a.number} ${a.assigned_to}${where}` : '-', m ? `${m.kind}: ${oneLine(m.body, 60)}` : '-', t.title];
  });
  const table = rows.length === 0 ? 'no tasks yet' : formatTable([['TASK', 'STATE', 'ATTEMPT', 'LATEST MESSAGE', 'TITLE'], ...rows]);
  return `${runText(r.run, r.counts, r.last_event, r.unmerged_tasks)}\n\n${table}`;
}

export function eventsText(events: EventView[]): string {
  return formatTable([
    ['EVENT', 'TYPE', 'TASK', 'TIME', 'DETAIL'],
    ...events.map((e) => [String(e.seq), e.type, e.task ?? '-', e.created_at, eventDetail(e)]),
  ]);
}

function eventDetail(e: EventView): string {
  const d = e.data;
  if (typeof d.body === 'string') return oneLine(d.body, 70);
  if (typeof d.assigned_to === 'string') return `attempt ${String(d.number)} to ${d.assigned_to}`;
  if (typeof d.claimed_by === 'string') return `by ${d.claimed_by}`;
  if (typeof d.reason === 'string') return d.reason;
  if (typeof d.depends_on === 'string') return `depends on ${d.depends_on}`;
  if (typeof d.title === 'string') return d.title;
  return '';
}

/**
 * `text` on one line (runs of white space become one space, control characters are made visible),
 * cut to `max` terminal cells.
 */
export function oneLine(text: string, max: number): string {
  return truncateToWidth(visible(text.replace(/\s+/g, ' ').trim()), max);
}

export { messageText };
