/** One Server-Sent Event: its type (`event:`, default `message`), `id:` and `data:` lines. */
export interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

/**
 * Splits a text/event-stream into events as its chunks arrive (a chunk may end anywhere, even
 * inside a line or between \r and \n). Comment lines (`: keep-alive`) and blocks with no field
 * are skipped.
 */
export class SseParser {
  private buffer = '';

  /** Feeds one chunk; returns the events it completed. */
  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    // A lone \r at the very end may be the first half of \r\n: keep it for the next chunk.
    const keepCr = this.buffer.endsWith('\r');
    const text = (keepCr ? this.buffer.slice(0, -1) : this.buffer).replace(/\r\n?/g, '\n');
    const out: SseEvent[] = [];
    let start = 0;
    let end = text.indexOf('\n\n', start);
    while (end >= 0) {
      const ev = parseBlock(text.slice(start, end));
      if (ev) out.push(ev);
      start = end + 2;
      end = text.indexOf('\n\n', start);
    }
    this.buffer = text.slice(start) + (keepCr ? '\r' : '');
    return out;
  }
}

function parseBlock(block: string): SseEvent | undefined {
  let event = 'message';
  let id: string | undefined;
  const data: string[] = [];
  let any = false;
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'id') id = value;
    else if (field === 'data') data.push(value);
    else continue;
    any = true;
  }
  if (!any) return undefined;
  return id === undefined ? { event, data: data.join('\n') } : { event, id, data: data.join('\n') };
}
