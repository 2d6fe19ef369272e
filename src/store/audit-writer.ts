import type { FastifyBaseLogger } from 'fastify';
import type { Store } from './database.js';
import type { AuditCardTable, AuditHookCallTable } from './schema.js';

export interface AuditRecord {
  call: AuditHookCallTable;
  cards: AuditCardTable[];
}

/**
 * Writes audit records off the hook call's path: calls enqueue and return at once; a timer writes batches. The queue is
 * bounded (a store that is down must not eat the memory); what does not fit is dropped and counted. close() writes the rest.
 */
export class AuditWriter {
  private queue: AuditRecord[] = [];
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  dropped = 0;

  constructor(
    private readonly store: Store,
    private readonly log: FastifyBaseLogger,
    private readonly options = { maxQueue: 10_000, batch: 200, intervalMs: 250 },
  ) {}

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
    const batch = this.queue.splice(0, this.queue.length);
    this.flushing = this.write(batch).finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  private async write(batch: AuditRecord[]): Promise<void> {
    try {
      await this.store.writeAudit(batch);
    } catch (err) {
      // Audit must never take the service down; the loss is logged with its size, never its content.
      this.dropped += batch.length;
      this.log.error({ err: { message: (err as Error).message }, records: batch.length }, 'audit write failed');
    }
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
