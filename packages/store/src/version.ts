// The one version number: the orch-inbox package's (the root package.json). Every CLI prints it
// for --version, and the Claude Code plugin carries the same (test/package.test.ts checks it).
import { version } from '../../../package.json';

/** The orch-inbox package version (semver), as `orch --version`, `inbox --version` and `orch-worker-brief --version` print it. */
export const VERSION: string = version;
