// Byte-rate shaping for relayed connections: a Throttle over token buckets that a Pump consults
// before each write. One bucket per direction may be shared by every connection of a chain, and one
// per connection may cap each connection on top; a grant needs budget in all of them.
import type { Duplex } from "node:stream";
import type { Clock } from "../sdk/clock.js";
import { Pump, type Throttle } from "../sdk/pump.js";
import { TokenBucket } from "./token-bucket.js";

export interface ByteRate {
  bytesPerSecond: number;
  /** Bytes that may pass at once after a quiet period; default one second's worth. */
  burstBytes?: number;
}

/** Largest single grant, so connections sharing a bucket interleave instead of one taking the burst. */
const QUANTUM = 64 * 1024;

/**
 * A token bucket and the number of throttles waiting on it. Waiters split what has accrued: without
 * that, whichever connection's timer fires first takes everything, and timers that keep firing in
 * the same order starve the others.
 */
export class ByteBudget {
  waiting = 0;
  constructor(readonly bucket: TokenBucket) {}
}

export function byteBudget(rate: ByteRate, clock?: Clock): ByteBudget {
  return new ByteBudget(
    new TokenBucket({
      capacity: Math.max(1, rate.burstBytes ?? rate.bytesPerSecond),
      tokensPerSecond: rate.bytesPerSecond,
      clock,
    }),
  );
}

export class BucketThrottle implements Throttle {
  private readonly target: number;
  private waiting = false;

  constructor(private readonly budgets: readonly ByteBudget[]) {
    // Wake for about 20 ms worth of the slowest rate: small enough to keep the flow smooth, large
    // enough that a slow rate does not mean a timer per byte. Never wait for a full bucket: a timer
    // that fires late would find it full and the rate lost meanwhile would not come back.
    let rate = Number.POSITIVE_INFINITY;
    let cap = QUANTUM;
    for (const b of budgets) {
      rate = Math.min(rate, b.bucket.rate);
      cap = Math.min(cap, Math.floor(b.bucket.capacity / 2));
    }
    this.target = Math.max(1, Math.min(cap, Math.floor(rate / 50)));
  }

  grant(want: number): number {
    let n = Math.min(want, QUANTUM);
    for (const b of this.budgets) {
      const sharers = Math.max(1, b.waiting + (this.waiting ? 0 : 1));
      n = Math.min(n, Math.floor((b.bucket.available + 1e-9) / sharers));
    }
    if (n > 0) for (const b of this.budgets) b.bucket.takeUpTo(n);
    this.setWaiting(n < want);
    return Math.max(0, n);
  }

  waitMs(want: number): number {
    const n = Math.min(want, this.target);
    let wait = 0;
    for (const b of this.budgets) {
      const need = Math.max(1, Math.min(Math.floor(b.bucket.capacity / 2), n * Math.max(1, b.waiting)));
      wait = Math.max(wait, b.bucket.msUntil(need));
    }
    return wait;
  }

  release(): void {
    this.setWaiting(false);
  }

  private setWaiting(w: boolean): void {
    if (w === this.waiting) return;
    this.waiting = w;
    for (const b of this.budgets) b.waiting += w ? 1 : -1;
  }
}

export interface ByteShaperOptions {
  /** Shared by every connection shaped by this shaper (a chain's aggregate), each direction. */
  shared?: ByteRate;
  /** A separate budget for each connection, each direction. */
  perConnection?: ByteRate;
  clock?: Clock;
}

export interface ShapedPair {
  /** Bytes moved a → b and b → a. */
  readonly aToB: Pump;
  readonly bToA: Pump;
  /** Detaches both pumps; the sockets are left to their owner. */
  stop(): void;
}

export class ByteShaper {
  private readonly sharedUp: ByteBudget | undefined;
  private readonly sharedDown: ByteBudget | undefined;

  constructor(private readonly options: ByteShaperOptions) {
    this.sharedUp = options.shared && byteBudget(options.shared, options.clock);
    this.sharedDown = options.shared && byteBudget(options.shared, options.clock);
  }

  /** Throttles for one connection's two directions, or undefined where nothing limits. */
  throttles(): { up: Throttle | undefined; down: Throttle | undefined } {
    const per = this.options.perConnection;
    const up = [this.sharedUp, per && byteBudget(per, this.options.clock)].filter(
      (b): b is ByteBudget => !!b,
    );
    const down = [this.sharedDown, per && byteBudget(per, this.options.clock)].filter(
      (b): b is ByteBudget => !!b,
    );
    return {
      up: up.length > 0 ? new BucketThrottle(up) : undefined,
      down: down.length > 0 ? new BucketThrottle(down) : undefined,
    };
  }

  /**
   * Relays a (the client side) and b (the upstream) both ways under this shaper's rates, pausing the
   * sending socket while its budget or the receiver's buffer is exhausted. Ends propagate as half-closes.
   */
  shape(a: Duplex, b: Duplex): ShapedPair {
    const t = this.throttles();
    return shapeDuplexPair(a, b, t.up, t.down);
  }
}

export function shapeDuplexPair(a: Duplex, b: Duplex, aToB?: Throttle, bToA?: Throttle): ShapedPair {
  const up = new Pump(a, b, { throttle: aToB });
  const down = new Pump(b, a, { throttle: bToA });
  return {
    aToB: up,
    bToA: down,
    stop: () => {
      up.stop();
      down.stop();
    },
  };
}
