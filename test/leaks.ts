/**
 * What a test file must not leave behind, recorded by the shared helpers and checked after the file
 * by test/leak-check.ts: temporary directories made through tempDir()/fileTempDir(), and harness
 * worlds (open databases) not closed. Child processes are found by the environment tag below.
 */

/** Every child process a test file starts (with process.env passed on) carries this variable. */
export const LEAK_TAG_VAR = 'ORCH_TEST_LEAK_TAG';

const tempDirs = new Set<string>();
const openThings = new Map<object, string>();

/** Records a temporary directory a helper made; the leak check expects it gone after the file. */
export function trackTempDir(dir: string): void {
  tempDirs.add(dir);
}

/** The temporary directories recorded so far. */
export function trackedTempDirs(): string[] {
  return [...tempDirs];
}

/** Records something open (a database handle, a world) until `untrackOpen`. */
export function trackOpen(handle: object, label: string): void {
  openThings.set(handle, label);
}

export function untrackOpen(handle: object): void {
  openThings.delete(handle);
}

/** What is still open, by label. */
export function stillOpen(): string[] {
  return [...openThings.values()];
}
