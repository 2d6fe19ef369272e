import type { FastifyBaseLogger } from 'fastify';
import type { Store } from './database.js';
import { AuditRetryError } from './audit-retry-error.js';
import { RESTART_AFTER_MS } from './sqlite-audit-thread.js';
import { errSummary } from './supervisor.js';
import type { AuditCardTable, AuditHookCallTable } from './schema.js';

export interface AuditRecord {
  call: AuditHookCallTable;
  cards: AuditCardTable[];
}


/** At shutdown, batches that must be retried get this long: past a restart of the audit thread, and a little more. */
const CLOSE_RETRY_MS = RESTART_AFTER_MS + 1_000;
/** Retries in a row after which the log says error, not warn: the store is not coming back by itself. */
const RETRIES_BEFORE_ERROR = 20;

export interface AuditWriterOptions {
  /** Records held while the store is slow or down; past it, new ones are dropped and counted. */
  maxQueue: number;
  batch: number;
  intervalMs: number;
}

export const AUDIT_DEFAULTS: AuditWriterOptions = { maxQueue: 10_000, batch: 200, intervalMs: 250 };

/**
 * Writes audit records off the hook call's path: calls enqueue and return at once; a timer writes batches. The queue is
 * bounded (a store that is down must not eat the memory); what does not fit is dropped and counted. While the store is
 * not up nothing is tried: the records wait (within the bound) and go out once it is back. close() writes the rest.
 */
export class AuditWriter {
  private queue: AuditRecord[] = [];
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private closing = false;
  private retriesInARow = 0;
  private unhashableLogged = false;
  private readonly options: AuditWriterOptions;
  dropped = 0;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Store,
    private readonly log: FastifyBaseLogger,
    options: Partial<AuditWriterOptions> = {},
  ) {
    this.options = { ...AUDIT_DEFAULTS, ...options };
    // Back up: what waited goes out now, not at the next record.
    this.unsubscribe = store.onStateChange((state) => {
      if (state === 'up' && this.queue.length > 0 && !this.closing) this.timer ??= setTimeout(() => void this.flush(), 0);
    });
  }

  /** Records waiting to be written. */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * A call whose record could not be made: the store has been unreachable since start, so the secret that hashes
   * identities is not known yet. Raw ids are never queued; the record is dropped and counted.
   */
  dropUnhashable(): void {
    this.dropped++;
    if (this.unhashableLogged) return;
    this.unhashableLogged = true;
    this.log.warn({}, 'audit records dropped until the store is reachable: the hash secret is not known yet');
  }

  enqueue(record: AuditRecord): void {
    if (this.queue.length >= this.options.maxQueue) {
      this.dropped++;
      return;
    }
    this.queue.push(record);
    if (this.queue.length >= this.options.batch) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.options.intervalMs);
  }

  /** Writes everything queued now; resolves when it is committed. */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.flushing) await this.flushing;
    if (this.queue.length === 0) return;
    if (this.store.state !== 'up') {
      // The store is coming back by itself; the records wait, and a timer looks again.
      if (!this.closing) this.timer ??= setTimeout(() => void this.flush(), this.options.intervalMs);
      return;
    }
    const batch = this.queue.splice(0, this.queue.length);
    this.flushing = this.write(batch).finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  private async write(batch: AuditRecord[]): Promise<void> {
    try {
      await this.store.writeAudit(batch);
      this.retriesInARow = 0;
    } catch (err) {
      if (err instanceof AuditRetryError) {
        // A lock held too long or the thread restarting: the batch goes back to the front, as far as the bound allows.
        const room = Math.max(0, this.options.maxQueue - this.queue.length);
        this.dropped += Math.max(0, batch.length - room);
        this.queue.unshift(...batch.slice(0, room));
        if (!this.closing) this.timer ??= setTimeout(() => void this.flush(), this.options.intervalMs);
        // The store going down says so itself; only the other retries are this writer's to log.
        if (this.store.state !== 'up') return;
        const level = ++this.retriesInARow >= RETRIES_BEFORE_ERROR ? 'error' : 'warn';
        this.log[level]({ err: { message: err.message }, records: batch.length, retriesInARow: this.retriesInARow }, 'audit write will be retried');
        return;
      }
      // Audit must never take the service down; the loss is logged with its size, never its content.
      this.dropped += batch.length;
      this.log.error({ err: errSummary(err), records: batch.length }, 'audit write failed');
    }
  }

  /** Writes the rest; a batch that must be retried gets a few more tries, then what is left is dropped and counted. */
  async close(): Promise<void> {
    this.closing = true;
    this.unsubscribe();
    await this.flush();
    const giveUpAt = performance.now() + CLOSE_RETRY_MS;
    while (this.queue.length > 0 && performance.now() < giveUpAt) {
      await new Promise((r) => setTimeout(r, this.options.intervalMs));
      await this.flush();
    }
    if (this.queue.length > 0) {
      this.dropped += this.queue.length;
      this.log.error({ records: this.queue.length }, 'audit records dropped at shutdown');
      this.queue = [];
    }
  }
}
