import { afterAll } from 'vitest';
import fc from 'fast-check';
import { removeTempDataDirs } from './support/temp-dirs.js';

/**
 * Property tests run from a fixed seed so CI is repeatable; FC_SEED=random explores new cases
 * (a failure prints its seed, to replay with FC_SEED=<seed>).
 */
const seed = process.env.FC_SEED === 'random' ? Date.now() : Number(process.env.FC_SEED ?? 20_261_129);
fc.configureGlobal({ seed });

// Registered first, so it runs after each test file's own afterAll hooks (which close the apps using the folders).
afterAll(() => removeTempDataDirs());
