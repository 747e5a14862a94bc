import { defineConfig } from 'vitest/config';

// Each test file gets its own database (see test/helpers/database.ts), so files run in parallel.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['test/helpers/globalSetup.ts'],
    pool: 'forks',
    maxWorkers: 4,
    reporters: ['default'],
  },
});
