import { runMain } from '@orch/store';
import { defaultWorkerInbox } from './worker-inbox.ts';
import { createOrchCli } from './cli.ts';

// git's messages untranslated: orch reads some of what git writes, such as the "initializing" lock
// a `git worktree add` leaves when it is killed mid-checkout. (simple-git refuses a custom
// environment that carries EDITOR and the like, so the locale is set for the whole process.)
process.env.LC_ALL = 'C';
delete process.env.LANGUAGE;

runMain(createOrchCli({ workerInbox: defaultWorkerInbox(__dirname) }), __dirname);
