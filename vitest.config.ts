import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    setupFiles: ['test/setup.ts'],
    // The bad-input suite checks that memory stays flat; it needs to collect garbage before it measures.
    execArgv: ['--expose-gc'],
    testTimeout: 20_000,
  },
});
