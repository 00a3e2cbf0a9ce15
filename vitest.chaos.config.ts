import { defineConfig } from 'vitest/config';

/** Fault tests on real processes (`npm run test:chaos`): one file at a time, generous bounds. */
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 300_000,
    hookTimeout: 180_000,
    teardownTimeout: 120_000,
    // every test starts a whole sandbox: keep them from fighting over the cores
    fileParallelism: false,
  },
});
