import fs from 'node:fs';
import path from 'node:path';
import { ValidationError } from './errors.ts';
import { MAX_TEXT_BYTES } from './flags.ts';

/** Where a file flag's file comes from: the disk under `cwd`, or the files a remote client sent. */
export interface FileSource {
  cwd: string;
  /** Set by a server: the files the client read, by the path as given; the disk is never read then. */
  files?: ReadonlyMap<string, string> | undefined;
}

/**
 * Reads a text file given on the command line (`--body-file`), relative to `source.cwd`, or from
 * `source.files` when a server set it (a path the client did not send is refused). Reads at most
 * `maxBytes` + 1 bytes, so a huge file (or `/dev/zero`) is refused without being loaded.
 *
 * @throws ValidationError (2) when the file cannot be read (or was not sent) or holds more than `maxBytes` bytes.
 */
export function readTextFile(source: FileSource, file: string, flag: string, maxBytes = MAX_TEXT_BYTES): string {
  if (source.files !== undefined) return sentFile(source.files, file, flag, maxBytes);
  const full = path.resolve(source.cwd, file);
  // /dev/stdin is read through fd 0: reopening it fails when stdin is a socket (as Node's child processes get).
  const stdin = full === '/dev/stdin';
  let fd: number | undefined;
  try {
    fd = stdin ? 0 : fs.openSync(full, 'r');
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, maxBytes + 1 - total));
      let n: number;
      try {
        n = fs.readSync(fd, chunk, 0, chunk.length, null);
      } catch (err) {
        // A non-blocking pipe with nothing in it yet: wait a moment and read again.
        if ((err as { code?: string }).code !== 'EAGAIN') throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        continue;
      }
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) {
        const why = `must be at most ${maxBytes} bytes`;
        throw new ValidationError(`--${flag} ${file}: ${why}`, [{ path: `--${flag}`, message: why }]);
      }
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    const code = (err as { code?: string }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new ValidationError(`--${flag} ${file}: ${why}`, [{ path: `--${flag}`, message: why }]);
  } finally {
    if (fd !== undefined && !stdin) fs.closeSync(fd);
  }
}

function sentFile(files: ReadonlyMap<string, string>, file: string, flag: string, maxBytes: number): string {
  const text = files.get(file);
  if (text === undefined) {
    const why = 'the file was not sent';
    throw new ValidationError(`--${flag} ${file}: ${why} (a client of a server reads it and sends it under "$files")`, [{ path: `--${flag}`, message: why }]);
  }
  if (Buffer.byteLength(text, 'utf8') > maxBytes) {
    const why = `must be at most ${maxBytes} bytes`;
    throw new ValidationError(`--${flag} ${file}: ${why}`, [{ path: `--${flag}`, message: why }]);
  }
  return text;
}
