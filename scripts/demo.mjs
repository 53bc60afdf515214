// The README's main job: a complete local orch run with no network and no model.
//
// It makes a temporary directory with a database (coord.db) and a git repository (repo/), plans a
// run of four tasks in a dependency diamond, and then plays the leader (this process, through the
// real `orch` CLI) and launches the workers the way a real set-up would: one `inbox work --once`
// runner per dispatched attempt, whose command is a scripted stand-in for a coding agent:
//
//             P  plan the feature            (analysis)
//            / \
//   code    A   B  review the plan           (analysis: asks the leader a blocking question)
//            \ /
//             D  write the summary           (analysis: fails once, the leader retries it)
//
// The runner claims the thread, runs the command (in the attempt's git worktree for code mode, else
// in a scratch directory) with the attempt's brief on stdin (the one orch rendered at dispatch and
// orch-worker-brief prints) and INBOX_* in its environment, keeps the lease alive, and posts the
// outcome when it exits. The scripted agents use each way of reporting: the
// planner writes $INBOX_RESULT_FILE, the coder commits in its worktree and prints its result, the
// reviewer asks, waits for the answer and posts its result itself with "$INBOX_BIN", and the writer
// exits 1 on its first attempt (the runner posts the failure) and writes its result on the second.
// The leader follows the run with `orch wait`, answers, retries, dispatches what becomes ready,
// merges, cleans up and prints the final status. Exits 0 (last line `demo: ok`) only if the run is
// done.
//
// The agents are this same file started by `inbox work` as `node scripts/demo.mjs --agent-step`.
// They tell the demo what they do through the file named by $DEMO_NARRATION (their own stdout and
// stderr belong to the runner); the runners' log lines go to the same file, so both show in order.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(self), '..');
const BIN = {
  inbox: path.join(root, 'packages/inbox/dist/inbox.cjs'),
  orch: path.join(root, 'packages/orch/dist/orch.cjs'),
  'orch-worker-brief': path.join(root, 'packages/worker-brief/dist/orch-worker-brief.cjs'),
};
const DB = 'coord.db'; // every process runs in the temporary directory, so commands read as shown
const RUN = 'demo';
const WAIT_SECONDS = 30; // a safety net only: nothing here should ever wait that long

/**
 * A CLI's --json output, as far as the demo reads it: the lists it walks are typed, the rest is open.
 * @typedef {{ [field: string]: any }} Row
 * @typedef {{ tasks: Row[], events: Row[], handled: Row[], commits: Row[], files: Row[], attempts: Row[], [field: string]: any }} Out
 */

// ---------------------------------------------------------------------------------------------
// Shared helpers

/** @param {string} a */
const quote = (a) => (a === '' || /[^\w@%+=:,./-]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a);

/**
 * How a command line reads to a person: arguments with spaces or quotes in single quotes.
 * @param {string} tool
 * @param {string[]} args
 */
function shown(tool, args) {
  return `${tool} ${args.map(quote).join(' ')}`;
}

/**
 * Runs one of the CLIs (with --db and, unless `text`, --json) and returns its parsed output.
 * @param {keyof typeof BIN} tool
 * @param {string[]} args
 * @param {{ cwd?: string, text?: boolean }} [options]
 * @returns {any} the JSON document, or the text with `text` and for orch-worker-brief
 */
function cli(tool, args, { cwd, text = false } = {}) {
  const full = tool === 'orch-worker-brief' ? ['--db', DB, ...args] : ['--db', DB, ...(text ? [] : ['--json']), ...args];
  const r = spawnSync(process.execPath, [BIN[tool], ...full], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  if (r.status !== 0) throw new Error(`${tool} ${args[0]} ${r.signal ? `was killed by ${r.signal}` : `exited ${r.status}: ${(r.stderr || r.stdout).trim()}`}`);
  return text || tool === 'orch-worker-brief' ? r.stdout : JSON.parse(r.stdout);
}

/**
 * Runs git and expects success; returns its stdout.
 * @param {string} cwd
 * @param {string[]} args
 */
function git(cwd, args) {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** @type {(s: string, n?: number) => string} */
const clip = (s, n = 72) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
/** @param {string} s */
const oneLine = (s) => s.replace(/\s+/g, ' ').trim();

// ---------------------------------------------------------------------------------------------
// The agent: a scripted stand-in for a coding agent, run by `inbox work` once per thread. It
// learns everything from its brief (stdin) and environment, like a real agent would.

function agentStep() {
  const env = process.env;
  const { INBOX_AGENT: agent, INBOX_TASK: task } = env;
  /** @param {string} text */
  const say = (text) => (env.DEMO_NARRATION ? fs.appendFileSync(env.DEMO_NARRATION, `${text}\n`) : process.stderr.write(`${text}\n`));
  const home = path.dirname(/** @type {string} */ (env.INBOX_DB));
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

// ---------------------------------------------------------------------------------------------
// The leader.

async function leader() {
  for (const [tool, file] of Object.entries(BIN)) {
    if (!fs.existsSync(file)) {
      console.error(`demo failed: ${tool} is not built; run \`npm ci\` (or \`npm run build\`) first`);
      process.exit(1);
    }
  }
  const started = Date.now();
  // Git run from a hook (say, a pre-commit hook running the tests) would otherwise aim every git
  // command, ours and orch's, at the outer repository.
  for (const k of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_PREFIX', 'GIT_COMMON_DIR', 'GIT_OBJECT_DIRECTORY']) delete process.env[k];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-demo-'));
  const runners = new Map(); // the `inbox work` processes still running, by task
  const children = new Set(); // the leader's own `orch wait` processes still running
  const agentOf = new Map(); // thread id -> agent, to label the runners' log lines
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

  // What the agents and the runners say, in the order they said it (see the top of this file).
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
   * @param {string[]} args
   * @param {((out: Out) => string) | null} [summary]
   * @param {{ text?: boolean }} [opts]
   * @returns {Out}
   */
  const orch = (args, summary, opts = {}) => {
    const out = cli('orch', args, { cwd: dir, ...opts });
    console.log(`\nleader$ ${shown('orch', ['--db', DB, ...args])}`);
    if (summary) console.log(`  -> ${summary(out)}`);
    return out;
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
    const args = ['work', '--agent', agent, '--once', '--max-seconds', String(2 * WAIT_SECONDS), '--', process.execPath, self, '--agent-step'];
    console.log(`\nworker$ ${shown('inbox', ['--db', DB, ...args]).replace(process.execPath, 'node')}`);
    console.log(`  -> inbox work runs for ${agent} in the background: it claims ${task}'s thread and runs the agent for it`);
    const child = spawn(process.execPath, [BIN.inbox, '--db', DB, '--json', ...args], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1', DEMO_NARRATION: narration },
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

  /** @type {Record<string, string>} */
  const modes = { A: 'code' };
  /** @type {Record<string, string>} */
  const bodies = {
    P: 'Split "add a greeting" into a code change, a review and a summary. Read README.md first.',
    A: 'Add greet.js exporting greet(name). Commit it in your worktree.',
    B: 'Review the plan and the greet() API before it lands.',
    D: 'Write a short summary of what the run changed, for the changelog.',
  };
  const briefs = new Map(); // task -> what orch-worker-brief printed for its code attempt
  /** @param {string} task */
  const dispatch = (task) => {
    const mode = modes[task] ?? 'analysis';
    const extra = mode === 'code' ? ['--repo-path', 'repo', '--base-ref', 'main'] : [];
    const out = orch(['dispatch', '--run', RUN, '--task', task, '--execution-mode', mode, ...extra, '--body', bodies[task]], (o) =>
      mode === 'code'
        ? `attempt ${o.attempt.number} of ${task} (code) for ${o.attempt.assigned_to}: worktree ${path.relative(dir, o.attempt.worktree_path)}, branch ${o.attempt.branch}`
        : `attempt ${o.attempt.number} of ${task} (analysis) for ${o.attempt.assigned_to} on thread ${o.attempt.thread_id}`,
    );
    if (mode === 'code') {
      // The hand-off an agent launched by hand would get as its prompt.
      const saved = path.join(dir, `dispatch-${task}.json`);
      fs.writeFileSync(saved, JSON.stringify(out));
      /** @type {string} */
      const brief = cli('orch-worker-brief', ['--dispatch-json', path.basename(saved)], { cwd: dir });
      briefs.set(task, brief);
      console.log(`\nleader$ orch-worker-brief --db ${DB} --dispatch-json ${path.basename(saved)}`);
      const lines = brief.split('\n');
      const where = lines.findIndex((l) => l.startsWith('## Where to work'));
      const excerpt = [...lines.slice(0, 6), '  ...', ...lines.slice(where, where + 5), '  ...'];
      console.log(excerpt.map((l) => `  | ${l}`).join('\n'));
      console.log(
        `  -> the prompt orch rendered at dispatch (${lines.length} lines), for an agent launched by hand; inbox work hands its command the same text on stdin`,
      );
    }
    startRunner(task, out.attempt);
    return out;
  };

  try {
    // --- Set-up: a git repository with one commit, an empty database, a run and its graph.
    const repo = path.join(dir, 'repo');
    fs.mkdirSync(repo);
    git(repo, ['init', '-q']);
    git(repo, ['symbolic-ref', 'HEAD', 'refs/heads/main']);
    for (const [k, v] of [
      ['user.name', 'Demo'],
      ['user.email', 'demo@example.invalid'],
      ['commit.gpgsign', 'false'],
    ])
      git(repo, ['config', k, v]);
    fs.writeFileSync(path.join(repo, 'README.md'), '# demo app\n\nSays hello, eventually.\n');
    git(repo, ['add', 'README.md']);
    git(repo, ['commit', '-q', '-m', 'Initial commit']);
    console.log(`In ${dir}:`);
    console.log(`\nleader$ git init repo && git -C repo commit -m 'Initial commit'   # branch main, README.md`);
    console.log(`  -> repo/ is a git repository with one commit on main`);

    console.log(`\nleader$ inbox --db ${DB} init`);
    const init = cli('inbox', ['init'], { cwd: dir });
    console.log(`  -> ${DB} created (schema ${JSON.stringify(init.schema_version)})`);

    orch(['run', 'init', '--run', RUN, '--goal', 'Add a greeting to the demo app'], (o) => `run ${o.run.id} is ${o.run.state}`);
    const tasks = [
      ['P', 'Plan the feature', 'planner', '{"kind":"analysis"}'],
      ['A', 'Add a greeting module', 'coder', '{"kind":"code","files":["greet.js"]}'],
      ['B', 'Review the plan', 'reviewer', '{"kind":"analysis"}'],
      ['D', 'Write the summary', 'writer', '{"kind":"analysis"}'],
    ];
    for (const [id, title, to, acceptance] of tasks) {
      orch(
        ['task', 'add', '--run', RUN, '--task', id, '--title', title, '--default-to', to, '--acceptance-json', acceptance],
        (o) => `task ${o.task.id} "${o.task.title}" (${o.task.state}, for ${to})`,
      );
    }
    for (const [task, on] of [
      ['A', 'P'],
      ['B', 'P'],
      ['D', 'A'],
      ['D', 'B'],
    ]) {
      orch(['dep', 'add', '--run', RUN, '--task', task, '--depends-on', on], (o) => `${task} waits for ${o.dependencies.join(' and ')}`);
    }
    console.log(
      [
        '  -> the graph is a diamond:',
        '         P       plan',
        '        / \\',
        '       A   B     A: code, B: analysis (both wait for P)',
        '        \\ /',
        '         D       summary (waits for A and B)',
      ].join('\n'),
    );

    // --- Dispatch what is ready, then follow the run with `orch wait` until it is done.
    const dispatchReady = () => {
      const ready = orch(['ready', '--run', RUN], (o) => (o.tasks.length ? `ready: ${o.tasks.map((t) => t.id).join(', ')}` : 'nothing ready'));
      // A failed task is ready too, but the failure handler retries it; only dispatch new tasks.
      for (const t of ready.tasks) if (t.attempts === 0) dispatch(t.id);
    };
    dispatchReady();

    let after = orch(['status', '--run', RUN], (o) => `last_event ${o.last_event}; the leader waits for events after it`).last_event;
    let state = 'active';
    while (state === 'active') {
      const woke = await orchWait([
        'wait',
        '--run',
        RUN,
        '--for',
        'task_blocked,task_done,task_failed,run_done',
        '--after-event',
        String(after),
        '--timeout-seconds',
        String(WAIT_SECONDS),
      ]);
      if (woke.timed_out) throw new Error(`orch wait timed out after ${WAIT_SECONDS} s (last event ${woke.last_event})`);
      // Let the workers behind these events finish their story first: a runner that posted an
      // outcome exits right after it, and an agent that asked goes on to wait for the answer.
      for (const e of woke.events) {
        if (e.type === 'task_done' || e.type === 'task_failed') await Promise.race([runners.get(e.task)?.exited, failure]);
        if (e.type === 'task_blocked') await narrated(/^\w+\$ .* wait --thread /m);
      }
      drain();
      if (workerError) throw workerError;
      console.log(`  -> (leader) woke with ${woke.events.map((e) => `#${e.seq} ${e.type}${e.task ? ` ${e.task}` : ''}`).join(', ')}; run ${woke.run_state}`);
      after = woke.last_event;
      state = woke.run_state;
      let somethingDone = false;
      for (const e of woke.events) {
        if (e.type === 'task_blocked') {
          const blocked = orch(['blocked', '--run', RUN], (o) => o.tasks.map((b) => `${b.task.id} asks: "${b.question.body}"`).join('; '));
          if (!blocked.tasks.some((b) => b.task.id === e.task)) throw new Error(`${e.task} is not blocked`);
          orch(
            ['answer', '--run', RUN, '--task', e.task, '--body', "Take a name, defaulting to 'world'."],
            (o) => `answered on ${o.attempt.thread_id}; ${e.task} is running again`,
          );
        } else if (e.type === 'task_failed') {
          console.log(`  -> ${e.task} failed: "${clip(oneLine(e.data.body ?? ''), 120)}"`);
          if (e.task !== 'D') throw new Error(`${e.task} was not meant to fail`);
          const retried = orch(
            ['retry', '--run', RUN, '--task', e.task],
            (o) => `attempt ${o.attempt.number} of ${e.task} for ${o.attempt.assigned_to} (same mode and instructions)`,
          );
          startRunner(e.task, retried.attempt);
        } else if (e.type === 'task_done') {
          somethingDone = true;
          console.log(`  -> ${e.task} done: "${clip(oneLine(e.data.body ?? ''))}"`);
          if (modes[e.task] === 'code') {
            orch(
              ['diff', '--run', RUN, '--task', e.task, '--stat'],
              (o) =>
                `${o.commits.map((c) => `${c.sha.slice(0, 7)} ${c.subject}`).join(', ')}; ${o.files.map((f) => `${f.path} +${f.additions} -${f.deletions}`).join(', ')}`,
            );
            orch(
              ['merge', '--run', RUN, '--task', e.task],
              (o) => `merged ${o.attempt.branch ?? e.task} into ${o.into} (${o.strategy}): ${o.commit?.slice(0, 7)}`,
            );
            console.log(`\nleader$ git -C repo log --oneline -3 main`);
            console.log(git(repo, ['log', '--oneline', '-3', 'main']).trimEnd().replace(/^/gm, '  | '));
          }
        }
      }
      if (state === 'active' && somethingDone) dispatchReady();
    }

    // --- The run is done: clean up the worktrees, then show where things stand.
    await Promise.race([Promise.all([...runners.values()].map((r) => r.exited)), failure]);
    if (workerError) throw workerError;
    orch(
      ['cleanup', '--run', RUN, '--all-completed'],
      (o) =>
        o.attempts
          .filter((a) => a.execution_mode === 'code')
          .map(
            (a) => `${a.task} attempt ${a.number}: ${a.note ?? `worktree ${a.removed ? 'removed' : 'kept'}, branch ${a.branch_deleted ? 'deleted' : 'kept'}`}`,
          )
          .join('; ') || 'nothing to remove',
    );

    /** @type {string} */
    const text = cli('orch', ['status', '--run', RUN], { cwd: dir, text: true });
    console.log(`\nleader$ orch --db ${DB} status --run ${RUN}`);
    console.log(
      text
        .trimEnd()
        .split('\n')
        .map((l) => `  ${l}`.trimEnd())
        .join('\n'),
    );

    // What happened, from the run's event log.
    /** @type {Out} */
    const log = cli('orch', ['wait', '--run', RUN, '--after-event', '0', '--timeout-seconds', '1'], { cwd: dir });
    /** @type {Record<string, (e: Row) => string>} */
    const short = {
      task_dispatched: (e) => (e.data.reason === 'dispatch' ? 'dispatched' : `${e.data.reason}: attempt ${e.data.number}`),
      attempt_merged: () => 'merged',
      attempt_cleaned: () => 'cleaned up',
    };
    /** @type {Map<string, string[]>} */
    const story = new Map();
    for (const e of log.events) {
      const key = e.task ?? 'run';
      if (!story.has(key)) story.set(key, []);
      const words = /** @type {string[]} */ (story.get(key));
      if (e.type === 'dependency_added') {
        const last = /** @type {string} */ (words.at(-1));
        words[words.length - 1] = last.startsWith('added (after') ? `${last.slice(0, -1)}, ${e.data.depends_on})` : `added (after ${e.data.depends_on})`;
      } else {
        words.push(short[e.type]?.(e) ?? e.type.replace(/^(task|run|attempt)_/, ''));
      }
    }
    console.log(`\nWhat happened (${log.events.length} events):`);
    for (const [key, words] of story) console.log(`  ${key.padEnd(4)} ${words.join(' -> ')}`);

    // --- The checks: exit 0 only if the run really ended done and every step happened.
    /** @type {Out} */
    const final = cli('orch', ['status', '--run', RUN], { cwd: dir });
    const types = new Set(log.events.map((e) => e.type));
    const problems = [];
    if (final.run.state !== 'done') problems.push(`the run is ${final.run.state}, not done`);
    for (const t of ['task_blocked', 'task_answered', 'task_failed', 'attempt_merged', 'attempt_cleaned', 'run_done'])
      if (!types.has(t)) problems.push(`no ${t} event`);
    if (final.tasks.find((t) => t.id === 'D')?.attempts !== 2) problems.push('D did not take two attempts');
    if (spawnSync('git', ['cat-file', '-e', 'main:greet.js'], { cwd: repo }).status !== 0) problems.push('greet.js is not on main');
    for (const [task, brief] of briefs) {
      const stdin = path.join(dir, `stdin-${task}-1.txt`);
      if (!fs.existsSync(stdin) || !fs.readFileSync(stdin, 'utf8').startsWith(brief))
        problems.push(`${task}'s agent did not get the brief orch-worker-brief printed`);
    }
    if (problems.length) throw new Error(problems.join('; '));
    console.log(
      `\nRun ${RUN} is ${final.run.state}: 4 tasks run by inbox work, a question answered, a failure retried, the code merged into main (${((Date.now() - started) / 1000).toFixed(1)} s).`,
    );
    console.log('\ndemo: ok');
  } catch (err) {
    console.error(`\ndemo failed: ${/** @type {Error} */ (err).message}`);
    process.exitCode = 1;
  } finally {
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
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--agent-step') {
  try {
    agentStep();
  } catch (err) {
    console.error(/** @type {Error} */ (err).message);
    process.exitCode = 1;
  }
} else {
  await leader();
}
