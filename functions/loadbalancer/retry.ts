// Connecting with retries on another endpoint (Envoy tcp_proxy max_connect_attempts with the
// previous-hosts retry predicate): each failed attempt adds its endpoint to the exclusion set the
// picker avoids, and every retry needs a slot from the retry budget and the circuit breaker.
import type { Lease } from "../sdk/lease-counter.js";
import { type Endpoint, endpointKey } from "./endpoint.js";

export interface RetryBudgetOptions {
  /** Retries may be at most this percent of active requests; default 20 (Envoy's budget_percent). */
  budgetPercent?: number;
  /** Retries always allowed regardless of the percentage; default 3 (min_retry_concurrency). */
  minRetryConcurrency?: number;
}

export class RetryBudget {
  private activeRequests = 0;
  private activeRetries = 0;

  constructor(private readonly options: RetryBudgetOptions = {}) {}

  /** Counts a request (a connection being set up) for the budget; release when it settles. */
  requestStarted(): Lease {
    this.activeRequests++;
    let held = true;
    return {
      release: () => {
        if (held) {
          held = false;
          this.activeRequests--;
        }
      },
    };
  }

  tryRetry(): Lease | undefined {
    const pct = this.options.budgetPercent ?? 20;
    const allowed = Math.max(this.options.minRetryConcurrency ?? 3, (pct / 100) * this.activeRequests);
    if (this.activeRetries >= allowed) return undefined;
    this.activeRetries++;
    let held = true;
    return {
      release: () => {
        if (held) {
          held = false;
          this.activeRetries--;
        }
      },
    };
  }
}

export interface AttemptOptions<T> {
  /** Total attempts including the first; Envoy's max_connect_attempts (default 1). */
  maxAttempts: number;
  pick: (ctx: { attempt: number; exclude: ReadonlySet<string> }) => Endpoint | undefined;
  attempt: (endpoint: Endpoint, attempt: number) => Promise<T>;
  budget?: RetryBudget;
  /** Checked for each retry after the budget, e.g. CircuitBreaker.tryRetry. */
  retryGate?: () => Lease | undefined;
  /** Each outcome, to feed outlier detection. */
  onResult?: (endpoint: Endpoint, ok: boolean) => void;
}

export type AttemptResult<T> =
  | { ok: true; endpoint: Endpoint; value: T; attempts: number }
  | {
      ok: false;
      reason: "no-endpoint" | "attempts-exhausted" | "retry-budget" | "circuit-open";
      failures: { endpoint: Endpoint; error: unknown }[];
    };

/** Tries endpoints until one attempt resolves; never throws (failures are in the result). */
export async function attemptEndpoints<T>(o: AttemptOptions<T>): Promise<AttemptResult<T>> {
  const exclude = new Set<string>();
  const failures: { endpoint: Endpoint; error: unknown }[] = [];
  const request = o.budget?.requestStarted();
  try {
    for (let attempt = 0; attempt < Math.max(1, o.maxAttempts); attempt++) {
      const leases: Lease[] = [];
      if (attempt > 0) {
        const b = o.budget?.tryRetry();
        if (o.budget && !b) return { ok: false, reason: "retry-budget", failures };
        if (b) leases.push(b);
        const g = o.retryGate?.();
        if (o.retryGate && !g) {
          for (const l of leases) l.release();
          return { ok: false, reason: "circuit-open", failures };
        }
        if (g) leases.push(g);
      }
      try {
        const endpoint = o.pick({ attempt, exclude });
        if (!endpoint) return { ok: false, reason: "no-endpoint", failures };
        try {
          const value = await o.attempt(endpoint, attempt);
          o.onResult?.(endpoint, true);
          return { ok: true, endpoint, value, attempts: attempt + 1 };
        } catch (error) {
          o.onResult?.(endpoint, false);
          failures.push({ endpoint, error });
          exclude.add(endpointKey(endpoint));
        }
      } finally {
        for (const l of leases) l.release();
      }
    }
    return { ok: false, reason: "attempts-exhausted", failures };
  } finally {
    request?.release();
  }
}
