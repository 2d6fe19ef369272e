import { watch, type FSWatcher } from 'node:fs';
import type { FastifyBaseLogger } from 'fastify';
import { loadRules, RulesError, type LoadedRules } from './load-rules.js';

/**
 * The rules in force. Calls read `current` once at their start, so a reload never changes rules halfway through a call.
 * A reload that fails validation is refused: the last good rules stay.
 */
export class RulesRegistry {
  private listeners: Array<(rules: LoadedRules) => void> = [];

  constructor(public current: LoadedRules) {}

  get version(): string {
    return this.current.label;
  }

  onChange(listener: (rules: LoadedRules) => void): void {
    this.listeners.push(listener);
  }

  replace(rules: LoadedRules): void {
    this.current = rules;
    for (const l of this.listeners) l(rules);
  }
}

/**
 * Watches RULES_DIR: a change (edited, added or removed file) reloads the rules after a short quiet time. Valid rules are
 * live at once; invalid ones are refused with one log line per problem.
 */
export function watchRules(dir: string, registry: RulesRegistry, log: FastifyBaseLogger, quietMs = 250): () => void {
  let timer: NodeJS.Timeout | undefined;
  let loading = Promise.resolve();
  const reload = () => {
    loading = loading.then(async () => {
      try {
        const rules = await loadRules(dir);
        if (rules.hash === registry.current.hash) return;
        const before = registry.version;
        registry.replace(rules);
        log.info({ from: before, to: registry.version }, 'rules reloaded');
      } catch (err) {
        if (err instanceof RulesError) log.error({ problems: err.problems, kept: registry.version }, 'rules change refused: the last good rules stay live');
        else log.error({ err: { message: (err as Error).message }, kept: registry.version }, 'rules reload failed');
      }
    });
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { recursive: true }, () => {
      clearTimeout(timer);
      timer = setTimeout(reload, quietMs);
    });
  } catch (err) {
    log.warn({ err: { message: (err as Error).message } }, 'cannot watch the rules folder; changes need a restart');
  }
  return () => {
    clearTimeout(timer);
    watcher?.close();
  };
}
