import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Two cores: test files that spawn worker processes would starve each other beyond two.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    // A green run prints no logs: console output (test/helpers/log.ts routes the in-process
    // loggers there) is shown only for a test that fails, and setup.ts adds what the test's
    // processes printed meanwhile.
    silent: 'passed-only',
    setupFiles: ['test/helpers/setup.ts'],
  },
});
