// The demo's background processes: one `inbox work --once` runner per dispatched attempt, the
// leader's `orch wait`, and the narration file in which the agents and the runners say what they do
// (see the top of scripts/demo.mjs). A runner that does not end as expected fails the demo.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, DB, ENTRY, shown, WAIT_SECONDS } from './shared.mjs';

/** @typedef {import('./shared.mjs').Out} Out */

/**
 * Starts following the narration in `dir`; returns the means to launch runners and to wait on them.
 * @param {string} dir
 */
export function background(dir) {
  const runners = new Map(); // the `inbox work` processes still running, by task
  const children = new Set(); // the leader's own `orch wait` processes still running
  const agentOf = new Map(); // thread id -> agent, to label the runners' log lines
  /** @type {unknown} */
  let workerError = null; // the first runner that did not end as expected
  /** @type {(reason: unknown) => void} */
  let workerFailed; // rejects `failure` then, which interrupts whatever the leader awaits
  const failure = new Promise((_, reject) => (workerFailed = reject));
  failure.catch(() => {});
  /** @param {unknown} err */
  const fail = (err) => workerFailed((workerError ??= err));
  /** @param {NodeJS.Signals} sig */
  const onSignal = (sig) => fail(new Error(`interrupted by ${sig}`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  // What the agents and the runners say, in the order they said it (see the top of scripts/demo.mjs).
  const narration = path.join(dir, 'narration.log');
  const narrationFd = fs.openSync(narration, 'a'); // the runners' stderr
  const readFd = fs.openSync(narration, 'r');
  let narrationRead = 0;
  let narrationText = '';
  const drain = () => {
    const size = fs.fstatSync(readFd).size;
    if (size <= narrationRead) return;
    const buf = Buffer.alloc(size - narrationRead);
    const n = fs.readSync(readFd, buf, 0, buf.length, narrationRead);
    const text = buf.subarray(0, n).toString('utf8');
    const end = text.lastIndexOf('\n') + 1; // only whole lines; the rest comes next time
    if (end === 0) return;
    narrationRead += Buffer.byteLength(text.slice(0, end));
    const lines = text.slice(0, end - 1).split('\n');
    narrationText += `${lines.join('\n')}\n`;
    for (const l of lines) {
      const m = /^inbox work: (.*)$/.exec(l);
      if (!m) console.log(l);
      // A runner's last line ("th_…: done (exit 0)") is said again, explained, when it exits.
      else if (!/^th_\w+: \w+ \((exit \d+|SIG\w+)\)$/.test(m[1])) {
        const agent = agentOf.get(/\bth_\w+/.exec(m[1])?.[0]);
        console.log(`  [inbox work${agent ? `, ${agent}` : ''}] ${m[1]}`);
      }
    }
  };
  const ticker = setInterval(() => {
    try {
      drain();
    } catch (err) {
      fail(err);
    }
  }, 25);
  /**
   * Waits (briefly) until the narration shows `re`: keeps an agent's lines before the leader's reaction to them.
   * @param {RegExp} re
   */
  const narrated = async (re, ms = 3000) => {
    const until = Date.now() + ms;
    for (drain(); !re.test(narrationText) && Date.now() < until; drain()) {
      await Promise.race([new Promise((r) => setTimeout(r, 20)), failure]);
    }
  };

  /**
   * `orch wait` as a child process, so the workers' output shows while the leader waits.
   * @param {string[]} args
   * @returns {Promise<Out>}
   */
  const orchWait = (args) => {
    console.log(`\nleader$ ${shown('orch', ['--db', DB, ...args])}`);
    const child = spawn(process.execPath, [BIN.orch, '--db', DB, '--json', ...args], { cwd: dir });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const done = new Promise((resolve, reject) =>
      child.on('close', (code) => {
        children.delete(child);
        try {
          if (code !== 0) throw new Error(`orch wait exited ${code}: ${err.trim()}`);
          resolve(JSON.parse(out));
        } catch (e) {
          reject(e);
        }
      }),
    );
    return Promise.race([done, failure]);
  };

  // How each attempt should end: the runner's outcome for it, and so the runner's exit code.
  /** @type {Record<string, string[]>} */
  const expected = { P: ['done'], A: ['done'], B: ['posted'], D: ['failed', 'done'] };
  /** @type {Record<string, string>} */
  const outcomes = {
    done: 'the runner posted the result',
    posted: "the command's own result stands",
    failed: 'the runner posted the exit status and stderr as the failure',
  };

  /**
   * Launches the worker for a dispatched attempt: `inbox work --once` for its agent.
   * @param {string} task
   * @param {{ assigned_to: string, thread_id: string, number: number }} attempt
   */
  const startRunner = (task, attempt) => {
    const agent = attempt.assigned_to;
    agentOf.set(attempt.thread_id, agent);
    const want = expected[task][attempt.number - 1];
    const args = ['work', '--agent', agent, '--once', '--max-seconds', String(2 * WAIT_SECONDS), '--', process.execPath, ENTRY, '--agent-step'];
    console.log(`\nworker$ ${shown('inbox', ['--db', DB, ...args]).replace(process.execPath, 'node')}`);
    console.log(`  -> inbox work runs for ${agent} in the background: it claims ${task}'s thread and runs the agent for it`);
    const child = spawn(process.execPath, [BIN.inbox, '--db', DB, '--json', ...args], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1', DEMO_NARRATION: narration, DEMO_HOME: dir },
      stdio: ['ignore', 'pipe', narrationFd], // its log lines go to the narration, in order with the agents'
    });
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    /** @type {Promise<void>} */
    const exited = new Promise((resolve) =>
      child.on('close', (code, signal) => {
        if (runners.get(task) === runner) runners.delete(task);
        try {
          drain();
        } catch {
          // shown by the next drain, if any
        }
        /** @type {Out} */
        let report;
        try {
          report = JSON.parse(out);
        } catch {
          return resolve(fail(new Error(`inbox work for ${agent} (${task}) exited ${code ?? signal} without a report`)));
        }
        const h = report.handled[0];
        const why =
          report.handled.length !== 1 || h.thread_id !== attempt.thread_id
            ? `handled ${report.handled.map((x) => x.thread_id).join(', ') || 'nothing'}, not ${attempt.thread_id}`
            : h.outcome !== want
              ? `ended ${h.outcome} (exit ${h.exit_code ?? h.signal}), not ${want}; its log: ${fs.existsSync(h.log_file) ? fs.readFileSync(h.log_file, 'utf8').trim() : '(none)'}`
              : code !== (want === 'failed' ? 4 : 0)
                ? `exited ${code ?? signal}`
                : null;
        if (why) return resolve(fail(new Error(`inbox work for ${agent} (${task} attempt ${attempt.number}) ${why}`)));
        console.log(`  -> inbox work (${agent}) exited ${code}: ${h.thread_id} ${h.outcome}: ${outcomes[h.outcome]}`);
        resolve();
      }),
    );
    const runner = { child, exited };
    runners.set(task, runner);
  };

  return {
    runners,
    failure,
    drain,
    narrated,
    orchWait,
    startRunner,
    /** The first runner that did not end as expected, if any. */
    error: () => workerError,
    /** Stops the ticker and every process still running, and closes the narration. */
    async stop() {
      clearInterval(ticker);
      for (const child of children) child.kill();
      // A runner stopped with SIGTERM stops its command's whole process group and gives the thread back.
      await Promise.all(
        [...runners.values()].map(async ({ child, exited }) => {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }),
      );
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      fs.closeSync(narrationFd);
      fs.closeSync(readFd);
    },
  };
}
