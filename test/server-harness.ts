// Starting the built `orch serve` as a real process for tests, and talking to it over loopback.
import { type ChildProcess, spawn } from 'node:child_process';
import { ORCH_BIN, ROOT } from './helpers.ts';

export interface Served {
  url: string;
  child: ChildProcess;
  stderr(): string;
  /** SIGTERM, then waits for the exit; resolves to the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, then waits for the exit. */
  kill9(): Promise<void>;
}

/** Starts `orch --db DB --json serve --port 0 ARGS...` and resolves once it prints its URL. */
export function serve(db: string, args: string[] = [], options: { bin?: string; cwd?: string } = {}): Promise<Served> {
  const child = spawn(process.execPath, [options.bin ?? ORCH_BIN, '--db', db, '--json', 'serve', '--port', '0', ...args], {
    cwd: options.cwd ?? ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line !== undefined) {
        try {
          const { url } = JSON.parse(line) as { url: string };
          resolve({
            url,
            child,
            stderr: () => err,
            stop: async () => {
              child.kill('SIGTERM');
              return exited;
            },
            kill9: async () => {
              child.kill('SIGKILL');
              await exited;
            },
          });
        } catch (e) {
          reject(new Error(`orch serve printed ${JSON.stringify(out)}: ${String(e)}`));
        }
      }
    });
    void exited.then((code) => reject(new Error(`orch serve exited ${code} before listening: ${err}`)));
  });
}

export interface HttpResult {
  status: number;
  exit: number;
  headers: Headers;
  text: string;
  json: any;
}

/** POSTs `body` (an object, or raw text) to `url` + `path`. */
export async function post(url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpResult> {
  const r = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, exit: Number(r.headers.get('orch-exit-code')), headers: r.headers, text, json };
}

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** Reads Server-Sent Events from `url` until `until` says stop (or `signal` aborts); returns them. */
export async function readEvents(url: string, until: (events: SseEvent[]) => boolean, headers: Record<string, string> = {}): Promise<SseEvent[]> {
  const stop = new AbortController();
  const r = await fetch(url, { headers, signal: stop.signal });
  if (r.status !== 200 || !r.body) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let buffer = '';
  try {
    while (!until(events)) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const e: SseEvent = { data: '' };
        let data = false;
        for (const line of block.split('\n')) {
          const m = /^([a-z]+): ?(.*)$/i.exec(line);
          if (!m) continue;
          if (m[1] === 'id') e.id = m[2];
          else if (m[1] === 'event') e.event = m[2];
          else if (m[1] === 'data') {
            e.data += m[2];
            data = true;
          }
        }
        if (data) events.push(e);
        end = buffer.indexOf('\n\n');
      }
    }
  } finally {
    stop.abort();
  }
  return events;
}
