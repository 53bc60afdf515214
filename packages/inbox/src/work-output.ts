// `inbox work`: a command's output: the tail kept for its result or failure message, how long it
// may drain after the command exits, and closing the log file it is copied to.
import type fs from 'node:fs';

/** How much of a command's output is kept for its result or failure message. */
const TAIL_BYTES = 16 * 1024;
/** After the command exits, how long its output may still drain before the runner stops reading. */
export const DRAIN_MS = 500;

/**
 * The last TAIL_BYTES of a stream, plus how many bytes were seen. Text taken from it has NUL
 * replaced by U+FFFD (as invalid UTF-8 is), since a message may not hold NUL.
 */
export class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  received = 0;

  push(d: Buffer): void {
    this.chunks.push(d);
    this.size += d.length;
    this.received += d.length;
    while (this.size > TAIL_BYTES && this.chunks.length > 1) this.size -= this.chunks.shift()?.length ?? 0;
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return all
      .subarray(Math.max(0, all.length - TAIL_BYTES))
      .toString('utf8')
      .replaceAll('\u0000', '\uFFFD');
  }

  lastLine(): string {
    return (
      this.text()
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '')
        .at(-1) ?? ''
    );
  }
}

/** Ends a write stream and waits until its file is closed (at once if it already failed). */
export function closeStream(stream: fs.WriteStream): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('close', () => resolve());
    if (!stream.destroyed) stream.end();
  });
}
