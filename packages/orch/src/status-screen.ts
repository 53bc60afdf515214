// What `orch status --watch` draws: pure functions from a status document and the newest events
// to lines of text that fit a terminal. Every piece of agent-written text goes through `visible`
// (by formatTable or oneLine) before it is placed: an agent cannot send the terminal an escape.
import { formatTable, truncateToWidth, visible } from '@orch/store';
import type { StatusResult, StatusTask } from './ops/status.ts';
import { oneLine, runText } from './render.ts';
import { EVENT_TYPES } from './schema.ts';
import type { EventView } from './views.ts';

/** How many of the newest events the screen shows. */
export const SCREEN_EVENTS = 5;

/** The columns of the task table, as `orch status` prints them. */
export const STATUS_HEADER = ['TASK', 'STATE', 'ATTEMPT', 'LATEST MESSAGE', 'TITLE'];

/** One task as a row of the status table (`orch status`, and the watch screen). */
export function statusRow(t: StatusTask): string[] {
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
}

/** `orch status`'s text: the run, its counts, and the task table. */
export function statusText(r: StatusResult): string {
  const table = r.tasks.length === 0 ? 'no tasks yet' : formatTable([STATUS_HEADER, ...r.tasks.map(statusRow)]);
  return `${runText(r.run, r.counts, r.last_event, r.unmerged_tasks)}\n\n${table}`;
}

/**
 * The run's progress on one line: `3/7 done · 2 running · 1 blocked · 0 failed`, then the other
 * states that have tasks (dispatched, expired, cancelled) and how many pending tasks are ready.
 */
export function progressLine(r: StatusResult): string {
  const c = r.counts;
  const parts = [`${c.done ?? 0}/${c.total} done`, `${c.running ?? 0} running`, `${c.blocked ?? 0} blocked`, `${c.failed ?? 0} failed`];
  for (const state of ['dispatched', 'expired', 'cancelled'] as const) {
    if ((c[state] ?? 0) > 0) parts.push(`${c[state]} ${state}`);
  }
  const ready = r.tasks.filter((t) => t.ready).length;
  if (ready > 0) parts.push(`${ready} ready`);
  return parts.join(' · ');
}

const TYPE_WIDTH = Math.max(...EVENT_TYPES.map((t) => t.length));

/**
 * An event on one line (control characters made visible), its type padded so that lines one under the other align:
 * `14:52:03  #12  task_claimed       t1  by alice` (the time in the local zone).
 */
export function eventLine(e: EventView): string {
  return visible(`${clockTime(e.created_at)}  #${e.seq}  ${e.type.padEnd(TYPE_WIDTH)}  ${e.task ?? '-'}  ${eventDetail(e)}`.trimEnd());
}

/** What an event says beyond its type and task, in a few words (`orch wait`'s DETAIL column too). */
export function eventDetail(e: EventView): string {
  const d = e.data;
  if (typeof d.body === 'string') return oneLine(d.body, 70);
  if (typeof d.assigned_to === 'string') return `attempt ${String(d.number)} to ${d.assigned_to}`;
  if (typeof d.claimed_by === 'string') return `by ${d.claimed_by}`;
  if (typeof d.reason === 'string') return d.reason;
  if (typeof d.depends_on === 'string') return `depends on ${d.depends_on}`;
  if (typeof d.title === 'string') return d.title;
  return '';
}

/** `HH:MM:SS` of an ISO time, in the local time zone. */
export function clockTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toTimeString().slice(0, 8);
}

export interface ScreenSize {
  columns: number;
  rows: number;
}

/**
 * The whole screen: the run, the progress line, the task table and the newest events, each line
 * cut to the width (never wrapped) and as many lines as the height allows. When the tasks do not
 * all fit, the ones that need a look come first (blocked, failed, expired, running, dispatched,
 * ready; done and cancelled last), shown in the run's order, with a line counting the rest.
 */
export function screenLines(r: StatusResult, events: readonly EventView[], size: ScreenSize, updatedAt: string): string[] {
  const width = Math.max(1, size.columns);
  const height = Math.max(1, size.rows);
  const top = [`run ${visible(r.run.id)} [${r.run.state}]  ${oneLine(r.run.goal, width)}`, `${progressLine(r)} · last event ${r.last_event}`];
  const footer = `updated ${clockTime(updatedAt)} · Ctrl-C to leave`;
  const recent = events.slice(-SCREEN_EVENTS);
  // What is left below the top and above the footer goes first to the table (at least a few
  // rows when there are tasks), then to the events, then to the rest of the table.
  const room = height - top.length - 1;
  const tableWant = 2 + Math.max(1, r.tasks.length);
  const eventsWant = recent.length > 0 ? 2 + recent.length : 0;
  let eventsRoom = Math.min(eventsWant, Math.max(0, room - Math.min(tableWant, 2 + 3)));
  if (eventsRoom < 3) eventsRoom = 0;
  const tableRoom = Math.max(0, room - eventsRoom);
  const lines = [...top];
  if (tableRoom > 1) lines.push('', ...tableLines(r, tableRoom - 1));
  if (eventsRoom > 0) lines.push('', 'EVENTS', ...recent.slice(-(eventsRoom - 2)).map(eventLine));
  lines.push(footer);
  return lines.slice(0, height).map((l) => truncateToWidth(l, width));
}

/** The task table in at most `room` lines (its header included). */
function tableLines(r: StatusResult, room: number): string[] {
  if (room <= 0) return [];
  if (r.tasks.length === 0) return ['no tasks yet'];
  const fits = r.tasks.length + 1 <= room;
  // One line is kept to say how many are not shown.
  const shown = fits ? r.tasks : pickTasks(r.tasks, Math.max(0, room - 2));
  const table = shown.length > 0 ? formatTable([STATUS_HEADER, ...shown.map(statusRow)]).split('\n') : [];
  if (fits) return table;
  const hidden = r.tasks.filter((t) => !shown.includes(t));
  const byState = new Map<string, number>();
  for (const t of hidden) byState.set(t.state, (byState.get(t.state) ?? 0) + 1);
  const more = `… ${hidden.length} more task${hidden.length === 1 ? '' : 's'} (${[...byState].map(([s, n]) => `${n} ${s}`).join(', ')})`;
  return [...table, more].slice(-room);
}

const ATTENTION = ['blocked', 'failed', 'expired', 'running', 'dispatched', 'ready', 'pending', 'done', 'cancelled'];

/** The `n` tasks that most need a look, in the run's order. */
function pickTasks(tasks: readonly StatusTask[], n: number): StatusTask[] {
  const rank = (t: StatusTask) => ATTENTION.indexOf(t.ready ? 'ready' : t.state);
  const chosen = new Set(
    tasks
      .map((t, i) => ({ t, i }))
      .sort((a, b) => rank(a.t) - rank(b.t) || a.i - b.i)
      .slice(0, n)
      .map((x) => x.t),
  );
  return tasks.filter((t) => chosen.has(t));
}
