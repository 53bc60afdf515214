import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // A describe whose name contains "(slow)" is left out by `npm run test:fast` (the in-process suites,
    // under a minute); the suites that drive the built CLIs as real processes carry it. `npm test` runs all.
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // After every test file: no stray child processes, temp dirs or open harness databases (see the file).
    setupFiles: ['test/leak-check.ts'],
    // One process per test file: the leak check kills the children of its own process, which are
    // then that file's alone (threads, or files sharing a process, would mix them up).
    pool: 'forks',
    isolate: true,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Process-heavy suites share 2 cores in CI; keep file-level parallelism modest.
    maxWorkers: 2,
    // CI reads the JSON report (see .ci/run), not the console summary.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
