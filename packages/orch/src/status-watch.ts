// `orch status --watch`: follows a run and shows it as it changes. The changes come the way `orch
// wait` gets them (its waitEvents on the database: a commit wakes it; `wait` long-polled on an
// `orch serve`); after each batch of events the status is read again. On a terminal the screen is
// redrawn in place; piped, the table is printed once and then one line per event.
import { OutputFailedError, callRemote, visible, type CommandOutput, type RemoteTarget } from '@orch/store';
import type { Orch } from './orch.ts';
import { status, type StatusResult } from './ops/status.ts';
import { waitEvents, type WaitResult } from './ops/wait.ts';
import type { RunState } from './schema.ts';
import { SCREEN_EVENTS, eventLine, progressLine, screenLines, statusText, type ScreenSize } from './status-screen.ts';
import type { EventView } from './views.ts';

/** Switches to the terminal's alternate screen and hides the cursor. */
export const ENTER_SCREEN = '\u001b[?1049h\u001b[?25l';
/** Shows the cursor and goes back to the normal screen, as it was before. */
export const LEAVE_SCREEN = '\u001b[?25h\u001b[?1049l';

/**
 * How long one wait for events lasts before it is made again. On a server it is one long-polled
 * request (which the server counts against --max-streams), so it is kept well under proxies' idle
 * timeouts; on the database it costs nothing while nothing happens.
 */
const LOCAL_WAIT_SECONDS = 3600;
const REMOTE_WAIT_SECONDS = 50;

/** Where a watch reads the run: the database (`localSource`) or an `orch serve` (`remoteSource`). */
export interface WatchSource {
  /** `orch status` (reconciles). */
  status(): Promise<StatusResult>;
  /** `orch wait` for every event type after `after`, for at most `seconds` (0: only what is there now). */
  wait(after: number, seconds: number): Promise<WaitResult>;
  /** How long one wait lasts before it is made again. */
  waitSeconds: number;
}

/** A watch on the database `orch` is open on (its `signal` ends a wait). */
export function localSource(orch: Orch, runId: string): WatchSource {
  return {
    status: () => status(orch, { runId }),
    wait: (after, seconds) => waitEvents(orch, { runId, afterEvent: after, timeoutSeconds: seconds }),
    waitSeconds: LOCAL_WAIT_SECONDS,
  };
}

/** A watch through an `orch serve`: its `status` and `wait` commands; `signal` cuts a wait short. */
export function remoteSource(target: RemoteTarget, runId: string, signal: AbortSignal): WatchSource {
  return {
    status: async () => (await callRemote(target, 'orch', 'status', { run: runId }, undefined)).result as StatusResult,
    wait: async (after, seconds) =>
      (
        await callRemote(target, 'orch', 'wait', { run: runId, afterEvent: String(after), timeoutSeconds: String(seconds) }, undefined, {
          signal,
          timeoutMs: 30_000 + seconds * 1000,
        })
      ).result as WaitResult,
    waitSeconds: REMOTE_WAIT_SECONDS,
  };
}

/** Where the watch draws, and what it knows of the terminal. */
export interface WatchTerminal {
  out: CommandOutput;
  /** Redraw in place (else: plain lines). */
  tty: boolean;
  size(): ScreenSize;
  /** Calls `listener` when the terminal is resized; returns how to stop. */
  onResize(listener: () => void): () => void;
}

export interface WatchOptions {
  /** Ends the watch (SIGINT, SIGTERM): the screen is restored and the watch returns. */
  signal: AbortSignal;
  /** The time now, as an ISO string (shown as when the screen was last updated). */
  now(): string;
}

export interface WatchResult {
  run: string;
  /** The run's state when the watch ended, or `interrupted` (a signal). */
  ended: RunState | 'interrupted';
  last_event: number;
}

/**
 * Follows the run until it is no longer active or `options.signal` aborts. On a terminal: the
 * alternate screen, redrawn after every change and resize, restored on the way out (also on an
 * error); when the run ends, its final table is printed on the normal screen. Piped: the table
 * once, one line per event, and a last line when the run ends.
 *
 * @throws OutputFailedError (7) when the output cannot be written (a closed pipe); what the
 *   source throws (NotFoundError (3) for an unknown run, a database or server error).
 */
export async function watchStatus(source: WatchSource, terminal: WatchTerminal, options: WatchOptions): Promise<WatchResult> {
  const write = async (text: string) => {
    try {
      await terminal.out.write(text);
    } catch (err) {
      throw outputFailed(err);
    }
  };
  let current = await source.status();
  const start = await source.wait(Math.max(0, current.last_event - SCREEN_EVENTS), 0);
  if (start.last_event > current.last_event) current = await source.status();
  let events: EventView[] = start.events.slice(-SCREEN_EVENTS);
  let cursor = Math.max(current.last_event, start.last_event);
  let updatedAt = options.now();
  let runState: RunState = current.run.state;

  const frame = () => {
    const size = terminal.size();
    const lines = screenLines(current, events, size, updatedAt).map((l) => visible(l));
    // Each line is cleared before it is written (clearing after a line that fills the width would
    // erase its last cell), and what is below the last line is cleared when there is room below.
    return `\u001b[H${lines.map((l) => `\u001b[2K${l}`).join('\r\n')}${lines.length < size.rows ? '\r\n\u001b[J' : ''}`;
  };
  const stopResize = terminal.tty ? terminal.onResize(() => void Promise.resolve(terminal.out.write(frame())).catch(() => undefined)) : () => undefined;
  let entered = false;
  try {
    if (terminal.tty) {
      // A run that has already ended is only printed (below).
      if (runState === 'active') {
        entered = true;
        await write(ENTER_SCREEN + frame());
      }
    } else {
      await write(`${visible(statusText(current), { multiline: true })}\n`);
    }
    while (runState === 'active' && !options.signal.aborted) {
      const next = await waitQuietly(source, cursor, options.signal);
      if (next === undefined) break;
      cursor = Math.max(cursor, next.last_event);
      runState = next.run_state;
      if (next.events.length === 0) continue;
      if (terminal.tty) {
        events = [...events, ...next.events].slice(-SCREEN_EVENTS);
        current = await source.status();
        runState = current.run.state;
        updatedAt = options.now();
        await write(frame());
      } else {
        await write(next.events.map((e) => `${visible(eventLine(e))}\n`).join(''));
      }
    }
  } finally {
    stopResize();
    if (entered) await Promise.resolve(terminal.out.write(LEAVE_SCREEN)).catch(() => undefined);
  }
  if (options.signal.aborted) return { run: current.run.id, ended: 'interrupted', last_event: cursor };
  // The run ended: say how it stands, on the normal screen.
  current = await source.status();
  const last = `run ${current.run.id} is ${current.run.state}: ${progressLine(current)}\n`;
  await write(terminal.tty ? `${visible(statusText(current), { multiline: true })}\n\n${last}` : last);
  return { run: current.run.id, ended: current.run.state, last_event: cursor };
}

/** The next events, or undefined once `signal` aborted (a remote call it cut short included). */
async function waitQuietly(source: WatchSource, after: number, signal: AbortSignal): Promise<WaitResult | undefined> {
  try {
    const found = await source.wait(after, source.waitSeconds);
    return signal.aborted ? undefined : found;
  } catch (err) {
    if (signal.aborted) return undefined;
    throw err;
  }
}

function outputFailed(err: unknown): OutputFailedError {
  const code = (err as { code?: unknown } | undefined)?.code;
  const why = code === 'EPIPE' ? 'the reader closed the pipe (EPIPE)' : err instanceof Error ? err.message : String(err);
  return new OutputFailedError(`\`orch status --watch\` stopped: its output could not be written: ${why}`, {
    committed: false,
    cause: typeof code === 'string' ? code : null,
  });
}
