/**
 * What a store's writeAudit rejects with when the failure passes (a lock held too long, a writer thread restarting): the
 * audit writer queues the batch again instead of dropping it. Any other error drops the batch, counted and logged.
 */
export class AuditRetryError extends Error {}
