// Envoy's circuit_breakers thresholds for a TCP cluster: at most maxConnections upstream connections
// and maxRetries concurrent retries. When a limit is reached the breaker is open for that resource
// and new work fails fast instead of queueing.
import { type Lease, LeaseCounter } from "../sdk/lease-counter.js";

export interface CircuitBreakerThresholds {
  /** Default 1024, as Envoy. */
  maxConnections?: number;
  /** Default 3, as Envoy. */
  maxRetries?: number;
}

export class CircuitBreaker {
  private readonly connections: LeaseCounter;
  private readonly retries: LeaseCounter;

  constructor(thresholds: CircuitBreakerThresholds = {}) {
    this.connections = new LeaseCounter(thresholds.maxConnections ?? 1024);
    this.retries = new LeaseCounter(thresholds.maxRetries ?? 3);
  }

  update(thresholds: CircuitBreakerThresholds): void {
    this.connections.limit = thresholds.maxConnections ?? 1024;
    this.retries.limit = thresholds.maxRetries ?? 3;
  }

  /** A lease for one upstream connection, or undefined when the breaker is open. */
  tryConnection(): Lease | undefined {
    return this.connections.tryAcquire();
  }

  tryRetry(): Lease | undefined {
    return this.retries.tryAcquire();
  }

  /** Envoy's cx_open: the connection limit is reached. */
  get connectionsOpen(): boolean {
    return this.connections.active >= this.connections.limit;
  }

  get activeConnections(): number {
    return this.connections.active;
  }
}
