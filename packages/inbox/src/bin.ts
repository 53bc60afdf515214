import { runMain } from '@orch/store';
import { inboxCli } from './cli.ts';

runMain(inboxCli, __dirname);
