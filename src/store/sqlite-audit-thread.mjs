// @ts-check
/**
 * The SQLite audit writer's thread. better-sqlite3 is synchronous: a batch of inserts and its fsync would stop the event
 * loop, and every hook call queued behind it, for milliseconds. Here they stop only this thread. Plain JavaScript so the
 * same file runs from src/ (tests) and dist/ (service) without a TypeScript loader.
 *
 * In: { id, batch: AuditRecord[] }. Out: { id } once committed, or { id, error } with the message (never the content).
 */
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';

if (!parentPort) throw new Error('sqlite-audit-thread runs as a worker thread');
const port = parentPort;

const database = new BetterSqlite3(workerData.file);
// The same settings as the service's own connection (store/database.ts): a commit survives a crash.
database.pragma('journal_mode = WAL');
database.pragma('synchronous = FULL');
database.pragma('busy_timeout = 5000');

const CALL_COLUMNS = ['hook_instance', 'service', 'at', 'rules_version', 'duration_ms', 'patient_hash', 'user_hash', 'orders'];
const CARD_COLUMNS = ['card_uuid', 'hook_instance', 'service', 'at', 'day', 'recommendation', 'order_ref', 'red_flags', 'fired_rules', 'suggestions', 'rules_version'];
/** @param {string} table @param {string[]} columns */
const insert = (table, columns) =>
  database.prepare(`insert into ${table} (${columns.join(', ')}) values (${columns.map((c) => `@${c}`).join(', ')}) on conflict do nothing`);
const insertCall = insert('audit_hook_call', CALL_COLUMNS);
const insertCard = insert('audit_card', CARD_COLUMNS);

const writeBatch = database.transaction((/** @type {Array<{ call: object, cards: object[] }>} */ batch) => {
  for (const record of batch) {
    insertCall.run(record.call);
    for (const card of record.cards) insertCard.run(card);
  }
});

port.on('message', (/** @type {{ id: number, batch: Array<{ call: object, cards: object[] }> }} */ message) => {
  try {
    writeBatch(message.batch);
    port.postMessage({ id: message.id });
  } catch (err) {
    port.postMessage({ id: message.id, error: err instanceof Error ? err.message : String(err) });
  }
});
