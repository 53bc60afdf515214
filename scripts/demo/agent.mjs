// The agent: a scripted stand-in for a coding agent, run by `inbox work` once per thread. It
// learns everything from its brief (stdin) and environment, like a real agent would.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { git, quote, WAIT_SECONDS } from './shared.mjs';

/** @typedef {import('./shared.mjs').Out} Out */

export function agentStep() {
  const env = process.env;
  const { INBOX_AGENT: agent, INBOX_TASK: task } = env;
  /** @param {string} text */
  const say = (text) => (env.DEMO_NARRATION ? fs.appendFileSync(env.DEMO_NARRATION, `${text}\n`) : process.stderr.write(`${text}\n`));
  // The demo's directory (with --remote, INBOX_DB is the server's URL).
  const home = env.DEMO_HOME ?? path.dirname(/** @type {string} */ (env.INBOX_DB));
  const here = path.relative(home, process.cwd());

  // The brief on stdin is prose for an agent. A script takes the same facts as data from the
  // runner's environment (INBOX_TASK, INBOX_ATTEMPT_NUMBER, INBOX_WORKTREE, read by inbox work from
  // the task payload's one schema), and keeps the brief for the leader to compare with what
  // orch-worker-brief printed.
  const brief = fs.readFileSync(0, 'utf8');
  const lines = brief.split('\n');
  const number = Number(env.INBOX_ATTEMPT_NUMBER);
  const mode = env.INBOX_WORKTREE ? 'code' : 'analysis';
  fs.writeFileSync(path.join(home, `stdin-${task}-${number}.txt`), brief);
  const where = mode === 'code' ? `its worktree ${here} (branch ${git('.', ['branch', '--show-current']).trim()})` : here;
  say(`\n  (${agent}) started by inbox work in ${where}; read its brief on stdin (${lines.length - 1} lines): task ${task}, attempt ${number}, ${mode}`);

  /**
   * "$INBOX_BIN" on this thread with this lease, exactly as the brief says to call it.
   * @param {string} command
   * @param {string[]} args
   * @param {(out: Out) => string} summary
   * @param {{ before?: boolean }} [options]
   */
  const inbox = (command, args, summary, { before } = {}) => {
    const line = `\n${agent}$ "$INBOX_BIN" --db "$INBOX_DB" ${command} --thread "$INBOX_THREAD_ID" --lease "$INBOX_LEASE"${args.length ? ` ${args.map(quote).join(' ')}` : ''}`;
    if (before) say(line);
    const full = /** @type {string[]} */ ([
      env.INBOX_BIN,
      '--db',
      env.INBOX_DB,
      '--json',
      command,
      '--thread',
      env.INBOX_THREAD_ID,
      '--lease',
      env.INBOX_LEASE,
      ...args,
    ]);
    const r = spawnSync(process.execPath, full, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`inbox ${command} exited ${r.status}: ${(r.stderr || r.stdout).trim()}`);
    const out = JSON.parse(r.stdout);
    say(`${before ? '' : `${line}\n`}  -> ${summary(out)}`);
    return out;
  };

  if (task === 'P') {
    inbox('progress', ['--body', 'Read README.md; sketching the split'], () => 'progress posted');
    const plan = 'Plan: A adds greet.js (code), B reviews the API, D writes the summary.';
    fs.writeFileSync(/** @type {string} */ (env.INBOX_RESULT_FILE), `${plan}\n`);
    say(`\n${agent}$ echo ${quote(plan)} > "$INBOX_RESULT_FILE"; exit 0\n  -> inbox work posts that file as the result`);
  } else if (task === 'A') {
    // Code mode: the runner started us in the attempt's worktree, so plain git commits on its branch.
    fs.writeFileSync('greet.js', "export function greet(name = 'world') {\n  return `Hello, ${name}!`;\n}\n");
    git('.', ['add', 'greet.js']);
    git('.', ['commit', '-q', '-m', 'Add a greeting module']);
    const sha = git('.', ['rev-parse', '--short', 'HEAD']).trim();
    say(`\n${agent}$ git add greet.js && git commit -m 'Add a greeting module'\n  -> committed ${sha} on ${git('.', ['branch', '--show-current']).trim()}`);
    const result = `Added greet.js: greet(name = 'world'), commit ${sha}`;
    console.log(result);
    say(`\n${agent}$ echo "${result}"; exit 0\n  -> inbox work posts the end of stdout as the result`);
  } else if (task === 'B') {
    const asked = inbox(
      'ask',
      ['--body', 'Should greet() take a name, or always greet the world?'],
      (o) => `question #${o.message.id}; thread ${o.thread.state}`,
    );
    // Block until the leader answers; the runner keeps the lease alive meanwhile.
    const woke = inbox(
      'wait',
      ['--after-message', String(asked.message.id), '--timeout-seconds', String(WAIT_SECONDS)],
      (o) =>
        o.messages.length ? `(${agent}) woke with the ${o.messages[0].kind} from ${o.messages[0].author}: "${o.messages[0].body}"` : `(${agent}) got no answer`,
      { before: true },
    );
    if (woke.timed_out || woke.messages.length === 0) throw new Error(`${agent} got no answer`);
    inbox('result', ['--body', `Plan approved. API: ${woke.messages[0].body}`], (o) => `thread ${o.thread.state}; a result the command posts itself stands`);
  } else if (task === 'D') {
    inbox('progress', ['--body', `Attempt ${number}: collecting the results of A and B`], () => 'progress posted');
    if (number === 1) {
      const crash = 'make-changelog: crashed (a simulated flaky failure)';
      say(`\n${agent}$ make-changelog   # a flaky tool: it crashes on attempt 1\n  -> "${crash}" on stderr; exit 1, so inbox work posts a failure`);
      process.stderr.write(`${crash}\n`);
      process.exitCode = 1;
      return;
    }
    const summary = "greet(name = 'world') is in greet.js on main; the review settled the API.";
    fs.writeFileSync(/** @type {string} */ (env.INBOX_RESULT_FILE), `${summary}\n`);
    say(`\n${agent}$ make-changelog > "$INBOX_RESULT_FILE"; exit 0\n  -> inbox work posts that file as the result`);
  } else {
    throw new Error(`no script for task ${task}`);
  }
}
