import { AppError, ConflictError, ExitCode, ForbiddenError, LeaseLostError, NotFoundError, ValidationError, type ExitCodeValue } from '../errors.ts';
import { postJson, type PostOptions, type RemoteAnswer } from './client.ts';
import type { RemoteTarget } from './target.ts';

/** A command's answer from the server: its `--json` document and the exit code the CLI exits with. */
export interface RemoteResult {
  result: unknown;
  exitCode: ExitCodeValue;
  /** The server replayed the stored answer of an earlier try with the same idempotency key. */
  replayed: boolean;
}

/** The API path of a command: `/v1/inbox/claim`, `/v1/orch/run/init`, `/v1/orch-worker-brief` (a program of one command). */
export function commandPath(program: string, name: string): string {
  return name === '$0' ? `/v1/${program}` : `/v1/${program}/${name.split(' ').join('/')}`;
}

/**
 * Runs `program name` on the server with `input` (the raw flag values, camelCase, as the CLI parsed
 * them) and the text of the files the command reads (`$files`).
 *
 * @throws AppError with the server's error document (its code, message and details, and the exit
 *   code from `Orch-Exit-Code`); UNKNOWN_COMMAND (2) when the server does not serve the command;
 *   SERVER_BAD_ANSWER (6) when the answer is not an orch server's; as postJson.
 */
export async function callRemote(
  target: RemoteTarget,
  program: string,
  name: string,
  input: Record<string, unknown>,
  files: Record<string, string> | undefined,
  options: PostOptions = {},
): Promise<RemoteResult> {
  const body = JSON.stringify(files === undefined ? input : { ...input, $files: files });
  const answer = await postJson(target, commandPath(program, name), body, options);
  return interpret(target, program, name, answer);
}

function interpret(target: RemoteTarget, program: string, name: string, answer: RemoteAnswer): RemoteResult {
  const command = name === '$0' ? program : `${program} ${name}`;
  let doc: unknown;
  try {
    doc = JSON.parse(answer.body);
  } catch {
    doc = undefined;
  }
  if (answer.status >= 200 && answer.status < 300) {
    if (doc === undefined || doc === null || typeof doc !== 'object') throw badAnswer(target, answer, 'a body that is not a JSON document');
    return { result: doc, exitCode: answer.exitCode ?? ExitCode.ok, replayed: answer.replayed };
  }
  const error = (doc as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  if (!error || typeof error.code !== 'string' || typeof error.message !== 'string') {
    if (answer.status === 404) throw unknownCommand(target, command);
    throw badAnswer(target, answer, 'a body that is not an error document');
  }
  // An unknown route (the server's NOT_FOUND without a command's exit 3): an older server, or a command it does not serve.
  if (answer.status === 404 && error.code === 'NOT_FOUND' && answer.exitCode !== ExitCode.notFound) throw unknownCommand(target, command);
  throw typedError(error.code, answer.exitCode ?? exitForStatus(answer.status), error.message, error.details);
}

/** The server's error as the class the library throws for it (so callers' `instanceof` checks hold), else a plain AppError. */
function typedError(code: string, exitCode: ExitCodeValue, message: string, details: unknown): AppError {
  if (code === 'LEASE_LOST' && exitCode === ExitCode.leaseLost) return new LeaseLostError(message, details);
  if (code === 'CONFLICT' && exitCode === ExitCode.conflict) return new ConflictError(message, details);
  if (code === 'FORBIDDEN' && exitCode === ExitCode.conflict) return new ForbiddenError(message, details);
  if (code === 'NOT_FOUND' && exitCode === ExitCode.notFound) return new NotFoundError(message, details);
  if (code === 'VALIDATION' && exitCode === ExitCode.usage) return new ValidationError(message, details);
  return new AppError(code, exitCode, message, details === undefined ? {} : { details });
}

function exitForStatus(status: number): ExitCodeValue {
  if (status === 401 || status === 403 || status === 409) return ExitCode.conflict;
  if (status === 423) return ExitCode.leaseLost;
  if (status === 404) return ExitCode.notFound;
  if (status >= 400 && status < 500) return ExitCode.usage;
  return ExitCode.unavailable;
}

function unknownCommand(target: RemoteTarget, command: string): AppError {
  return new AppError(
    'UNKNOWN_COMMAND',
    ExitCode.usage,
    `the server at ${target.display} does not serve \`${command}\` (an older server, or not an orch server)`,
  );
}

function badAnswer(target: RemoteTarget, answer: RemoteAnswer, what: string): AppError {
  return new AppError(
    'SERVER_BAD_ANSWER',
    ExitCode.unavailable,
    `the server at ${target.display} answered HTTP ${answer.status} with ${what}; is that URL an \`orch serve\`?`,
    { details: { url: target.display, status: answer.status } },
  );
}
