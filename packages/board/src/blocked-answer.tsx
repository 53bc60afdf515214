import { useState } from 'preact/hooks';
import { type ApiError, useAction } from './api.ts';
import { checkPayload } from './task-logic.ts';
import { Button, ErrorText, TextArea } from './components.tsx';

/**
 * The answer box of a blocked task: body text and an optional JSON payload, sent with
 * `orch answer`. A payload that is not a JSON object is refused here, before anything is sent;
 * the server's refusal (the task is no longer blocked, say) is shown as the CLI words it.
 */
export function AnswerForm({ run, task, onAnswered }: { run: string; task: string; onAnswered?: () => void }) {
  const action = useAction();
  const [body, setBody] = useState('');
  const [payload, setPayload] = useState('');
  const [local, setLocal] = useState<ApiError | undefined>(undefined);

  async function submit(e: Event) {
    e.preventDefault();
    action.clear();
    const checked = checkPayload(payload);
    setLocal(checked.error);
    if (checked.error) return;
    const input: Record<string, unknown> = { run, task };
    if (body.trim() !== '') input.body = body;
    if (checked.payloadJson !== undefined) input.payloadJson = checked.payloadJson;
    const r = await action.run('orch/answer', input);
    if (r !== undefined) {
      setBody('');
      setPayload('');
      onAnswered?.();
    }
  }

  return (
    <form class="answer-form" data-testid="answer" onSubmit={submit}>
      <TextArea label="Answer" name="body" rows={3} value={body} onInput={(e) => setBody(e.currentTarget.value)} />
      <TextArea
        label="Payload"
        hint="Optional: a JSON object, sent as the answer's structured data."
        name="payload"
        rows={2}
        spellcheck={false}
        value={payload}
        onInput={(e) => setPayload(e.currentTarget.value)}
        placeholder='{"decision": "..."}'
      />
      <Button type="submit" variant="primary" busy={action.busy}>
        Answer
      </Button>
      <ErrorText error={local ?? action.error} />
    </form>
  );
}
