import type { ApiError } from './api.ts';
import type { Message } from './task-types.ts';

// The pages' small decisions, kept apart from the components so they are tested without a browser.

/**
 * Checks an optional JSON payload typed into a form before it is sent: empty is no payload; else it
 * must parse as a JSON object (what `--payload-json` takes). Returns the flag value or the problem.
 */
export function checkPayload(text: string): { payloadJson?: string; error?: ApiError } {
  const trimmed = text.trim();
  if (trimmed === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (err) {
    return { error: { status: 0, exitCode: 2, code: 'VALIDATION', message: `payload: not valid JSON (${(err as Error).message})` } };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { error: { status: 0, exitCode: 2, code: 'VALIDATION', message: 'payload: must be a JSON object, like {"decision": "yes"}' } };
  }
  return { payloadJson: trimmed };
}

/**
 * The CSS class of each line of a unified patch (`git diff` output): a file's header lines (from
 * `diff --git` to its first `@@`) are `diff-file`, hunk headers `diff-hunk`, then added and removed
 * lines `diff-add` / `diff-del` (so a removed line reading `-- x` is not taken for a header).
 */
export function patchLineClasses(lines: string[]): string[] {
  let header = false;
  return lines.map((line) => {
    if (line.startsWith('diff --git ')) header = true;
    else if (line.startsWith('@@')) header = false;
    if (header) return 'diff-line diff-file';
    if (line.startsWith('@@')) return 'diff-line diff-hunk';
    if (line.startsWith('+')) return 'diff-line diff-add';
    if (line.startsWith('-')) return 'diff-line diff-del';
    return 'diff-line';
  });
}

/** The leader's reply to the newest question, if one came after it. */
export function answerTo(messages: Message[]): { question?: Message; answer?: Message } {
  const qi = messages.findLastIndex((m) => m.kind === 'question');
  if (qi < 0) return {};
  const question = messages[qi];
  const answer = messages.slice(qi + 1).find((m) => m.role !== 'worker' && m.role !== 'runner');
  return { question, answer };
}

/**
 * What a Dispatch without instructions sends as the body (the CLI needs one): the task's title,
 * and its summary after a blank line when it has one. The card's and the task page's Dispatch both.
 */
export function defaultInstructions(task: { title: string; summary?: string | null }): string {
  return task.summary ? `${task.title}\n\n${task.summary}` : task.title;
}
