// The README's main job: a complete local orch run with no network and no model.
//
// It makes a temporary directory with a database (coord.db) and a git repository (repo/), plans a
// run of four tasks in a dependency diamond, and then plays the leader (this process, through the
// real `orch` CLI) and the workers (separate scripted processes, through the real `inbox` CLI):
//
//             P  plan the feature            (analysis)
//            / \
//   code    A   B  review the plan           (analysis: asks the leader a blocking question)
//            \ /
//             D  write the summary           (analysis: fails once, the leader retries it)
//
// A (code mode) commits in its own git worktree; the leader merges it into main. The leader
// follows the run with `orch wait`, answers, retries, dispatches what becomes ready, merges,
// cleans up and prints the final status. Exits 0 (last line `demo: ok`) only if the run is done.
//
// Workers are this same file started again as `node scripts/demo.mjs --worker TASK THREAD AGENT`.
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
const END = '\x1e'; // ends one block of a worker's output, so blocks from two workers never mix

// ---------------------------------------------------------------------------------------------
// Shared helpers

/** How a command line reads to a person: arguments with spaces or quotes in single quotes. */
function shown(tool, args) {
  const quote = (a) => (a === '' || /[^\w@%+=:,./-]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a);
  return `${tool} ${args.map(quote).join(' ')}`;
}

/** Runs one of the CLIs (with --db and, unless `text`, --json) and returns its parsed output. */
function cli(tool, args, { cwd, text = false } = {}) {
  const full = tool === 'orch-worker-brief' ? ['--db', DB, ...args] : ['--db', DB, ...(text ? [] : ['--json']), ...args];
  const r = spawnSync(process.execPath, [BIN[tool], ...full], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  if (r.status !== 0) throw new Error(`${tool} ${args[0]} exited ${r.status}: ${(r.stderr || r.stdout).trim()}`);
  return text || tool === 'orch-worker-brief' ? r.stdout : JSON.parse(r.stdout);
}

function git(cwd, args) {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

const clip = (s, n = 72) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

// ---------------------------------------------------------------------------------------------
// The workers: scripted stand-ins for coding agents. Each is its own OS process and talks to the
// leader only through its inbox thread.

async function worker([task, thread, agent]) {
  const cwd = process.cwd();
  const say = (text) => process.stdout.write(`${text}\n${END}`);
  const inbox = (args, summary) => {
    const out = cli('inbox', args, { cwd });
    say(`\n${agent}$ ${shown('inbox', ['--db', DB, ...args])}\n  -> ${summary(out)}`);
    return out;
  };

  const claim = inbox(['claim', '--agent', agent, '--thread', thread], (o) => {
    const p = o.messages?.[0]?.payload;
    return o.claimed ? `claimed ${task} "${p.task.title}" (attempt ${p.attempt.number}, ${p.attempt.execution_mode}); lease ${o.lease.token}` : 'nothing claimed';
  });
  if (!claim.claimed) throw new Error(`${agent} could not claim ${thread}`);
  const lease = claim.lease.token;
  const { attempt } = claim.messages[0].payload;
  const base = ['--thread', thread, '--lease', lease];

  if (task === 'P') {
    inbox(['progress', ...base, '--body', 'Read README.md; sketching the split'], () => 'progress posted');
    inbox(['result', ...base, '--body', 'Plan: A adds greet.js (code), B reviews the API, D writes the summary.'], (o) => `thread ${o.thread.state}`);
  } else if (task === 'A') {
    // Code mode: the task message says where this attempt's worktree and branch are.
    const wt = attempt.worktree_path;
    const rel = path.relative(cwd, wt);
    inbox(['progress', ...base, '--body', `Working in ${rel} on ${attempt.branch}`], () => `progress posted (worktree ${rel}, branch ${attempt.branch})`);
    fs.writeFileSync(path.join(wt, 'greet.js'), "export function greet(name = 'world') {\n  return `Hello, ${name}!`;\n}\n");
    git(wt, ['add', 'greet.js']);
    git(wt, ['commit', '-q', '-m', 'Add a greeting module']);
    const sha = git(wt, ['rev-parse', '--short', 'HEAD']).trim();
    say(`\n${agent}$ git -C ${rel} add greet.js && git -C ${rel} commit -m 'Add a greeting module'\n  -> committed ${sha} on ${attempt.branch}`);
    inbox(['result', ...base, '--body', `Added greet.js (greet(name = 'world')), commit ${sha}`, '--payload-json', JSON.stringify({ commit: sha, files: ['greet.js'] })], (o) => `thread ${o.thread.state}`);
  } else if (task === 'B') {
    inbox(['progress', ...base, '--body', 'Read the plan; one open point'], () => 'progress posted');
    const asked = inbox(['ask', ...base, '--body', 'Should greet() take a name, or always greet the world?'], (o) => `question #${o.message.id}; thread ${o.thread.state}, now waiting for the answer`);
    // Block until the leader answers (wait keeps the lease alive meanwhile).
    const waitArgs = ['wait', ...base, '--after-message', String(asked.message.id), '--timeout-seconds', String(WAIT_SECONDS)];
    say(`\n${agent}$ ${shown('inbox', ['--db', DB, ...waitArgs])}`);
    const woke = cli('inbox', waitArgs, { cwd });
    if (woke.timed_out || woke.messages.length === 0) throw new Error(`${agent} got no answer`);
    const answer = woke.messages[0].body;
    say(`  -> (${agent}) woke with the ${woke.messages[0].kind} from ${woke.messages[0].author}: "${answer}"`);
    inbox(['result', ...base, '--body', `Plan approved. API: ${answer}`], (o) => `thread ${o.thread.state}`);
  } else if (task === 'D') {
    inbox(['progress', ...base, '--body', `Attempt ${attempt.number}: collecting the results of A and B`], () => 'progress posted');
    if (attempt.number === 1) {
      inbox(['fail', ...base, '--body', 'The changelog tool crashed (a simulated flaky failure)'], (o) => `thread ${o.thread.state}`);
    } else {
      inbox(['result', ...base, '--body', "greet(name = 'world') is in greet.js on main; the review settled the API."], (o) => `thread ${o.thread.state}`);
    }
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
  const workers = new Set(); // the scripted worker processes still running
  const children = new Set(); // the leader's own `orch wait` processes still running
  let workerError = null; // the first worker process that exited with an error
  let workerFailed; // rejects `failure` then, which interrupts the leader's `orch wait`
  const failure = new Promise((_, reject) => (workerFailed = reject));
  failure.catch(() => {});

  const orch = (args, summary, opts = {}) => {
    const out = cli('orch', args, { cwd: dir, ...opts });
    console.log(`\nleader$ ${shown('orch', ['--db', DB, ...args])}`);
    if (summary) console.log(`  -> ${summary(out)}`);
    return out;
  };

  /** `orch wait` as a child process, so the workers' output shows while the leader waits. */
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

  /** Starts a scripted worker for a dispatched attempt. */
  const startWorker = (task, attempt) => {
    const child = spawn(process.execPath, [self, '--worker', task, attempt.thread_id, attempt.assigned_to], { cwd: dir });
    workers.add(child);
    let buf = '';
    let err = '';
    child.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf(END)) >= 0) {
        process.stdout.write(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      workers.delete(child);
      if (code !== 0) workerFailed((workerError ??= new Error(`the ${attempt.assigned_to} worker for ${task} exited ${code}: ${err.trim()}`)));
    });
    console.log(`  -> started a scripted ${attempt.assigned_to} worker process for ${task} (attempt ${attempt.number})`);
  };

  const modes = { A: 'code' };
  const bodies = {
    P: 'Split "add a greeting" into a code change, a review and a summary. Read README.md first.',
    A: 'Add greet.js exporting greet(name). Commit it in your worktree.',
    B: 'Review the plan and the greet() API before it lands.',
    D: 'Write a short summary of what the run changed, for the changelog.',
  };
  const dispatch = (task) => {
    const mode = modes[task] ?? 'analysis';
    const extra = mode === 'code' ? ['--repo-path', 'repo', '--base-ref', 'main'] : [];
    const out = orch(['dispatch', '--run', RUN, '--task', task, '--execution-mode', mode, ...extra, '--body', bodies[task]], (o) =>
      mode === 'code'
        ? `attempt ${o.attempt.number} of ${task} (code) for ${o.attempt.assigned_to}: worktree ${path.relative(dir, o.attempt.worktree_path)}, branch ${o.attempt.branch}`
        : `attempt ${o.attempt.number} of ${task} (analysis) for ${o.attempt.assigned_to} on thread ${o.attempt.thread_id}`,
    );
    if (mode === 'code') {
      // The hand-off: what an agent worker would be given as its prompt.
      const saved = path.join(dir, `dispatch-${task}.json`);
      fs.writeFileSync(saved, JSON.stringify(out));
      const brief = cli('orch-worker-brief', ['--dispatch-json', path.basename(saved)], { cwd: dir });
      console.log(`\nleader$ orch-worker-brief --db ${DB} --dispatch-json ${path.basename(saved)}`);
      const lines = brief.split('\n');
      const where = lines.findIndex((l) => l.startsWith('## Where to work'));
      const excerpt = [...lines.slice(0, 6), '  ...', ...lines.slice(where, where + 5), '  ...'];
      console.log(excerpt.map((l) => `  | ${l}`).join('\n'));
      console.log(`  -> the prompt an agent worker would get (${lines.length} lines; the scripted worker below skips it)`);
    }
    startWorker(task, out.attempt);
    return out;
  };

  try {
    // --- Set-up: a git repository with one commit, an empty database, a run and its graph.
    const repo = path.join(dir, 'repo');
    fs.mkdirSync(repo);
    git(repo, ['init', '-q']);
    git(repo, ['symbolic-ref', 'HEAD', 'refs/heads/main']);
    for (const [k, v] of [['user.name', 'Demo'], ['user.email', 'demo@example.invalid'], ['commit.gpgsign', 'false']]) git(repo, ['config', k, v]);
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
      orch(['task', 'add', '--run', RUN, '--task', id, '--title', title, '--default-to', to, '--acceptance-json', acceptance], (o) => `task ${o.task.id} "${o.task.title}" (${o.task.state}, for ${to})`);
    }
    for (const [task, on] of [['A', 'P'], ['B', 'P'], ['D', 'A'], ['D', 'B']]) {
      orch(['dep', 'add', '--run', RUN, '--task', task, '--depends-on', on], (o) => `${task} waits for ${o.dependencies.join(' and ')}`);
    }
    console.log(['  -> the graph is a diamond:', '         P       plan', '        / \\', '       A   B     A: code, B: analysis (both wait for P)', '        \\ /', '         D       summary (waits for A and B)'].join('\n'));

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
      const woke = await orchWait(['wait', '--run', RUN, '--for', 'task_blocked,task_done,task_failed,run_done', '--after-event', String(after), '--timeout-seconds', String(WAIT_SECONDS)]);
      if (woke.timed_out) throw new Error(`orch wait timed out after ${WAIT_SECONDS} s (last event ${woke.last_event})`);
      console.log(`  -> (leader) woke with ${woke.events.map((e) => `#${e.seq} ${e.type}${e.task ? ` ${e.task}` : ''}`).join(', ')}; run ${woke.run_state}`);
      after = woke.last_event;
      state = woke.run_state;
      let somethingDone = false;
      for (const e of woke.events) {
        if (e.type === 'task_blocked') {
          const blocked = orch(['blocked', '--run', RUN], (o) => o.tasks.map((b) => `${b.task.id} asks: "${b.question.body}"`).join('; '));
          if (!blocked.tasks.some((b) => b.task.id === e.task)) throw new Error(`${e.task} is not blocked`);
          orch(['answer', '--run', RUN, '--task', e.task, '--body', "Take a name, defaulting to 'world'."], (o) => `answered on ${o.attempt.thread_id}; ${e.task} is running again`);
        } else if (e.type === 'task_failed') {
          console.log(`  -> ${e.task} failed: "${e.data.body}"`);
          const retried = orch(['retry', '--run', RUN, '--task', e.task], (o) => `attempt ${o.attempt.number} of ${e.task} for ${o.attempt.assigned_to} (same mode and instructions)`);
          startWorker(e.task, retried.attempt);
        } else if (e.type === 'task_done') {
          somethingDone = true;
          console.log(`  -> ${e.task} done: "${clip(e.data.body ?? '')}"`);
          if (modes[e.task] === 'code') {
            orch(['diff', '--run', RUN, '--task', e.task, '--stat'], (o) =>
              `${o.commits.map((c) => `${c.sha.slice(0, 7)} ${c.subject}`).join(', ')}; ${o.files.map((f) => `${f.path} +${f.additions} -${f.deletions}`).join(', ')}`,
            );
            orch(['merge', '--run', RUN, '--task', e.task], (o) => `merged ${o.attempt.branch ?? e.task} into ${o.into} (${o.strategy}): ${o.commit?.slice(0, 7)}`);
            console.log(`\nleader$ git -C repo log --oneline -3 main`);
            console.log(git(repo, ['log', '--oneline', '-3', 'main']).trimEnd().replace(/^/gm, '  | '));
          }
        }
      }
      if (state === 'active' && somethingDone) dispatchReady();
    }

    // --- The run is done: clean up the worktrees, then show where things stand.
    await Promise.all([...workers].map((w) => new Promise((r) => (w.exitCode !== null ? r() : w.on('close', r)))));
    if (workerError) throw workerError;
    orch(['cleanup', '--run', RUN, '--all-completed'], (o) =>
      o.attempts
        .filter((a) => a.execution_mode === 'code')
        .map((a) => `${a.task} attempt ${a.number}: ${a.note ?? `worktree ${a.removed ? 'removed' : 'kept'}, branch ${a.branch_deleted ? 'deleted' : 'kept'}`}`)
        .join('; ') || 'nothing to remove',
    );

    const text = cli('orch', ['status', '--run', RUN], { cwd: dir, text: true });
    console.log(`\nleader$ orch --db ${DB} status --run ${RUN}`);
    console.log(text.trimEnd().split('\n').map((l) => `  ${l}`.trimEnd()).join('\n'));

    // What happened, from the run's event log.
    const log = cli('orch', ['wait', '--run', RUN, '--after-event', '0', '--timeout-seconds', '1'], { cwd: dir });
    const short = {
      task_dispatched: (e) => (e.data.reason === 'dispatch' ? 'dispatched' : `${e.data.reason}: attempt ${e.data.number}`),
      attempt_merged: () => 'merged',
      attempt_cleaned: () => 'cleaned up',
    };
    const story = new Map();
    for (const e of log.events) {
      const key = e.task ?? 'run';
      if (!story.has(key)) story.set(key, []);
      const words = story.get(key);
      if (e.type === 'dependency_added') {
        words[words.length - 1] = words.at(-1).startsWith('added (after') ? `${words.at(-1).slice(0, -1)}, ${e.data.depends_on})` : `added (after ${e.data.depends_on})`;
      } else {
        words.push(short[e.type]?.(e) ?? e.type.replace(/^(task|run|attempt)_/, ''));
      }
    }
    console.log(`\nWhat happened (${log.events.length} events):`);
    for (const [key, words] of story) console.log(`  ${key.padEnd(4)} ${words.join(' -> ')}`);

    // --- The checks: exit 0 only if the run really ended done and every step happened.
    const final = cli('orch', ['status', '--run', RUN], { cwd: dir });
    const types = new Set(log.events.map((e) => e.type));
    const problems = [];
    if (final.run.state !== 'done') problems.push(`the run is ${final.run.state}, not done`);
    for (const t of ['task_blocked', 'task_answered', 'task_failed', 'attempt_merged', 'attempt_cleaned', 'run_done']) if (!types.has(t)) problems.push(`no ${t} event`);
    if (final.tasks.find((t) => t.id === 'D')?.attempts !== 2) problems.push('D did not take two attempts');
    if (spawnSync('git', ['cat-file', '-e', 'main:greet.js'], { cwd: repo }).status !== 0) problems.push('greet.js is not on main');
    if (problems.length) throw new Error(problems.join('; '));
    console.log(`\nRun ${RUN} is ${final.run.state}: 4 tasks, a question answered, a failure retried, the code merged into main (${((Date.now() - started) / 1000).toFixed(1)} s).`);
    console.log('\ndemo: ok');
  } catch (err) {
    console.error(`\ndemo failed: ${err.message}`);
    process.exitCode = 1;
  } finally {
    for (const child of [...workers, ...children]) child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--worker') {
  try {
    await worker(process.argv.slice(3));
  } catch (err) {
    console.error(err.message);
    process.exitCode = 1;
  }
} else {
  await leader();
}
