import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const madeDirs: string[] = [];

/** A fresh folder for one app's embedded store, so test files never share a database; removed after the test file. */
export function tempDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lbp-cds-test-'));
  madeDirs.push(dir);
  return dir;
}

/** Removes the folders tempDataDir made (test/setup.ts calls it after each test file, once its apps are closed). */
export function removeTempDataDirs(): void {
  for (const dir of madeDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
