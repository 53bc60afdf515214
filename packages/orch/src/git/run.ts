// Running git: through simple-git (no shell: arguments are passed as an array), one process at a
// time per call, every non-zero exit a GitFailure. Never call these inside a database transaction.
import type { SimpleGit } from 'simple-git';
import { AppError, ExitCode } from '@orch/store';

let factory: ((dir: string) => SimpleGit) | undefined;

/** simple-git is loaded on first use, so commands that never touch git never pay for it. */
async function git(dir: string): Promise<SimpleGit> {
  if (!factory) {
    const mod = await import('simple-git');
    factory = (d) =>
      mod.simpleGit({
        baseDir: d,
        maxConcurrentProcesses: 1,
        trimmed: false,
        // By default a non-zero exit with nothing on stderr counts as success; every non-zero exit is a failure here.
        errors: (error, result) => {
          if (error) return error;
          if (result.exitCode === 0) return undefined;
          return Buffer.concat([...result.stdErr, ...result.stdOut]);
        },
      });
  }
  return factory(dir);
}

/** Runs git in `dir`; throws GitFailure (with git's own message) on a non-zero exit. */
export async function run(dir: string, args: string[]): Promise<string> {
  try {
    return await (await git(dir)).raw(args);
  } catch (err) {
    throw new GitFailure(args, (err as Error).message.trim());
  }
}

/** Like run, but a non-zero exit is an answer (`undefined`), not an error. */
export async function probe(dir: string, args: string[]): Promise<string | undefined> {
  try {
    return await run(dir, args);
  } catch (err) {
    if (err instanceof GitFailure) return undefined;
    throw err;
  }
}

/** git refused (exit 4, code GIT_FAILED): the message carries git's own first line. */
export class GitFailure extends AppError {
  constructor(
    readonly args: string[],
    readonly gitMessage: string,
  ) {
    super('GIT_FAILED', ExitCode.conflict, `git ${args.slice(0, 2).join(' ')} failed: ${gitMessage.split('\n')[0] ?? ''}`, {
      details: { args, message: gitMessage },
    });
  }
}
