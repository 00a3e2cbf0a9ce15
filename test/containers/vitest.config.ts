import { defineConfig } from 'vitest/config';

// Real servers in containers (testcontainers 11.x): run through `npm run test:containers`,
// which skips with one line when no Docker engine is reachable.
export default defineConfig({
  test: {
    include: ['test/containers/**/*.containers.ts'],
    testTimeout: 180_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});
