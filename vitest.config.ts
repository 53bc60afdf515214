import { configDefaults, defineConfig, type TestProjectInlineConfiguration, type ViteUserConfig } from 'vitest/config';
import { PG_URL } from './test/engine-env.ts';
import { pgProblem } from './test/global-setup.ts';

// Files the postgres project leaves out: they are about SQLite or about text, not about an engine.
// - test/query-plans.test.ts: SQLite's EXPLAIN QUERY PLAN for every query (PostgreSQL's planner is another subject);
// - test/install.test.ts: installing the package and its native module, and the demo (both on a SQLite file);
// - test/docs.test.ts, test/skills.test.ts: README/docs/--help and the skills' text and shell flows as written (SQLite paths);
// - packages/inbox/src/task-payload.test.ts: parsing a task's payload, no database at all;
// - packages/store/src/*.test.ts: the store's own unit tests (the store package tests its engines itself).
const SQLITE_ONLY_FILES = [
  'test/query-plans.test.ts',
  'test/install.test.ts',
  'test/docs.test.ts',
  'test/skills.test.ts',
  'packages/inbox/src/task-payload.test.ts',
  'packages/store/src/**/*.test.ts',
];

export default defineConfig(async (): Promise<ViteUserConfig> => {
  // Outside CI, a machine without a PostgreSQL server runs the SQLite half only, saying so once; under
  // CI=true the postgres project always runs and test/global-setup.ts fails it if the server is away.
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  const pgAway = ci ? undefined : await pgProblem(PG_URL);
  // vitest evaluates this file more than once per run; the line is printed the first time only.
  if (pgAway !== undefined && process.env.ORCH_TEST_PG_SKIP_SAID === undefined) {
    process.env.ORCH_TEST_PG_SKIP_SAID = '1';
    console.log(`PostgreSQL half of the suite skipped: no server at ${PG_URL} (${pgAway})`);
  }
  const include = ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'];
  const postgres: TestProjectInlineConfiguration = {
    extends: true,
    test: { name: 'postgres', include, exclude: [...configDefaults.exclude, ...SQLITE_ONLY_FILES], env: { ORCH_TEST_ENGINE: 'postgres' } },
  };
  return {
    test: {
      // A describe whose name contains "(slow)" is left out by `npm run test:fast` (the in-process suites,
      // under a minute); the suites that drive the built CLIs as real processes carry it. `npm test` runs all.
      // Two projects, one per engine (test/engine.ts reads ORCH_TEST_ENGINE); `--project sqlite` or
      // `--project postgres` runs one.
      projects: [{ extends: true, test: { name: 'sqlite', include, env: { ORCH_TEST_ENGINE: 'sqlite' } } }, ...(pgAway === undefined ? [postgres] : [])],
      globalSetup: ['test/global-setup.ts'],
      // After every test file: no stray child processes, temp dirs or open harness databases (see the file).
      setupFiles: ['test/leak-check.ts'],
      // One process per test file: the leak check kills the children of its own process, which are
      // then that file's alone (threads, or files sharing a process, would mix them up).
      pool: 'forks',
      isolate: true,
      testTimeout: 120_000,
      hookTimeout: 120_000,
      // Process-heavy suites share 2 cores in CI; keep file-level parallelism modest (both projects together).
      maxWorkers: 2,
      // CI reads the JSON report (see .ci/run), not the console summary: one report for both projects.
      reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    },
  };
});
