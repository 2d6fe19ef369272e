import { afterAll, beforeAll } from 'vitest';

/**
 * Collects unhandled rejections and uncaught exceptions while a test file runs: a store outage, a cut socket or a
 * hostile answer must never produce one. Call at the top of a test file; assert `failures` is empty where it matters.
 */
export function watchProcessFailures(): { failures: string[] } {
  const failures: string[] = [];
  const onUnhandled = (err: unknown) => failures.push(`unhandledRejection: ${(err as Error)?.message ?? String(err)}`);
  const onUncaught = (err: Error) => failures.push(`uncaughtException: ${err.message}`);
  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUncaught);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUncaught);
  });
  return { failures };
}
