// Exponential backoff with jitter, so a fleet of hosts does not reconnect in lockstep.
import { XDS_ERR, XdsError } from "../errors.js";

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  multiplier: number;
  /** 0.2 spreads each delay over ±20%. */
  jitter: number;
}

export function defaultBackoffOptions(): BackoffOptions {
  return { initialMs: 100, maxMs: 10_000, multiplier: 2, jitter: 0.2 };
}

export function checkBackoffOptions(o: BackoffOptions): void {
  if (!(o.initialMs > 0))
    throw new XdsError(XDS_ERR.invalidOption, `backoff.initialMs must be > 0, got ${o.initialMs}`);
  if (!(o.maxMs >= o.initialMs))
    throw new XdsError(XDS_ERR.invalidOption, `backoff.maxMs must be >= initialMs, got ${o.maxMs}`);
  if (!(o.multiplier >= 1))
    throw new XdsError(XDS_ERR.invalidOption, `backoff.multiplier must be >= 1, got ${o.multiplier}`);
  if (!(o.jitter >= 0 && o.jitter <= 1))
    throw new XdsError(XDS_ERR.invalidOption, `backoff.jitter must be in [0, 1], got ${o.jitter}`);
}

export class Backoff {
  readonly #o: BackoffOptions;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions, random: () => number = Math.random) {
    this.#o = options;
    this.#random = random;
  }

  /** Delay before the next attempt; each call grows the next one. */
  next(): number {
    const base = Math.min(this.#o.maxMs, this.#o.initialMs * this.#o.multiplier ** this.#attempt);
    this.#attempt++;
    const spread = 1 + this.#o.jitter * (2 * this.#random() - 1);
    return Math.round(Math.min(this.#o.maxMs, base * spread));
  }

  /** After a healthy connection: the next failure starts again from initialMs. */
  reset(): void {
    this.#attempt = 0;
  }
}
