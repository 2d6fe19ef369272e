import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AUDIT_CALL_COLUMNS, AUDIT_CARD_COLUMNS } from '../../src/store/audit-columns.mjs';
import { AuditWriter, type AuditRecord } from '../../src/store/audit-writer.js';
import { openStore, type Store } from '../../src/store/database.js';
import { tempDataDir } from '../support/app.js';

/** The SQLite audit thread: what it writes, how it waits for locks, and how it ends. */
const FILE = 'lbp-imaging-cds.sqlite';
const opened: Store[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});
async function sqliteStore(dataDir = tempDataDir(), busyMs?: number): Promise<Store> {
  const store = await openStore({ dataDir, ...(busyMs !== undefined ? { sqliteBusyTimeoutMs: busyMs } : {}) });
  opened.push(store);
  return store;
}

let n = 0;
function record(): AuditRecord {
  const instance = `hook-${process.pid}-${n++}`;
  const at = new Date().toISOString();
  return {
    call: { hook_instance: instance, service: 's', at, rules_version: '1+x', duration_ms: 1, patient_hash: 'p', user_hash: 'u', orders: 1 },
    cards: [{ card_uuid: `${instance}-card`, hook_instance: instance, service: 's', at, day: at.slice(0, 10), recommendation: 'r', order_ref: 'o', red_flags: '{}', fired_rules: '[]', suggestions: '[]', rules_version: '1+x' }],
  };
}
const count = async (store: Store) => (await store.db.selectFrom('audit_card').select('card_uuid').execute()).length;

describe('SQLite audit thread', () => {
  it('writes every column the audit tables have', async () => {
    const dir = tempDataDir();
    await sqliteStore(dir);
    const db = new BetterSqlite3(join(dir, FILE), { readonly: true });
    const columns = (table: string) => (db.pragma(`table_info(${table})`) as Array<{ name: string }>).map((c) => c.name).sort();
    expect([...AUDIT_CALL_COLUMNS].sort()).toEqual(columns('audit_hook_call'));
    expect([...AUDIT_CARD_COLUMNS].sort()).toEqual(columns('audit_card'));
    db.close();
  });

  it('lets every batch already sent finish before close() ends the thread, and refuses batches after', async () => {
    const dir = tempDataDir();
    const store = await openStore({ dataDir: dir });
    const writes = Array.from({ length: 5 }, () => store.writeAudit([record(), record()]));
    await store.close();
    // Every write sent before close() resolved (a rejection would fail here).
    await Promise.all(writes);
    await expect(store.writeAudit([record()])).rejects.toThrow(/closed/);
    expect(await count(await sqliteStore(dir))).toBe(10);
  });

  it('retries a batch that met another connection holding the lock, without dropping it', async () => {
    const dir = tempDataDir();
    const store = await sqliteStore(dir, 100);
    const writer = new AuditWriter(store, pino({ level: 'silent' }));
    const holder = new BetterSqlite3(join(dir, FILE));
    holder.prepare('begin immediate').run();
    writer.enqueue(record());
    await writer.flush();
    expect(writer.dropped).toBe(0);
    expect(await count(store)).toBe(0);
    holder.prepare('rollback').run();
    holder.close();
    await writer.close();
    expect(writer.dropped).toBe(0);
    expect(await count(store)).toBe(1);
  });

  it('does not keep a process alive once its writes are done', () => {
    const dir = tempDataDir();
    const script = `
      import { openStore } from ${JSON.stringify(new URL('../../src/store/database.ts', import.meta.url).pathname)};
      const store = await openStore({ dataDir: ${JSON.stringify(dir)} });
      await store.writeAudit([${JSON.stringify(record())}]);
      process.stdout.write('written');
    `;
    const file = join(dir, 'write-once.mjs');
    writeFileSync(file, script);
    const child = spawnSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', timeout: 20_000 });
    expect(child.stdout).toBe('written');
    // Not killed by the timeout: the process ended by itself.
    expect(child.signal).toBeNull();
    expect(child.status).toBe(0);
  });
});
