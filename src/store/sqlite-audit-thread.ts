import { Worker } from 'node:worker_threads';
import type { AuditRecord } from './audit-writer.js';

/**
 * The service's side of the SQLite audit thread (sqlite-audit-thread.mjs): batches go over, a promise settles when the
 * thread has committed them. The thread starts at the first batch, so a process that never audits never starts one,
 * and starts again after a crash.
 */
export class SqliteAuditThread {
  private worker?: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();

  constructor(private readonly file: string) {}

  write(batch: AuditRecord[]): Promise<void> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, batch });
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./sqlite-audit-thread.mjs', import.meta.url), { workerData: { file: this.file } });
    // An idle audit thread must not keep the process alive; close() ends it.
    worker.unref();
    worker.on('message', (message: { id: number; error?: string }) => {
      const waiting = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error === undefined) waiting?.resolve();
      else waiting?.reject(new Error(message.error));
    });
    const fail = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const waiting of this.pending.values()) waiting.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`audit thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }
}
