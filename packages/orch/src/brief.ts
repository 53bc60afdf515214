// The worker's prompt. orch renders it once, when it dispatches an attempt (dispatch, retry,
// reassign), into the payload of the thread's task message; orch-worker-brief prints that text
// and `inbox work` hands the same text to its command. One renderer, one text per attempt.
import { DEFAULT_LEASE_SECONDS, readTaskMessage, type TaskBrief, type TaskPayload } from '@orch/inbox';
import { NotFoundError } from '@orch/store';
import { showAttempt } from './ops/attempts.ts';
import type { DispatchResult } from './ops/dispatch.ts';
import type { Orch } from './orch.ts';

/** How the brief tells the worker to reach the database and the inbox CLI. */
export interface BriefSettings {
  /** The database path the worker passes as --db (absolute). */
  db: string;
  /** How the worker runs the inbox CLI: a path to the executable, or `inbox` on PATH. */
  inbox: string;
}

export interface WorkerBriefInput {
  /** What the task message's payload says about the run, task and attempt. */
  payload: Omit<TaskPayload, 'brief'>;
  /** The worker the attempt is assigned to. */
  agent: string;
  threadId: string;
  /** The leader's instructions: the task message's body. */
  body: string;
  settings: BriefSettings;
}

/** Quotes a value for a POSIX shell command line, only when it needs it. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The worker's prompt for one attempt. Pure: the same input always gives the same text. */
export function renderWorkerBrief(input: WorkerBriefInput): string {
  const { run, task, attempt: a } = input.payload;
  const { agent, threadId: thread } = input;
  const cli = `${shellQuote(input.settings.inbox)} --db ${shellQuote(input.settings.db)} --json`;
  const acceptance =
    task.acceptance === null || task.acceptance === undefined ? 'None given: use the instructions above.' : JSON.stringify(task.acceptance, null, 2);
  const where =
    a.execution_mode === 'code' && (a.remote_url !== undefined || a.worktree_path === null)
      ? remoteWhere(a)
      : a.execution_mode === 'code'
        ? [
            `This is a code task. Work only in your own git worktree:`,
            ``,
            `    cd ${shellQuote(a.worktree_path ?? '.')}`,
            ``,
            `It is checked out on branch ${a.branch}, created for this attempt from ${a.base_ref} at commit ${a.base_commit}.`,
            `Commit your work on that branch, in that directory. Do not switch branches, and do not touch the main`,
            `checkout or other worktrees. Only committed work counts: the leader reviews and merges your branch`,
            `(\`orch diff\`, \`orch merge\`); uncommitted changes are left behind. Write your report file where`,
            `step 4 says, beside the worktree and not inside it, where it would be an uncommitted change.`,
          ]
        : [`This is an analysis task: read, run and investigate as needed, but change no repository.`, `Your findings go in your result.`];
  const lines = [
    `You are ${agent}, a worker on run ${run.id}.`,
    ``,
    `# The run`,
    `Goal: ${run.goal}`,
    ...(run.summary ? [run.summary] : []),
    ``,
    `# Your task: ${task.id} (attempt ${a.number})`,
    task.title,
    ...(task.summary ? ['', task.summary] : []),
    ``,
    `## Instructions from the leader`,
    input.body.trimEnd(),
    ``,
    `## Acceptance criteria`,
    acceptance,
    ``,
    `## Where to work`,
    ...where,
    ``,
    `# Reporting through the inbox`,
    `Your thread is ${thread}. Use exactly these commands (they print JSON):`,
    ``,
    `1. Claim the thread, once, before you start. Keep the lease token it returns ("lease": {"token": ...}):`,
    `    ${cli} claim --agent ${agent} --thread ${thread}`,
    `   If it answers {"claimed": false}, another worker holds it: stop.`,
    `   If \`inbox work\` started you, it has claimed the thread for you: skip this step, your LEASE is $INBOX_LEASE.`,
    ``,
    `2. Post progress as you go; it also keeps your lease alive (${DEFAULT_LEASE_SECONDS / 60} minutes unless you claimed with --lease-seconds):`,
    `    ${cli} progress --thread ${thread} --lease LEASE --body "what is done, what is next"`,
    `   During long silent stretches, renew the lease instead:`,
    `    ${cli} heartbeat --thread ${thread} --lease LEASE`,
    ``,
    `3. If only the leader can unblock you, ask, then wait for the answer (note the question's message id):`,
    `    ${cli} ask --thread ${thread} --lease LEASE --body "your question, with the options you see"`,
    `    ${cli} wait --thread ${thread} --lease LEASE --after-message QUESTION_ID --timeout-seconds 900`,
    `   wait keeps the lease alive; if it times out ({"timed_out": true}), run it again.`,
    ``,
    `4. When the work is done, post the result as your last step (a report file is easiest):`,
    `    ${cli} result --thread ${thread} --lease LEASE --body-file ${shellQuote(a.execution_mode === 'code' && a.worktree_path !== null ? `${a.worktree_path}.report.md` : a.execution_mode === 'code' ? `../${a.number}.report.md` : 'report.md')}`,
    ``,
    `5. If you cannot do the task, say why instead:`,
    `    ${cli} fail --thread ${thread} --lease LEASE --body "what blocked you"`,
    ``,
    `# Rules`,
    `- Exit code 5 (lease lost) means the task was cancelled, reassigned, or your lease ran out: stop working on it.`,
    `- Exit code 4 on result or fail means the thread is already finished: do not post again.`,
    `- Values that start with "-" must be attached: --body="- item". Bodies and payloads are at most 1 MiB.`,
    `- Write only to your own thread (${thread}).`,
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * Where a worker on another machine works (code mode across machines): the exact git commands to
 * make its own worktree of the attempt branch from the remote, and to push it back.
 */
function remoteWhere(a: Extract<TaskPayload['attempt'], { execution_mode: 'code' }>): string[] {
  const url = shellQuote(a.remote_url ?? '?');
  const dir = `.orch/worktrees/${a.branch.replace(/^orch\//, '')}`;
  return [
    `This is a code task, handed over through the git remote ${a.remote_url ?? '?'}: its branch ${a.branch}`,
    `was created there from ${a.base_ref} at commit ${a.base_commit}. Work in a worktree of your own clone of that`,
    `repository. If \`inbox work --repo YOUR_CLONE\` started you, it has made it (your current directory) and pushes`,
    `the branch when you exit: commit there, and let the runner report. Otherwise, in your clone:`,
    ``,
    `    git fetch ${url} ${shellQuote(`refs/heads/${a.branch}`)}`,
    `    git worktree add -b ${shellQuote(a.branch)} ${shellQuote(dir)} FETCH_HEAD`,
    `    cd ${shellQuote(dir)}`,
    ``,
    `Commit your work on that branch, in that directory. Do not switch branches, and do not touch the main`,
    `checkout or other worktrees. Before you post your result, push the branch (never with --force; if the push`,
    `is refused, someone else pushed this attempt's branch: post a failure saying so instead of a result):`,
    ``,
    `    git push ${url} ${shellQuote(`${a.branch}:refs/heads/${a.branch}`)}`,
    ``,
    `Only pushed commits count: the leader fetches, reviews and merges the branch (\`orch diff\`, \`orch merge\`).`,
    `Write your report file where step 4 says, beside the worktree and not inside it.`,
  ];
}

export interface AttemptBrief extends DispatchResult {
  /** The brief as stored at dispatch; null for an attempt dispatched before briefs were stored. */
  stored: TaskBrief | null;
  /** The inputs the brief was (or would be) rendered from, to render it again with other settings. */
  source: Omit<WorkerBriefInput, 'settings'>;
}

/**
 * An attempt with the brief its thread's task message holds.
 *
 * @throws NotFoundError (3) for an unknown attempt, or one whose thread has no task message.
 */
export async function attemptBrief(orch: Orch, input: { attemptId: string }): Promise<AttemptBrief> {
  const found = await showAttempt(orch, input);
  const a = found.attempt;
  const message = await readTaskMessage(orch.store, a.thread_id);
  if (!message) throw new NotFoundError(`attempt ${a.id} has no thread ${a.thread_id}`, { attempt: a.id, thread_id: a.thread_id });
  const payload: Omit<TaskPayload, 'brief'> = message.payload ?? {
    // Not an orch task payload (a thread changed by hand): the attempt's own record instead.
    run: { id: found.run.id, goal: found.run.goal, summary: found.run.summary },
    task: { id: found.task.id, title: found.task.title, summary: found.task.summary, acceptance: found.task.acceptance },
    attempt:
      a.execution_mode === 'code'
        ? {
            id: a.id,
            number: a.number,
            execution_mode: 'code',
            repo_path: a.repo_path ?? '?',
            workspace_root: a.remote_url !== null ? null : (a.workspace_root ?? '?'),
            base_ref: a.base_ref ?? '?',
            base_commit: a.base_commit ?? '?',
            worktree_path: a.remote_url !== null ? null : (a.worktree_path ?? '?'),
            branch: a.branch ?? '?',
            ...(a.remote_url !== null ? { remote_url: a.remote_url } : {}),
          }
        : { id: a.id, number: a.number, execution_mode: 'analysis' },
  };
  return {
    ...found,
    stored: message.payload?.brief ?? null,
    source: { payload: { run: payload.run, task: payload.task, attempt: payload.attempt }, agent: a.assigned_to, threadId: a.thread_id, body: message.body },
  };
}
