import { useRef } from 'preact/hooks';
import { useQuery } from './api.ts';
import { Empty, ErrorText, Link, Loading, Time } from './components.tsx';
import { taskHref } from './router.ts';
import type { RunEvent } from './run-types.ts';
import { stateClass } from './states.ts';

/** Events the timeline shows: the newest this many. */
const SHOWN = 150;

/** The state an event leads to, for its colour: task_done → done, attempt_expired → expired. */
function eventState(type: string): string {
  const last = type.split('_').pop() ?? '';
  const map: Record<string, string> = {
    created: 'active',
    added: 'pending',
    dispatched: 'dispatched',
    claimed: 'running',
    progress: 'running',
    answered: 'running',
    reopened: 'pending',
    released: 'pending',
    blocked: 'blocked',
    done: 'done',
    merged: 'done',
    failed: 'failed',
    expired: 'expired',
    cancelled: 'cancelled',
    cleaned: 'cancelled',
  };
  return map[last] ?? 'pending';
}

/** The few facts of an event's data worth a line: agent, title, dependency, reason... as text. */
function summary(e: RunEvent): string {
  const d = e.data ?? {};
  const parts: string[] = [];
  for (const [k, v] of Object.entries(d)) {
    if (v === null || v === undefined || k === 'task_state') continue;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') parts.push(`${k.replace(/_/g, ' ')}: ${cut(String(v), FACT_CHARS)}`);
  }
  return cut(parts.join(' · '), LINE_CHARS);
}

/**
 * A fact and a line are cut to these lengths: the line is one ellipsis-cut row (its title the
 * tooltip), and an agent's note may be a megabyte, which in full would be that much DOM per event.
 */
const FACT_CHARS = 300;
const LINE_CHARS = 1000;

function cut(text: string, most: number): string {
  return text.length <= most ? text : `${text.slice(0, most - 1)}…`;
}

/** The run's events, newest first (`orch wait --after-event N --timeout-seconds 0`), live. */
export function Timeline({ run, lastEvent }: { run: string; lastEvent: number | undefined }) {
  // The cursor moves in steps of 50, and the last list stays up while the next one loads: a busy
  // run's timeline does not flash empty at every event.
  const after = lastEvent === undefined ? undefined : Math.max(0, Math.floor((lastEvent - SHOWN) / 50) * 50);
  const q = useQuery<{ events: RunEvent[] }>('orch/wait', after === undefined ? undefined : { run, afterEvent: String(after), timeoutSeconds: '0' });
  const last = useRef<RunEvent[] | undefined>(undefined);
  if (q.data) last.current = q.data.events.slice(-SHOWN).reverse();
  const events = last.current;
  return (
    <section class="timeline-section" aria-label="Timeline">
      <h2>Timeline {after && after > 0 ? <span class="muted">(newest {SHOWN})</span> : null}</h2>
      <ErrorText error={q.error} />
      {events === undefined ? (
        q.loading || after === undefined ? (
          <Loading />
        ) : null
      ) : events.length === 0 ? (
        <Empty>No events yet.</Empty>
      ) : (
        <ol class="timeline" data-testid="timeline">
          {events.map((e) => {
            const text = summary(e);
            return (
              <li key={e.seq} class="event" data-testid="event" data-type={e.type}>
                <Time iso={e.created_at} />
                <span class={`event-type ${stateClass(eventState(e.type))}`}>{e.type.replace(/_/g, ' ')}</span>
                {e.task ? (
                  <Link href={taskHref(run, e.task)} class="event-task ellipsis" title={e.task}>
                    {e.task}
                  </Link>
                ) : (
                  <span />
                )}
                <span class="event-data muted ellipsis" title={text}>
                  {text}
                </span>
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}
