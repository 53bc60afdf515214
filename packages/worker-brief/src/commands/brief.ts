import { ValidationError, defineCommand, isPostgresUrl, parseBoundedJson, readTextFile } from '@orch/store';
import path from 'node:path';
import { z } from 'zod';
import { renderBrief } from '../brief.ts';

const FORMAT = Symbol('format');

/** A dispatch output holds a body and a payload of up to 1 MiB each, JSON-escaped: 64 MiB is far beyond any real one. */
const DISPATCH_JSON_MAX_BYTES = 64 * 1024 * 1024;

export interface BriefCliOptions {
  /** How the brief of an attempt dispatched before briefs were stored runs the inbox CLI when --inbox is not given. */
  defaultInbox: string;
}

/** The tool's one command (`orch-worker-brief --dispatch-json FILE`): the worker's prompt for a saved dispatch result. */
export function command(options: BriefCliOptions) {
  return defineCommand({
    name: '$0',
    summary: 'Render the prompt for the worker of a dispatched attempt',
    description:
      'Reads a saved `orch --json dispatch` (or retry / reassign) output and the database, and prints the worker ' +
      'prompt orch rendered for that attempt when it dispatched it (stored in the task message of its thread; ' +
      "`inbox work` hands the same text to its command): who the worker is, the run goal, the task, the leader's " +
      'instructions, acceptance criteria, where to work (for code mode the worktree, branch, base ref and base ' +
      'commit), and the exact inbox commands to claim, report progress, ask and wait, and post the result or ' +
      'failure, with --db, --thread and --agent filled in. --inbox renders that brief again with another inbox ' +
      'command. The database is the source of truth: a dispatch JSON that does not parse or lacks fields is exit 2, ' +
      'an attempt the database does not have is exit 3, one that disagrees with it is exit 4.',
    flags: {
      'dispatch-json': { type: 'string', describe: 'The saved output of `orch --json dispatch`', required: true },
      format: { type: 'string', describe: 'text (default: the prompt itself) or json ({worker, thread_id, ..., brief})' },
      inbox: { type: 'string', describe: 'How the worker runs the inbox CLI (default: as in the brief orch stored at dispatch)' },
    },
    examples: [
      '--dispatch-json .orch/t2-dispatch.json --db .orch/coord.db > .orch/t2-brief.txt',
      '--dispatch-json .orch/t1-dispatch.json --db .orch/coord.db --format json',
      '--dispatch-json .orch/t1-dispatch.json --db .orch/coord.db --inbox /opt/tools/inbox',
    ],
    input: z.object({
      dispatchJson: z.string().min(1, 'must not be empty'),
      format: z.enum(['text', 'json'], { error: 'must be text or json' }).default('text'),
      inbox: z.string().min(1, 'must not be empty').optional(),
    }),
    run: async (ctx, input) => {
      const text = readTextFile(ctx, input.dispatchJson, 'dispatch-json', DISPATCH_JSON_MAX_BYTES);
      let dispatch: unknown;
      try {
        dispatch = parseBoundedJson(text);
      } catch (err) {
        throw new ValidationError(`--dispatch-json ${input.dispatchJson} is not valid JSON (${(err as Error).message})`, [
          { path: '--dispatch-json', message: 'not valid JSON' },
        ]);
      }
      const result = await renderBrief({
        dispatch,
        // A file relative to the working directory; a PostgreSQL URL as given.
        dbPath: isPostgresUrl(ctx.dbPath) ? ctx.dbPath : path.resolve(ctx.cwd, ctx.dbPath),
        inbox: input.inbox,
        defaultInbox: options.defaultInbox,
        clock: ctx.clock,
        ...(ctx.nativeBinding ? { nativeBinding: ctx.nativeBinding } : {}),
      });
      // The format rides along under a symbol, so `--json` output (JSON.stringify) never shows it.
      return Object.assign({ ...result }, { [FORMAT]: input.format });
    },
    text: (r) => (r[FORMAT] === 'json' ? `${JSON.stringify(r, null, 2)}\n` : r.brief),
    verbatimText: true,
  });
}
