import { useQuery } from './api.ts';
import { Empty, ErrorText, JsonBlock, Loading, StateBadge, Time } from './components.tsx';
import type { Message, ThreadShow } from './task-types.ts';

/**
 * One message of a thread. The body and payload are agent-written: they are rendered as text
 * (the body keeps its line breaks through CSS, the payload is a JSON block), never as HTML.
 */
export function MessageView({ message }: { message: Message }) {
  return (
    <li class="message" data-testid="message" data-kind={message.kind} data-role={message.role}>
      <div class="message-head">
        <span class={`message-kind kind-${message.kind}`}>{message.kind}</span>
        <span class="message-author">{message.author}</span>
        {message.author !== message.role && <span class="muted">({message.role})</span>}
        <Time iso={message.created_at} />
      </div>
      {message.body != null && message.body !== '' && (
        <div class="message-body text-body" data-testid="message-body">
          {message.body}
        </div>
      )}
      {message.payload != null && (
        <div class="message-payload" data-testid="message-payload">
          <JsonBlock value={message.payload} />
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
    <section class="thread" aria-label="Thread">
      <h3 class="thread-subject">
        <span data-testid="thread-subject">{thread.subject}</span> <StateBadge state={thread.state} />
      </h3>
      <p class="muted small">
        {thread.id} · assigned to {thread.assigned_to}
        {thread.claimed_by && ` · claimed by ${thread.claimed_by}`}
        {thread.lease_expired && ' · lease expired'}
      </p>
      <MessageList messages={messages} />
      {more && <p class="muted small">Later messages are too large to show here; read them with `inbox show --after-message {doc.last_message_id}`.</p>}
    </section>
  );
}

/** A thread read with `inbox show` and re-read on every change (live). */
export function ThreadPanel({ threadId }: { threadId: string }) {
  const q = useQuery<ThreadShow>('inbox/show', { thread: threadId });
  if (q.data === undefined) return q.error ? <ErrorText error={q.error} /> : <Loading />;
  return (
    <>
      <ThreadView doc={q.data} />
      {q.error && <ErrorText error={q.error} />}
    </>
  );
}
