import { useEffect, useState } from 'preact/hooks';
import { type ApiError, useAction, useQuery } from './api.ts';
import { Button, ErrorText, Loading, TextArea } from './components.tsx';
import { answerTo, checkPayload } from './task-logic.ts';
import { clock, MessageView, ThreadView } from './task-thread.tsx';
import type { ThreadShow } from './task-types.ts';
import type { Beat } from './work-lease-keeper.tsx';
import type { HeldLease } from './work-leases.ts';

/**
 * A thread this tab holds the lease of (kept alive by its LeaseKeeper, whose last beat is `beat`):
 * its messages (live) and the worker's forms: progress, ask (then "waiting for the answer" until it
 * comes), result, fail, release. `onGone` tells the page the lease ended (posted, released, lost);
 * `onCheck` asks for a heartbeat now.
 */
export function HeldThread({
  threadId,
  lease,
  beat,
  onCheck,
  onGone,
}: {
  threadId: string;
  lease: HeldLease;
  beat: Beat | undefined;
  onCheck: () => void;
  onGone: (why: { lost?: ApiError; done?: string }) => void;
}) {
  const q = useQuery<ThreadShow>('inbox/show', { thread: threadId });
  const threadState = q.data?.thread.state;
  const expired = q.data?.thread.lease_expired;
  // The leader cancelling the thread or the lease running out shows in the thread first: confirm with a heartbeat now.
  useEffect(() => {
    if (threadState === 'cancelled' || expired) onCheck();
  }, [threadState, expired]);

  if (q.data === undefined) return q.error ? <ErrorText error={q.error} /> : <Loading />;
  const { question, answer } = answerTo(q.data.messages);
  const blocked = q.data.thread.state === 'blocked';
  return (
    <div class="stack">
      <p class="notice small" data-testid="heartbeat" role="status">
        <span class="lease-ok">●</span> This tab holds the lease and renews it every {Math.round(lease.seconds / 3)} s while it is open, on any page
        {beat?.at ? (
          <>
            {' '}
            (renewed at {clock(beat.at)}, good until {clock(lease.expires_at)})
          </>
        ) : null}
        . Closing the tab lets it run out; signing out releases it.
      </p>
      {beat?.error && (
        <div class="notice small">
          The last heartbeat failed; it is tried again. <ErrorText error={beat.error} />
        </div>
      )}
      {blocked && (
        <p class="notice waiting" data-testid="waiting" role="status">
          Waiting for the answer to your question… it appears here as soon as the leader answers.
        </p>
      )}
      {question && answer && !blocked && (
        <div class="notice answered" data-testid="answer-received">
          <strong class="title-wrap">The answer to “{question.body ?? 'your question'}”:</strong>
          <ol class="messages">
            <MessageView message={answer} />
          </ol>
        </div>
      )}
      <WorkForm threadId={threadId} lease={lease} blocked={blocked} onGone={onGone} />
      <ThreadView doc={q.data} />
    </div>
  );
}

type WorkCommand = 'progress' | 'ask' | 'result' | 'fail' | 'release';

/** One form, one body and payload, a button per worker command. */
function WorkForm({
  threadId,
  lease,
  blocked,
  onGone,
}: {
  threadId: string;
  lease: HeldLease;
  blocked: boolean;
  onGone: (why: { lost?: ApiError; done?: string }) => void;
}) {
  const action = useAction();
  const [body, setBody] = useState('');
  const [payload, setPayload] = useState('');
  const [local, setLocal] = useState<ApiError | undefined>(undefined);

  async function send(command: WorkCommand) {
    action.clear();
    const checked = command === 'release' ? {} : checkPayload(payload);
    setLocal(checked.error);
    if (checked.error) return;
    const input: Record<string, unknown> = { thread: threadId, lease: lease.token };
    if (command !== 'release' && body.trim() !== '') input.body = body;
    if (checked.payloadJson !== undefined) input.payloadJson = checked.payloadJson;
    const r = await action.run(`inbox/${command}`, input);
    // Refused: the error shows beside the buttons (a lost lease also ends the hold, below).
    if (r === undefined) return;
    setBody('');
    setPayload('');
    if (command === 'result') onGone({ done: 'Result posted: the thread is done.' });
    if (command === 'fail') onGone({ done: 'Failure reported: the thread is failed.' });
    if (command === 'release') onGone({ done: 'Released: the thread is open again for its agent.' });
  }
  useEffect(() => {
    if (action.error?.exitCode === 5) onGone({ lost: action.error });
  }, [action.error]);

  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        void send('progress');
      }}
    >
      <TextArea
        label="Message"
        name="body"
        rows={4}
        value={body}
        onInput={(e) => setBody(e.currentTarget.value)}
        placeholder={blocked ? 'You can still post progress while you wait' : 'What happened, what you ask, or the result'}
      />
      <TextArea
        label="Payload"
        hint="Optional: a JSON object sent with the message."
        name="payload"
        rows={2}
        spellcheck={false}
        value={payload}
        onInput={(e) => setPayload(e.currentTarget.value)}
      />
      <div class="actions">
        <Button type="submit" busy={action.busy}>
          Post progress
        </Button>
        <Button busy={action.busy} onClick={() => send('ask')}>
          Ask
        </Button>
        <Button variant="primary" busy={action.busy} onClick={() => send('result')}>
          Post result
        </Button>
        <Button variant="danger" busy={action.busy} onClick={() => send('fail')}>
          Fail
        </Button>
        <Button busy={action.busy} onClick={() => send('release')} title="Give the thread back unfinished">
          Release
        </Button>
      </div>
      <ErrorText error={local ?? action.error} />
    </form>
  );
}
