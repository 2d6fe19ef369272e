// @ts-check
/**
 * The SQLite audit writer's thread. better-sqlite3 is synchronous: a batch of inserts and its fsync would stop the event
 * loop, and every hook call queued behind it, for milliseconds. Here they stop only this thread. Plain JavaScript so the
 * same file runs from src/ (tests) and dist/ (service) without a TypeScript loader.
 *
 * In: { id, batch: AuditRecord[] }. Out: { id } once committed, or { id, error, code } with the message and SQLite's
 * code (never the content). In: { close: true } closes the database; the thread then ends.
 */
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { AUDIT_CALL_COLUMNS, AUDIT_CARD_COLUMNS } from './audit-columns.mjs';

if (!parentPort) throw new Error('sqlite-audit-thread runs as a worker thread');
const port = parentPort;

const database = new BetterSqlite3(workerData.file);
// The same settings as the service's own connection (store/database.ts): a commit survives a crash.
database.pragma('journal_mode = WAL');
database.pragma('synchronous = FULL');
database.pragma(`busy_timeout = ${Number(workerData.busyTimeoutMs)}`);
if (workerData.maxPageCount) database.pragma(`max_page_count = ${Math.floor(Number(workerData.maxPageCount))}`);

/** @param {string} table @param {string[]} columns */
const insert = (table, columns) =>
  database.prepare(`insert into ${table} (${columns.join(', ')}) values (${columns.map((c) => `@${c}`).join(', ')}) on conflict do nothing`);
const insertCall = insert('audit_hook_call', AUDIT_CALL_COLUMNS);
const insertCard = insert('audit_card', AUDIT_CARD_COLUMNS);

const writeBatch = database.transaction((/** @type {Array<{ call: object, cards: object[] }>} */ batch) => {
  for (const record of batch) {
    insertCall.run(record.call);
    for (const card of record.cards) insertCard.run(card);
  }
});

port.on('message', (/** @type {{ id: number, batch: Array<{ call: object, cards: object[] }> } | { close: true }} */ message) => {
  if ('close' in message) {
    database.close();
    port.close();
    return;
  }
  try {
    writeBatch(message.batch);
    port.postMessage({ id: message.id });
  } catch (err) {
    const code = /** @type {{ code?: unknown }} */ (err).code;
    port.postMessage({ id: message.id, error: err instanceof Error ? err.message : String(err), code: typeof code === 'string' ? code : undefined });
  }
});
