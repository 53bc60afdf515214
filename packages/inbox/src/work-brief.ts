// `inbox work`: what the command is told: its brief on stdin, and the facts about the task that go
// into its environment, both read from the task payload orch wrote.
import { readTaskPayload } from './task-payload.ts';
import type { MessageView, ThreadView } from './views.ts';

export interface TaskInfo {
  run: string | null;
  task: string | null;
  attempt: string | null;
  attemptNumber: number | null;
  worktree_path: string | null;
}

/** What orch put in the thread's first message (run, task, attempt, worktree); all null for a thread orch did not open. */
export function taskInfo(messages: MessageView[]): TaskInfo {
  const p = readTaskPayload(messages[0]?.payload ?? null);
  return {
    run: p?.run.id ?? null,
    task: p?.task.id ?? null,
    attempt: p?.attempt.id ?? null,
    attemptNumber: p?.attempt.number ?? null,
    worktree_path: p?.attempt.execution_mode === 'code' ? p.attempt.worktree_path : null,
  };
}

/**
 * The prompt a command gets on stdin. For a thread orch dispatched: the brief orch rendered into
 * the task message (the text orch-worker-brief prints), then what is different under this runner.
 * For any other thread: the task as its author wrote it, and how to report.
 */
export function brief(
  thread: ThreadView,
  messages: MessageView[],
  o: { agent: string; dbPath: string; inboxBin: string; cwd: string; worktree: string | null; resultFile: string; pushes?: boolean },
): string {
  const first = messages[0];
  const later = messages.slice(1).filter((m) => m.kind === 'answer' || m.kind === 'note');
  const earlier = later.flatMap((m) => ['', `Earlier ${m.kind} from ${m.author}:`, m.body.trimEnd()]);
  // A blocked thread (its last holder was stopped while waiting) keeps its question pending: say
  // so, or the agent would start over while the leader's answer is on its way.
  const question = thread.state === 'blocked' ? messages.findLast((m) => m.kind === 'question') : undefined;
  if (question) {
    earlier.push(
      '',
      `A question is pending on this thread (message ${question.id}, asked before this claim by ${question.author}); the answer has not come yet:`,
      question.body.trimEnd(),
      'Wait for the answer before you start over:',
      '  "$INBOX_BIN" --db "$INBOX_DB" --json wait --thread "$INBOX_THREAD_ID" --lease "$INBOX_LEASE" --timeout-seconds 900',
    );
  }
  const where = o.worktree
    ? `Your current directory is your own git worktree (${o.worktree}). Commit your work there, on its branch; uncommitted changes are not part of your result.${
        o.pushes ? ' When you exit, the runner pushes the branch to its remote before it reports: do not push or post the result yourself.' : ''
      }`
    : `Your current directory (${o.cwd}) is a scratch directory for this task; change no repository.`;
  const outcome = [
    `- exit 0: your result is the file $INBOX_RESULT_FILE (${o.resultFile}) if you write it, otherwise the end of your output;`,
    '- a non-zero exit: the task fails, with the end of your stderr as the reason.',
  ];
  const stored = readTaskPayload(first?.payload ?? null)?.brief;
  if (stored) {
    const runner = [
      '# Started by inbox work',
      `The runner \`inbox work\` has claimed thread ${thread.id} for you and keeps its lease alive while you run: skip`,
      'step 1 above, and use "$INBOX_LEASE" wherever it says LEASE. $INBOX_BIN, $INBOX_DB and $INBOX_THREAD_ID hold the rest.',
      where,
      'When you exit, the runner reports for you, unless you posted a result or failure yourself (that one stands):',
      ...outcome,
      ...earlier,
    ];
    return `${stored.text.endsWith('\n') ? stored.text : `${stored.text}\n`}\n${runner.join('\n')}\n`;
  }
  const lines = [
    `You are ${o.agent}. You are working on inbox thread ${thread.id}: ${thread.subject}`,
    '',
    '# The task',
    first ? first.body.trimEnd() : '(no task message)',
  ];
  if (first?.payload) lines.push('', 'Details:', JSON.stringify(first.payload, null, 2));
  lines.push(
    ...earlier,
    '',
    '# Where to work',
    where,
    '',
    '# How your work is reported',
    'A runner (inbox work) keeps your lease alive while you run and reports for you when you exit:',
    ...outcome,
    'You can also report yourself with the inbox CLI (all values are in your environment):',
    '  "$INBOX_BIN" --db "$INBOX_DB" --json progress --thread "$INBOX_THREAD_ID" --lease "$INBOX_LEASE" --body "what is done"',
    "If only the leader can unblock you, ask, note the question's message id, and wait for the answer:",
    '  "$INBOX_BIN" --db "$INBOX_DB" --json ask --thread "$INBOX_THREAD_ID" --lease "$INBOX_LEASE" --body "your question"',
    '  "$INBOX_BIN" --db "$INBOX_DB" --json wait --thread "$INBOX_THREAD_ID" --lease "$INBOX_LEASE" --after-message QUESTION_ID --timeout-seconds 900',
    'If you post a result or failure yourself (result / fail with --thread and --lease as above), that one stands.',
    'Exit code 5 from any inbox command means the task was taken away (cancelled or reassigned): stop.',
  );
  return `${lines.join('\n')}\n`;
}
