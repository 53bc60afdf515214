import { EXIT_CODES_HELP, loadedCommand, VERSION, type CliSpec } from '@orch/store';
import { command as briefCommand, type BriefCliOptions } from './commands/brief.ts';

export type { BriefCliOptions };

export function briefCli(options: BriefCliOptions): CliSpec {
  return {
    program: 'orch-worker-brief',
    version: VERSION,
    about: 'orch-worker-brief: turn a saved `orch --json dispatch` output into the prompt for the worker that will do it.',
    epilogue: EXIT_CODES_HELP,
    commands: [loadedCommand(briefCommand(options))],
  };
}
