import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // After every test file: no stray child processes, temp dirs or open harness databases (see the file).
    setupFiles: ['test/leak-check.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Process-heavy suites share 2 cores in CI; keep file-level parallelism modest.
    maxWorkers: 2,
    // CI reads the JSON report (see .ci/run), not the console summary.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
