import { runMain } from '@orch/store';
import { orchCli } from './cli.ts';

runMain(orchCli, __dirname);
