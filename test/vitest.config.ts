import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/**/*.test.ts'],
    // Native suites share one addon and the machine's two cores: one forked worker at a time.
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 60_000,
  },
});
