import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadRules, RulesError, type LoadedRules } from '../rules/load-rules.js';

/**
 * The edited copy of the rules the playground shows beside the live ones (PLAYGROUND_COMPARE_RULES_DIR). Loading rules
 * compiles their schemas, synchronously, for a tenth of a second or more; so the copy is loaded again only when its
 * content has changed (a hash of every file's name and bytes: a millisecond or two for the rules folder).
 */
export class RulesCopy {
  private loaded?: { fingerprint: string; rules: LoadedRules | { problems: string[] } };

  constructor(readonly dir: string) {}

  /** The copy's rules, or why they do not load (any error: a folder that is not rules, a broken schema, a file unread). */
  async rules(): Promise<LoadedRules | { problems: string[] }> {
    const fingerprint = await this.fingerprint();
    if (this.loaded?.fingerprint === fingerprint) return this.loaded.rules;
    let rules: LoadedRules | { problems: string[] };
    try {
      rules = await loadRules(this.dir);
    } catch (err) {
      rules = { problems: err instanceof RulesError ? err.problems : [(err as Error).message] };
    }
    this.loaded = { fingerprint, rules };
    return rules;
  }

  private async fingerprint(): Promise<string> {
    try {
      const hash = createHash('sha256');
      const files = (await readdir(this.dir, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath ?? e.path, e.name))
        .sort();
      for (const file of files) hash.update(`${file}\0`).update(await readFile(file)).update('\0');
      return hash.digest('hex');
    } catch (err) {
      // A missing folder: load it anyway, so the problem is reported as the loader words it.
      return `unreadable:${(err as Error).message}`;
    }
  }
}
