import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/**/*.test.ts'],
    // Native suites share one addon and the machine's two cores: one forked worker at a time.
    pool: 'forks',
    maxWorkers: 1,
    // A hang limit, not a speed target: on a 2-core machine shared with other work (load 20 was seen)
    // tests run ten times slower than alone, and a 60 s limit failed tests that were merely slow.
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
