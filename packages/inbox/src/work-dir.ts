// The runner's files: the work directory, one fresh directory per claim, the log and the result
// file. The agent is untrusted and may share the work directory with other agents (and, in a
// shared directory such as /tmp, with other users), so nothing here follows a link it did not make.
import fs from 'node:fs';
import path from 'node:path';
import { MAX_TEXT_BYTES, ValidationError } from '@orch/store';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_APPEND, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/** The files of one claim: `<workDir>/<agent>/<thread>/<claim>/{output.log, result.md, scratch/}`. */
export interface ClaimFiles {
  dir: string;
  /** The claim directory as made (device and inode), to tell it from anything put in its place. */
  dirId: { dev: number; ino: number };
  logFile: string;
  resultFile: string;
  scratch: string;
}

const myUid = (): number | undefined => process.getuid?.();

/**
 * Creates the work directory owner-only (0700, whatever the umask) if it is missing, and checks
 * an existing one: a directory (a link to one is fine) owned by this user and not writable by
 * group or others. Returns its real path, which the runner uses from then on.
 *
 * @throws ValidationError (2) naming the problem; nothing has been claimed yet.
 */
export function prepareWorkDir(workDir: string): string {
  const refuse = (why: string): never => {
    throw new ValidationError(`--work-dir ${workDir}: ${why}`, [{ path: '--work-dir', message: why }]);
  };
  try {
    fs.mkdirSync(workDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    refuse((err as Error).message);
  }
  let real = workDir;
  let st: fs.Stats | undefined;
  try {
    real = fs.realpathSync(workDir);
    st = fs.statSync(real);
  } catch (err) {
    refuse((err as Error).message);
  }
  if (!st?.isDirectory()) return refuse('is not a directory');
  const uid = myUid();
  if (uid !== undefined && st.uid !== uid) {
    refuse(`is owned by uid ${st.uid}, not by you (uid ${uid}): its owner could plant links in it; use a directory of your own`);
  }
  if ((st.mode & 0o022) !== 0) {
    refuse(
      `is writable by group or others (mode ${(st.mode & 0o777).toString(8)}), so others could plant links in it; \`chmod 700\` it or use another directory`,
    );
  }
  return real;
}

/**
 * Makes the claim's directory fresh under the (checked) work directory: `<agent>` and `<thread>`
 * must be real directories owned by this user (a link, file or anything else there is removed,
 * never followed, and replaced by a directory); `<claim>` is removed if anything is there and made
 * anew, all 0700. The log is created 0600 here, exclusively and without following links.
 *
 * @returns the paths and the open log descriptor.
 * @throws Error (a file system error, or a directory owned by someone else) when it cannot.
 */
export function makeClaimDir(workDir: string, agent: string, threadId: string, claim: number): { files: ClaimFiles; logFd: number } {
  const threadDir = path.join(workDir, agent, threadId);
  ownDir(path.join(workDir, agent));
  ownDir(threadDir);
  const dir = path.join(threadDir, String(claim));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { mode: 0o700 });
  const made = fs.lstatSync(dir);
  const files: ClaimFiles = {
    dir,
    dirId: { dev: made.dev, ino: made.ino },
    logFile: path.join(dir, 'output.log'),
    resultFile: path.join(dir, 'result.md'),
    scratch: path.join(dir, 'scratch'),
  };
  const logFd = fs.openSync(files.logFile, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW, 0o600);
  try {
    // The runner makes the result file, so what it reads back later is checked against a file of its own.
    fs.closeSync(fs.openSync(files.resultFile, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600));
  } catch (err) {
    fs.closeSync(logFd);
    throw err;
  }
  return { files, logFd };
}

/** The scratch directory (the command's working directory), made fresh. */
export function makeScratch(files: ClaimFiles): void {
  fs.mkdirSync(files.scratch, { mode: 0o700 });
}

function ownDir(dir: string): void {
  for (let tries = 0; ; tries++) {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (st?.isDirectory()) {
      const uid = myUid();
      if (uid !== undefined && st.uid !== uid) throw new Error(`${dir} is owned by uid ${st.uid}, not by you (uid ${uid})`);
      return;
    }
    if (st) fs.rmSync(dir, { recursive: true, force: true }); // a link, file, FIFO...: removed, not followed
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
      return;
    } catch (err) {
      // Another runner made it first: look again (once).
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 0) throw err;
    }
  }
}

/** What the runner found at `$INBOX_RESULT_FILE` after the command exited 0. */
export type ResultFile =
  /** Missing, empty or only whitespace: the result is the end of stdout. */
  | { kind: 'none' }
  | { kind: 'text'; text: string }
  /** A regular file of the runner's that cannot be a message (too big, NUL): kept, and the result names it. */
  | { kind: 'unfit'; size: number; why: string }
  /** Anything else (a directory, FIFO, device, link, a hard link, someone else's file): never read. */
  | { kind: 'refused'; why: string };

/**
 * Reads the result file only if it is a regular file owned by this user with one link, in the
 * claim directory the runner made (no directory on the way replaced by a link), opened without
 * following links and without blocking, and at most MAX_TEXT_BYTES + 1 bytes of it.
 */
export function readResultFile(files: ClaimFiles): ResultFile {
  const file = files.resultFile;
  if (!sameDir(files)) return { kind: 'refused', why: 'is not in the claim directory the runner made (a directory on its path was moved or replaced)' };
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    return { kind: 'refused', why: `cannot be examined (${(err as Error).message})` };
  }
  const wrong = notOurs(st, file);
  if (wrong !== undefined) return { kind: 'refused', why: wrong };
  if (st.size > MAX_TEXT_BYTES) return { kind: 'unfit', size: st.size, why: `more than a message may hold, ${MAX_TEXT_BYTES} bytes` };
  let fd: number;
  try {
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { kind: 'refused', why: code === 'ELOOP' ? 'is a symbolic link' : `cannot be opened (${(err as Error).message})` };
  }
  try {
    const now = fs.fstatSync(fd);
    if (now.ino !== st.ino || now.dev !== st.dev) return { kind: 'refused', why: 'was replaced while the runner read it' };
    const again = notOurs(now, file);
    if (again !== undefined) return { kind: 'refused', why: again };
    const buf = Buffer.allocUnsafe(MAX_TEXT_BYTES + 1);
    let total = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, total, buf.length - total, null);
      if (n === 0) break;
      total += n;
      if (total > MAX_TEXT_BYTES) return { kind: 'unfit', size: Math.max(total, now.size), why: `more than a message may hold, ${MAX_TEXT_BYTES} bytes` };
    }
    const text = buf.subarray(0, total).toString('utf8');
    if (Buffer.byteLength(text, 'utf8') > MAX_TEXT_BYTES) {
      return { kind: 'unfit', size: total, why: `more than a message may hold once decoded as UTF-8, ${MAX_TEXT_BYTES} bytes` };
    }
    if (text.includes('\u0000')) return { kind: 'unfit', size: total, why: 'it holds NUL characters, which a message may not' };
    return text.trim() === '' ? { kind: 'none' } : { kind: 'text', text };
  } finally {
    fs.closeSync(fd);
  }
}

function notOurs(st: fs.Stats, file: string): string | undefined {
  if (st.isSymbolicLink()) {
    let to = '';
    try {
      to = ` (to ${fs.readlinkSync(file)})`;
    } catch {
      // gone meanwhile
    }
    return `is a symbolic link${to}`;
  }
  if (st.isDirectory()) return 'is a directory';
  if (st.isFIFO()) return 'is a FIFO (named pipe)';
  if (st.isSocket()) return 'is a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'is a device';
  if (!st.isFile()) return 'is not a regular file';
  const uid = myUid();
  if (uid !== undefined && st.uid !== uid) return `is owned by uid ${st.uid}, not by the runner (uid ${uid})`;
  if (st.nlink > 1) return `has ${st.nlink} hard links (it may be another file's contents)`;
  return undefined;
}

/** Whether the claim directory is still the one the runner made, reached through no link. */
export function sameDir(files: ClaimFiles): boolean {
  try {
    const st = fs.lstatSync(files.dir);
    return st.isDirectory() && st.dev === files.dirId.dev && st.ino === files.dirId.ino && fs.realpathSync(files.dir) === files.dir;
  } catch {
    return false;
  }
}

/** Removes `p` whatever it is (a link is removed, not followed). Returns the error message, if any. */
export function removeAny(p: string): string | undefined {
  try {
    fs.rmSync(p, { recursive: true, force: true });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Whether `p` exists as anything but a regular file (a dangling link counts). */
export function isOddEntry(p: string): boolean {
  try {
    return !fs.lstatSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Removes the scratch directories of a finished thread: this claim's and those of earlier claims
 * (their leases are over). Logs and result files stay. Returns error messages, if any.
 */
export function removeScratch(workDir: string, agent: string, threadId: string, upToClaim: number): string[] {
  const threadDir = path.join(workDir, agent, threadId);
  let entries: string[] = [];
  try {
    // Only through real directories: a link put in place of one is not followed.
    if (!fs.lstatSync(threadDir).isDirectory() || fs.realpathSync(threadDir) !== threadDir) return [];
    entries = fs.readdirSync(threadDir);
  } catch {
    return [];
  }
  const problems: string[] = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name) || Number(name) > upToClaim) continue;
    const claimDir = path.join(threadDir, name);
    try {
      if (!fs.lstatSync(claimDir).isDirectory()) continue;
    } catch {
      continue;
    }
    const why = removeAny(path.join(claimDir, 'scratch'));
    if (why !== undefined) problems.push(why);
  }
  return problems;
}
