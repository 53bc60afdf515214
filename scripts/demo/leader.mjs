// The leader: plans the run, dispatches what is ready with a runner for each attempt, follows the
// run with `orch wait`, answers, retries, merges, cleans up and checks the outcome.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { background } from './background.mjs';
import { BIN, cli, clip, DB, git, oneLine, REMOTE, RUN, shown, useDb, WAIT_SECONDS } from './shared.mjs';

/**
 * @typedef {import('./shared.mjs').Out} Out
 * @typedef {import('./shared.mjs').Row} Row
 */

export async function leader() {
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
  const bg = background(dir);
  const { runners, failure, drain, narrated, orchWait, startRunner } = bg;
  /** @type {import('node:child_process').ChildProcess | undefined} */
  let server;

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
    if (REMOTE) {
      console.log(`\nleader$ orch --db ${DB} serve --port 0 &`);
      server = spawn(process.execPath, [BIN.orch, '--db', DB, 'serve', '--port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
      useDb(await listening(server));
      console.log(`  -> orch serve listens on ${DB}; every command from here on, the runners' and the agents' too, goes over HTTP`);
    }

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
      if (bg.error()) throw bg.error();
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
    if (bg.error()) throw bg.error();
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
    await bg.stop();
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server?.once('close', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The URL `orch serve` prints once it listens.
 * @param {import('node:child_process').ChildProcess} server
 * @returns {Promise<string>}
 */
function listening(server) {
  return new Promise((resolve, reject) => {
    let out = '';
    server.stdout?.on('data', (d) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(/** @type {string} */ (m[1]));
    });
    server.once('close', (code) => reject(new Error(`orch serve exited ${code} before listening`)));
  });
}
