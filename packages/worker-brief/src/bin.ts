import { defaultWorkerInbox } from '@orch/orch';
import { runMain } from '@orch/store';
import { briefCli } from './cli.ts';

runMain(briefCli({ defaultInbox: defaultWorkerInbox(__dirname) }), __dirname);
