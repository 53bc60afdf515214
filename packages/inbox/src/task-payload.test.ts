import { describe, expect, it } from 'vitest';
import { readTaskPayload, taskPayloadSchema, type TaskPayload } from './task-payload.ts';

const code: TaskPayload = {
  run: { id: 'r1', goal: 'Ship it', summary: null },
  task: { id: 'T1', title: 'Build', summary: 'the build', acceptance: { tests: 'pass' } },
  attempt: {
    id: 'at_1',
    number: 2,
    execution_mode: 'code',
    repo_path: '/repo',
    workspace_root: '/repo/.orch/worktrees',
    base_ref: 'main',
    base_commit: 'a'.repeat(40),
    worktree_path: '/repo/.orch/worktrees/r1/T1/2',
    branch: 'orch/r1/T1/2',
  },
  brief: { text: 'You are w, a worker on run r1.\n', db: '/tmp/coord.db', inbox: 'inbox' },
};

describe('the task payload schema (written by orch, read by inbox work and orch-worker-brief)', () => {
  it('parses what orch writes, for both execution modes', () => {
    expect(taskPayloadSchema.parse(code)).toEqual(code);
    const analysis = { ...code, attempt: { id: 'at_2', number: 1, execution_mode: 'analysis' } };
    expect(taskPayloadSchema.parse(analysis)).toEqual(analysis);
  });

  it('a renamed or missing code-mode field is a type error for the writer and no task payload for the reader', () => {
    const { worktree_path: _dropped, ...rest } = code.attempt as Extract<TaskPayload['attempt'], { execution_mode: 'code' }>;
    // @ts-expect-error worktree_path is required for a code attempt: a rename does not type-check.
    const renamed: TaskPayload['attempt'] = { ...rest, worktree: '/repo/.orch/worktrees/r1/T1/2' };
    expect(readTaskPayload({ ...code, attempt: renamed })).toBeNull();
    expect(readTaskPayload({ ...code, attempt: { ...code.attempt, execution_mode: 'review' } })).toBeNull();
  });

  it('reads a payload from before briefs were stored, and nothing from a thread orch did not open', () => {
    const { brief: _brief, ...legacy } = code;
    expect(readTaskPayload(legacy)).toEqual(legacy);
    expect(readTaskPayload(code)?.brief).toEqual(code.brief);
    for (const other of [null, {}, { priority: 1 }, { attempt: { worktree_path: '/elsewhere' } }, 'text', [code]]) expect(readTaskPayload(other)).toBeNull();
  });
});
