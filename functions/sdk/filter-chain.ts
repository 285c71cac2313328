// A listener's filters composed into one step (STYLE: interceptors; placement fused is just a longer
// chain). Filters run in order: the first deny ends the chain, an accept may carry a hash key for the
// upstream pick. Synchronous verdicts stay synchronous (no promise per connection); a filter that
// returns a promise suspends the chain until it settles. A filter that throws denies the connection
// and hurts nothing else.
import type { Logger } from "../../xds/logger.js";
import {
  ACCEPT,
  type Accept,
  type Connection,
  type ConnectionStats,
  type Deny,
  type NetworkFilter,
  type Verdict,
} from "./define-function.js";
import type { Throttle } from "./pump.js";

export interface ActiveFilter {
  readonly filter: NetworkFilter;
  /** The function that made it (its plugin's name). */
  readonly function: string;
  readonly name: string;
}

/** verdict; how many filters (from the first) accepted, and so get onClose. */
export type DecideCallback = (verdict: Verdict, accepted: number) => void;

const FILTER_ERROR: Deny = Object.freeze({ allow: false, reason: "filter_error" });

function isPromise(v: Verdict | Promise<Verdict>): v is Promise<Verdict> {
  return typeof (v as Promise<Verdict>).then === "function";
}

export class FilterChain {
  readonly #filters: readonly ActiveFilter[];
  readonly #log: Logger;
  readonly #wrapping: boolean;
  #closed = false;

  constructor(filters: readonly ActiveFilter[], log: Logger) {
    this.#filters = filters;
    this.#log = log;
    this.#wrapping = filters.some((f) => typeof f.filter.wrapStreams === "function");
  }

  get length(): number {
    return this.#filters.length;
  }

  /** Which filter (by position) a chain's verdict came from is `accepted` for a deny. */
  filterAt(i: number): ActiveFilter | undefined {
    return this.#filters[i];
  }

  /** Runs the chain; cb is called exactly once, synchronously unless a filter returned a promise. */
  decide(conn: Connection, cb: DecideCallback): void {
    this.#run(conn, 0, undefined, cb);
  }

  #run(conn: Connection, from: number, hashKey: string | undefined, cb: DecideCallback): void {
    const fs = this.#filters;
    for (let i = from; i < fs.length; i++) {
      const f = fs[i] as ActiveFilter;
      let v: Verdict | Promise<Verdict>;
      try {
        v = f.filter.onConnection(conn);
      } catch (err) {
        this.#filterThrew(f, err);
        v = FILTER_ERROR;
      }
      if (isPromise(v)) {
        v.then(
          (r) => this.#resume(conn, i, r, hashKey, cb),
          (err: unknown) => {
            this.#filterThrew(f, err);
            cb(FILTER_ERROR, i);
          },
        );
        return;
      }
      if (!v.allow) {
        cb(v, i);
        return;
      }
      if (v.hashKey !== undefined) hashKey = v.hashKey;
    }
    cb(hashKey === undefined ? ACCEPT : ({ allow: true, hashKey } satisfies Accept), fs.length);
  }

  #resume(conn: Connection, i: number, v: Verdict, hashKey: string | undefined, cb: DecideCallback): void {
    if (!v || typeof v !== "object" || v.allow !== true) {
      cb(v && typeof v === "object" && v.allow === false ? v : FILTER_ERROR, i);
      return;
    }
    this.#run(conn, i + 1, v.hashKey ?? hashKey, cb);
  }

  /** Throttles for an accepted connection: each direction's, combined when several filters shape. */
  wrap(conn: Connection): { up: Throttle | undefined; down: Throttle | undefined } {
    if (!this.#wrapping) return NO_THROTTLES;
    let up: Throttle | undefined;
    let down: Throttle | undefined;
    for (const f of this.#filters) {
      if (!f.filter.wrapStreams) continue;
      let w: ReturnType<NonNullable<NetworkFilter["wrapStreams"]>>;
      try {
        w = f.filter.wrapStreams(conn);
      } catch (err) {
        this.#filterThrew(f, err);
        continue;
      }
      if (!w) continue;
      if (w.up) up = up ? new BothThrottle(up, w.up) : w.up;
      if (w.down) down = down ? new BothThrottle(down, w.down) : w.down;
    }
    return up || down ? { up, down } : NO_THROTTLES;
  }

  /** Tells the first `accepted` filters the connection ended. */
  closed(conn: Connection, accepted: number, stats: ConnectionStats): void {
    const fs = this.#filters;
    for (let i = 0; i < accepted && i < fs.length; i++) {
      const f = fs[i] as ActiveFilter;
      if (!f.filter.onClose) continue;
      try {
        f.filter.onClose(conn, stats);
      } catch (err) {
        this.#filterThrew(f, err);
      }
    }
  }

  /** Closes every filter (config replaced or listener gone). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const f of this.#filters) {
      try {
        f.filter.close?.();
      } catch (err) {
        this.#filterThrew(f, err);
      }
    }
  }

  #filterThrew(f: ActiveFilter, err: unknown): void {
    this.#log.error("filter threw", { function: f.function, filter: f.name, error: String(err) });
  }
}

const NO_THROTTLES = Object.freeze({ up: undefined, down: undefined });

/**
 * Two throttles that must both grant. The second sees what the first granted; budget the first gave
 * and the second refused is lost, so stacking two shapers errs on the slow side.
 */
export class BothThrottle implements Throttle {
  constructor(
    private readonly a: Throttle,
    private readonly b: Throttle,
  ) {}

  grant(want: number): number {
    const n = this.a.grant(want);
    return n > 0 ? this.b.grant(n) : 0;
  }

  waitMs(want: number): number {
    return Math.max(this.a.waitMs(want), this.b.waitMs(want));
  }

  release(): void {
    this.a.release?.();
    this.b.release?.();
  }
}
