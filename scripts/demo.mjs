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
//
// The parts live in scripts/demo/: leader.mjs (the leader), background.mjs (the runners, the
// narration and the leader's `orch wait`), agent.mjs (the scripted agents) and shared.mjs.
import { agentStep } from './demo/agent.mjs';
import { leader } from './demo/leader.mjs';

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
