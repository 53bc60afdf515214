import { visible } from '@orch/store';
import type { MessageView, ThreadView } from './views.ts';

/** A thread's header followed by its messages. Stored text is shown with control characters made visible. */
export function threadText(thread: ThreadView, messages: MessageView[]): string {
  const lines = [
    `thread ${thread.id}: ${visible(thread.subject)}`,
    `  state ${stateLabel(thread)} · assigned to ${thread.assigned_to} · opened by ${thread.created_by} · claims ${thread.claim_count}`,
  ];
  if (thread.claimed_by && thread.lease_expires_at) lines.push(`  held by ${thread.claimed_by}, lease until ${thread.lease_expires_at}`);
  if (messages.length > 0) lines.push('', messagesText(messages));
  return lines.join('\n');
}

/** Messages one after another, a blank line between them. */
export function messagesText(messages: MessageView[]): string {
  return messages.map(messageText).join('\n\n');
}

/**
 * One message: a head line (id, kind, author and its role, time), then its body indented, on as
 * many lines as it has (control characters other than newline and tab made visible: a worker's
 * text cannot drive the reader's terminal), then the payload.
 */
export function messageText(m: Omit<MessageView, 'role'> & { role?: MessageView['role'] }): string {
  const head = `#${m.id} ${m.kind} from ${visible(m.author)}${m.role !== undefined ? ` (${m.role})` : ''} at ${m.created_at}`;
  const body = visible(m.body, { multiline: true })
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
  const payload = m.payload === null ? '' : `\n  payload: ${visible(JSON.stringify(m.payload))}`;
  return `${head}\n${body}${payload}`;
}

/** A thread's state, marked when its lease has run out. */
export function stateLabel(t: ThreadView): string {
  return t.lease_expired ? `${t.state} (lease expired)` : t.state;
}
