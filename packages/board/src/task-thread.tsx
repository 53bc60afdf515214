import { useQuery } from './api.ts';
import { Empty, ErrorText, JsonBlock, Loading, StateBadge, Time } from './components.tsx';
import type { Message, ThreadShow } from './task-types.ts';

/** A time of day in the reader's locale (for times ahead, such as a lease's end). */
export function clock(iso: string): string {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toLocaleTimeString();
}

/** Message kinds the inbox stores; only these become a CSS class. */
const KINDS = new Set(['task', 'progress', 'question', 'answer', 'result', 'failure', 'note']);
/** A task message's payload longer than this (as JSON) starts folded: it carries the worker's whole brief. */
const FOLD_PAYLOAD_CHARS = 600;

function Payload({ value, fold }: { value: unknown; fold: boolean }) {
  const size = JSON.stringify(value)?.length ?? 0;
  if (!fold || size <= FOLD_PAYLOAD_CHARS) return <JsonBlock value={value} />;
  return (
    <details>
      <summary>Payload ({size.toLocaleString()} characters of JSON)</summary>
      <JsonBlock value={value} />
    </details>
  );
}

/**
 * One message of a thread. The body and payload are agent-written: they are rendered as text
 * (the body keeps its line breaks through CSS, the payload is a JSON block), never as HTML.
 */
export function MessageView({ message }: { message: Message }) {
  const kind = KINDS.has(message.kind) ? message.kind : 'note';
  return (
    <li class="message" data-testid="message" data-kind={message.kind}>
      <div class="message-head">
        <span class={`message-kind kind-${kind}`}>{message.kind}</span>
        <span class="title-wrap">{message.author}</span>
        {message.author !== message.role && <span class="muted">({message.role})</span>}
        <span class="muted">
          <Time iso={message.created_at} />
        </span>
      </div>
      {message.body != null && message.body !== '' && (
        <p class="message-body text-body" data-testid="message-body">
          {message.body}
        </p>
      )}
      {message.payload != null && (
        <div class="message-payload" data-testid="message-payload">
          <Payload value={message.payload} fold={message.kind === 'task'} />
        </div>
      )}
    </li>
  );
}

/** Messages oldest first. */
export function MessageList({ messages }: { messages: Message[] }) {
  if (messages.length === 0) return <Empty>No messages yet.</Empty>;
  return (
    <ol class="messages">
      {messages.map((m) => (
        <MessageView key={m.id} message={m} />
      ))}
    </ol>
  );
}

/** A thread's subject, state and messages as `inbox show` returned them. */
export function ThreadView({ doc }: { doc: ThreadShow }) {
  const { thread, messages, more } = doc;
  return (
    <div class="thread">
      <h3 class="title-wrap">
        <span data-testid="thread-subject">{thread.subject}</span> <StateBadge state={thread.state} />
      </h3>
      <p class="muted small title-wrap">
        <span class="mono">{thread.id}</span> · for {thread.assigned_to}
        {thread.claimed_by && ` · claimed by ${thread.claimed_by}`}
        {thread.lease_expires_at && !thread.lease_expired && ` · lease until ${clock(thread.lease_expires_at)}`}
        {thread.lease_expired && ' · lease expired'}
      </p>
      <MessageList messages={messages} />
      {more && (
        <p class="muted small">
          Later messages are left out (too large for one page):{' '}
          <code>
            inbox show --thread {thread.id} --after-message {doc.last_message_id}
          </code>
        </p>
      )}
    </div>
  );
}

/** A thread read with `inbox show` and re-read on every change (live). */
export function ThreadPanel({ threadId }: { threadId: string }) {
  const q = useQuery<ThreadShow>('inbox/show', { thread: threadId });
  if (q.data === undefined) return q.error ? <ErrorText error={q.error} /> : <Loading />;
  return (
    <>
      <ThreadView doc={q.data} />
      <ErrorText error={q.error} />
    </>
  );
}
