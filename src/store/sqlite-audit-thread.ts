import { Worker } from 'node:worker_threads';
import { AuditRetryError } from './audit-retry-error.js';
import type { AuditRecord } from './audit-writer.js';

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
  /** The batches sent and not yet answered, for close() to wait on. */
  inflight: Set<Promise<void>>;
  /** Settles when the thread has ended, however it ended. */
  exited: Promise<void>;
}

/** After the thread fails, it is not started again for this long, so a thread that cannot start does not spin. */
export const RESTART_AFTER_MS = 1_000;

/**
 * The service's side of the SQLite audit thread (sqlite-audit-thread.mjs): batches go over, a promise settles when the
 * thread has committed them. The thread starts at the first batch and again after a failure; it holds the process open
 * only while a batch is on its way, and close() lets every batch sent finish before it ends the thread.
 */
export class SqliteAuditThread {
  private current?: Thread;
  private nextId = 0;
  private failedAt = -Infinity;
  private closed = false;

  constructor(
    private readonly file: string,
    private readonly busyTimeoutMs: number,
    private readonly maxPageCount?: number,
  ) {}

  write(batch: AuditRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('audit store closed'));
    const thread = this.start();
    if (!thread) return Promise.reject(new AuditRetryError('audit thread restarting'));
    const id = this.nextId++;
    const written = new Promise<void>((resolve, reject) => {
      if (thread.pending.size === 0) thread.worker.ref();
      thread.pending.set(id, { resolve, reject });
      try {
        thread.worker.postMessage({ id, batch });
      } catch (err) {
        thread.pending.delete(id);
        if (thread.pending.size === 0) thread.worker.unref();
        reject(err as Error);
      }
    });
    thread.inflight.add(written);
    const forget = () => thread.inflight.delete(written);
    written.then(forget, forget);
    return written;
  }

  /** Waits for the batches already sent, then closes the database and ends the thread. */
  async close(): Promise<void> {
    this.closed = true;
    const thread = this.current;
    this.current = undefined;
    if (!thread) return;
    await Promise.allSettled([...thread.inflight]);
    thread.worker.postMessage({ close: true });
    // Closing the database ends the thread; should it not, it is ended (every batch is committed by now).
    const stuck = setTimeout(() => void thread.worker.terminate(), 5_000);
    await thread.exited;
    clearTimeout(stuck);
  }

  private start(): Thread | undefined {
    if (this.current) return this.current;
    if (performance.now() - this.failedAt < RESTART_AFTER_MS) return undefined;
    const worker = new Worker(new URL('./sqlite-audit-thread.mjs', import.meta.url), { workerData: { file: this.file, busyTimeoutMs: this.busyTimeoutMs, maxPageCount: this.maxPageCount } });
    // Each thread settles its own batches: a thread that failed never touches its successor's.
    const pending = new Map<number, Pending>();
    const thread: Thread = { worker, pending, inflight: new Set(), exited: new Promise((resolve) => worker.once('exit', () => resolve())) };
    worker.on('message', (message: { id: number; error?: string; code?: string }) => {
      const waiting = pending.get(message.id);
      pending.delete(message.id);
      if (pending.size === 0) worker.unref();
      if (!waiting) return;
      if (message.error === undefined) waiting.resolve();
      // Another connection held the lock (SQLITE_BUSY and its extended codes, SQLITE_LOCKED): it passes.
      else if (message.code?.startsWith('SQLITE_BUSY') || message.code === 'SQLITE_LOCKED') waiting.reject(new AuditRetryError(message.error));
      // Any other failure keeps SQLite's code, so the store can tell a file it cannot write (full, read-only) from a bad batch.
      else waiting.reject(Object.assign(new Error(message.error), message.code ? { code: message.code } : {}));
    });
    const fail = (err: Error) => {
      if (this.current === thread) {
        this.current = undefined;
        this.failedAt = performance.now();
      }
      for (const waiting of pending.values()) waiting.reject(new AuditRetryError(err.message));
      pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`audit thread exited (${code})`)));
    // Listeners first: adding a 'message' listener refs the worker again. Idle, it must not keep the process alive.
    worker.unref();
    this.current = thread;
    return thread;
  }
}
