// What every doctor check yields: a problem and, when one is safe, its repair.
import { problem, type Problem } from '@orch/store';

/** A problem and, when one is safe, its repair (which takes its own transaction or runs git). */
export interface Finding {
  problem: Problem;
  fix?: () => Promise<boolean>;
}

/** The fields of a run's problem that a check fills in (`run` and `repaired` are set for it). */
export type RunProblem = Omit<Problem, 'repaired' | 'run'>;

/** A problem of run `runId`, with its repair (`fix`) when one is safe: the driver runs repairs after every check. */
export function runFinding(runId: string, p: RunProblem, fix?: () => Promise<boolean>): Finding {
  return { problem: problem({ run: runId, ...p }), ...(fix ? { fix } : {}) };
}

/** A problem of run `runId` whose repair the check made (or not) while looking: `repaired` says which. */
export function repairedFinding(runId: string, p: RunProblem, repaired = false): Finding {
  return { problem: { ...problem({ run: runId, ...p }), repaired } };
}
