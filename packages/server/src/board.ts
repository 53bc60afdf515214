// The live web board's files (built by scripts/build-board.mjs from packages/board/src), served at
// `/` and `/assets/<file>` by `orch serve`. Static files only: the page reads everything else
// through the API with the token it was given, so serving the files needs no token.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

/**
 * What the page may load: its own scripts, styles, worker and API only (no inline script or style,
 * no other origin, no frames, no forms posting anywhere). Sent with every file of the board.
 */
export const BOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Headers on every answer of the board's routes (the files, their 304s and 404s). */
export const BOARD_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': BOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // Revalidated at every load (an ETag makes that a 304): a rebuilt board is never mixed with an old file.
  'cache-control': 'no-cache',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/** A board file's name: one plain segment (the board folder is flat), never a hidden file. */
const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

/** Text files are sent gzipped to a client that accepts it, when that makes them smaller. */
const COMPRESSIBLE = /^(text\/|application\/json|image\/svg)/;

interface Loaded {
  /** What the file was when read: a change of either reads it again. */
  stamp: string;
  type: string;
  body: Buffer;
  gzip: Buffer | undefined;
  etag: string;
}

export interface BoardAnswer {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer> | string | null;
}

/**
 * Where the running server finds the board: `board/` beside the running bundle (orch-server.cjs,
 * scripts/build.mjs installs it there), else the repository's `packages/board/dist` (the server run
 * from source, as the tests import it). Undefined when neither is there (the board was not built).
 */
export function findBoardDir(here: string | undefined = moduleDir()): string | undefined {
  if (here === undefined) return undefined;
  for (const dir of [path.join(here, 'board'), path.resolve(here, '../../board/dist')]) {
    if (fs.existsSync(path.join(dir, 'index.html'))) return dir;
  }
  return undefined;
}

/** The directory of this module's file: the bundle's (CommonJS __dirname) or the source file's. */
function moduleDir(): string | undefined {
  return typeof __dirname === 'string' ? __dirname : undefined;
}

/**
 * The board's files out of one folder, read on first use and again when a file changes (size or
 * modification time), each with a strong ETag of its bytes and its gzipped form.
 */
export class BoardFiles {
  private readonly cache = new Map<string, Loaded>();

  /** `dir` undefined: the board was not built; `/` says so. */
  constructor(readonly dir: string | undefined) {}

  /**
   * The answer for `name` (`index.html` for `/`): 200 with the file, 304 when `ifNoneMatch` holds
   * its ETag, undefined when the folder has no such file (the caller answers 404).
   */
  answer(name: string, request: { ifNoneMatch?: string | undefined; acceptEncoding?: string | undefined }): BoardAnswer | undefined {
    const file = this.load(name);
    if (!file) return undefined;
    const gzip = file.gzip !== undefined && acceptsGzip(request.acceptEncoding);
    const etag = gzip ? `"${file.etag}-gz"` : `"${file.etag}"`;
    const headers: Record<string, string> = { ...BOARD_HEADERS, etag, vary: 'Accept-Encoding' };
    if (request.ifNoneMatch !== undefined && matches(request.ifNoneMatch, file.etag)) return { status: 304, headers, body: null };
    headers['content-type'] = file.type;
    if (gzip) headers['content-encoding'] = 'gzip';
    const body = gzip ? (file.gzip as Buffer) : file.body;
    headers['content-length'] = String(body.byteLength);
    return { status: 200, headers, body: new Uint8Array(body.buffer as ArrayBuffer, body.byteOffset, body.byteLength) };
  }

  private load(name: string): Loaded | undefined {
    if (this.dir === undefined || !FILE_NAME.test(name)) return undefined;
    const full = path.join(this.dir, name);
    let stat: fs.Stats;
    try {
      // Not followed: a link in the folder never serves a file from elsewhere.
      stat = fs.lstatSync(full);
    } catch {
      return undefined;
    }
    if (!stat.isFile()) return undefined;
    const stamp = `${stat.size}:${stat.mtimeMs}`;
    const cached = this.cache.get(name);
    if (cached?.stamp === stamp) return cached;
    let body: Buffer;
    try {
      body = fs.readFileSync(full);
    } catch {
      return undefined;
    }
    const type = TYPES[path.extname(name).toLowerCase()] ?? 'application/octet-stream';
    const packed = COMPRESSIBLE.test(type) ? zlib.gzipSync(body, { level: 9 }) : undefined;
    const loaded: Loaded = {
      stamp,
      type,
      body,
      gzip: packed !== undefined && packed.byteLength < body.byteLength ? packed : undefined,
      etag: crypto.createHash('sha256').update(body).digest('base64url').slice(0, 27),
    };
    this.cache.set(name, loaded);
    return loaded;
  }
}

/** Whether an Accept-Encoding header accepts gzip (and does not refuse it with q=0). */
function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding?.trim() !== 'gzip' && coding?.trim() !== '*') return false;
    const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    return q === undefined || Number(q) > 0;
  });
}

/** Whether If-None-Match names this file's ETag (either form: identity or gzip; weak or strong; `*`). */
function matches(header: string, etag: string): boolean {
  return header.split(',').some((tag) => {
    const t = tag.trim().replace(/^W\//, '');
    return t === '*' || t === `"${etag}"` || t === `"${etag}-gz"`;
  });
}
