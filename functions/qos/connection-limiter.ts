// Envoy's connection_limit filter: at most maxConnections open at once through a listener (or a chain,
// when shared); a refused connection is closed after `delayMs`, which slows down clients that retry
// in a tight loop.
import { type Lease, LeaseCounter } from "../sdk/lease-counter.js";

export interface ConnectionLimitOptions {
  maxConnections: number;
  /** Wait before closing a refused connection (Envoy's `delay`); 0 closes at once. */
  delayMs?: number;
}

export class ConnectionLimiter {
  private readonly counter: LeaseCounter;
  delayMs: number;

  constructor(options: ConnectionLimitOptions) {
    this.counter = new LeaseCounter(options.maxConnections);
    this.delayMs = options.delayMs ?? 0;
  }

  get active(): number {
    return this.counter.active;
  }

  get maxConnections(): number {
    return this.counter.limit;
  }

  /** Applies a new limit; connections already admitted stay. */
  update(options: ConnectionLimitOptions): void {
    this.counter.limit = options.maxConnections;
    this.delayMs = options.delayMs ?? 0;
  }

  /** A lease to release when the connection closes, or undefined when at the limit. */
  tryAdmit(): Lease | undefined {
    return this.counter.tryAcquire();
  }
}
