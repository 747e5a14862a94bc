import { defineConfig } from 'vitest/config';

// Each test file gets its own database (see test/helpers/database.ts), so files run in parallel.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A hang guard, not a time limit: CI runs four files at once on two CPUs, where a full run with
    // the stand-ins takes several times what it takes alone.
    testTimeout: 180_000,
    hookTimeout: 120_000,
    globalSetup: ['test/helpers/globalSetup.ts'],
    pool: 'forks',
    maxWorkers: 4,
    reporters: ['default'],
  },
});
