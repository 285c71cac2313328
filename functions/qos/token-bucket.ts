// A token bucket read lazily from a clock: no timers, O(1) per call. Two refill shapes:
//  - discrete, Envoy's local_ratelimit token_bucket: tokens_per_fill tokens every fill_interval;
//  - continuous, for byte rates: tokens accrue at tokensPerSecond (fractional tokens carry over).

import { type Clock, monotonicClock } from "../sdk/clock.js";
import { SDK_ERROR, SdkError } from "../sdk/errors.js";

export type TokenBucketOptions = {
  /** Most tokens the bucket holds: the burst. Envoy's max_tokens. */
  capacity: number;
  /** Tokens in the bucket at creation; default capacity (Envoy starts full). */
  initialTokens?: number;
  clock?: Clock;
} & (
  | { tokensPerSecond: number; tokensPerFill?: undefined; fillIntervalMs?: undefined }
  | { tokensPerSecond?: undefined; tokensPerFill: number; fillIntervalMs: number }
);

// Float accrual can leave a bucket a hair short of a whole token at the instant msUntil promised it.
const EPSILON = 1e-9;

export class TokenBucket {
  readonly capacity: number;
  private tokens: number;
  private last: number;
  private readonly clock: Clock;
  private readonly perMs: number;
  private readonly perFill: number;
  private readonly intervalMs: number;

  constructor(options: TokenBucketOptions) {
    const bad = (field: string, why: string) => new SdkError(SDK_ERROR.invalidArgument, `${field}: ${why}`);
    if (!(options.capacity > 0) || !Number.isFinite(options.capacity))
      throw bad("capacity", "must be a positive number");
    this.capacity = options.capacity;
    this.clock = options.clock ?? monotonicClock;
    this.last = this.clock();
    if (options.tokensPerSecond !== undefined) {
      if (!(options.tokensPerSecond > 0)) throw bad("tokensPerSecond", "must be positive");
      this.perMs = options.tokensPerSecond / 1000;
      this.perFill = 0;
      this.intervalMs = 0;
    } else {
      if (!(options.tokensPerFill > 0)) throw bad("tokensPerFill", "must be positive");
      if (!(options.fillIntervalMs > 0)) throw bad("fillIntervalMs", "must be positive");
      this.perMs = 0;
      this.perFill = options.tokensPerFill;
      this.intervalMs = options.fillIntervalMs;
    }
    const initial = options.initialTokens ?? options.capacity;
    if (!(initial >= 0)) throw bad("initialTokens", "must not be negative");
    this.tokens = Math.min(initial, options.capacity);
  }

  /** Tokens per second over the long run. */
  get rate(): number {
    return this.intervalMs > 0 ? (this.perFill * 1000) / this.intervalMs : this.perMs * 1000;
  }

  get available(): number {
    this.refill();
    return this.tokens;
  }

  /**
   * Takes n tokens and returns 0, or takes nothing and returns the milliseconds until n tokens will
   * be there (Infinity when n exceeds the capacity).
   */
  take(n = 1): number {
    this.refill();
    if (this.tokens + EPSILON >= n) {
      this.tokens = Math.max(0, this.tokens - n);
      return 0;
    }
    return this.waitFor(n);
  }

  /** Takes as many whole tokens as are there, up to max; returns how many. */
  takeUpTo(max: number): number {
    this.refill();
    const n = Math.min(max, Math.floor(this.tokens + EPSILON));
    if (n <= 0) return 0;
    this.tokens = Math.max(0, this.tokens - n);
    return n;
  }

  /** Gives back tokens taken but not used (never above capacity). */
  refund(n: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + n);
  }

  /** Milliseconds until n tokens are available; 0 when they are now. */
  msUntil(n: number): number {
    this.refill();
    return this.tokens + EPSILON >= n ? 0 : this.waitFor(n);
  }

  private waitFor(n: number): number {
    if (n > this.capacity) return Number.POSITIVE_INFINITY;
    const missing = n - this.tokens;
    if (this.intervalMs === 0) return missing / this.perMs;
    const fills = Math.ceil(missing / this.perFill);
    return fills * this.intervalMs - (this.clock() - this.last);
  }

  private refill(): void {
    const now = this.clock();
    const elapsed = now - this.last;
    if (elapsed <= 0) return;
    if (this.intervalMs === 0) {
      this.tokens = Math.min(this.capacity, this.tokens + elapsed * this.perMs);
      this.last = now;
      return;
    }
    const fills = Math.floor(elapsed / this.intervalMs);
    if (fills === 0) return;
    // Keep the phase: the next fill is due a whole interval after the last one, not after now.
    this.last += fills * this.intervalMs;
    this.tokens = Math.min(this.capacity, this.tokens + fills * this.perFill);
  }
}
