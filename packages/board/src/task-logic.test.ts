import { describe, expect, it } from 'vitest';
import { answerTo, checkPayload, defaultInstructions, patchLineClasses } from './task-logic.ts';
import type { Message } from './task-types.ts';

describe('checkPayload (the payload box of the answer and worker forms)', () => {
  it('sends nothing for an empty box and the text itself for a JSON object', () => {
    expect(checkPayload('  \n')).toEqual({});
    expect(checkPayload(' {"decision": "teal"} ')).toEqual({ payloadJson: '{"decision": "teal"}' });
  });

  it('refuses text that is not JSON, and JSON that is not an object, before anything is sent', () => {
    const bad = checkPayload('{decision: teal}');
    expect(bad.payloadJson).toBeUndefined();
    expect(bad.error).toMatchObject({ exitCode: 2, code: 'VALIDATION' });
    expect(bad.error?.message).toMatch(/^payload: not valid JSON/);
    for (const text of ['[1, 2]', '"teal"', '3', 'null']) {
      expect(checkPayload(text).error?.message, text).toBe('payload: must be a JSON object, like {"decision": "yes"}');
    }
  });
});

describe('patchLineClasses (the diff as coloured text)', () => {
  it('tells file headers, hunk headers, added, removed and context lines apart', () => {
    const patch = [
      'diff --git a/a.txt b/a.txt',
      'index ce01362..3ef9df8 100644',
      '--- a/a.txt',
      '+++ b/a.txt',
      '@@ -1,2 +1,2 @@',
      ' hello',
      '--- a removed line that looks like a header',
      '+++ an added line that looks like one',
      '-old',
      '+<script>alert(1)</script>',
      '\\ No newline at end of file',
    ];
    expect(patchLineClasses(patch).map((c) => c.replace('diff-line', '').trim() || 'context')).toEqual([
      'diff-file',
      'diff-file',
      'diff-file',
      'diff-file',
      'diff-hunk',
      'context',
      'diff-del',
      'diff-add',
      'diff-del',
      'diff-add',
      'context',
    ]);
  });
});

function message(id: number, kind: string, role: string, body: string): Message {
  return { id, thread_id: 'th', author: role === 'leader' ? 'lead' : 'ann', role, kind, body, payload: null, created_at: '2026-11-29T15:00:00.000Z' };
}

describe('answerTo (My work: the answer to the newest question)', () => {
  it('is the first message from the leader side after the newest question', () => {
    const asked = [message(1, 'task', 'leader', 'do it'), message(2, 'question', 'worker', 'first?'), message(3, 'answer', 'leader', 'yes')];
    expect(answerTo(asked.slice(0, 1))).toEqual({});
    expect(answerTo(asked.slice(0, 2))).toEqual({ question: asked[1], answer: undefined });
    expect(answerTo(asked)).toEqual({ question: asked[1], answer: asked[2] });
    const again = [
      ...asked,
      message(4, 'progress', 'worker', 'on it'),
      message(5, 'question', 'worker', 'second?'),
      message(6, 'progress', 'runner', 'waiting'),
    ];
    expect(answerTo(again)).toEqual({ question: again[4], answer: undefined });
    const answered = [...again, message(7, 'answer', 'leader', 'no')];
    expect(answerTo(answered).answer?.body).toBe('no');
  });
});

describe('defaultInstructions (a Dispatch without instructions)', () => {
  it('is the title, and the summary after a blank line when there is one', () => {
    expect(defaultInstructions({ title: 'Write the docs' })).toBe('Write the docs');
    expect(defaultInstructions({ title: 'Write the docs', summary: null })).toBe('Write the docs');
    expect(defaultInstructions({ title: 'Write the docs', summary: '' })).toBe('Write the docs');
    expect(defaultInstructions({ title: 'Write the docs', summary: 'README first.' })).toBe('Write the docs\n\nREADME first.');
  });
});
