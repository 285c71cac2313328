// Passive outlier detection for TCP (Envoy's consecutive local-origin failures): an endpoint whose
// connects fail consecutiveFailures times in a row is ejected from balancing for a while, unless
// that would put more than maxEjectionPercent of the endpoints out (one ejection is always allowed).
//
// Ejection time grows with the endpoint's ejection count: base * 2^(n-1) by default ("exponential"),
// or base * n as Envoy does ("linear"), capped at maxEjectionMs. The count decays by one for every
// base period the endpoint then stays in, so a host that recovered is not punished forever.
import { type Clock, monotonicClock } from "../sdk/clock.js";

export interface OutlierDetectionOptions {
  /** Default 5 (Envoy's consecutive_local_origin_failure). */
  consecutiveFailures?: number;
  /** Default 30 s (Envoy's base_ejection_time). */
  baseEjectionMs?: number;
  /** Default 300 s (Envoy's max_ejection_time). */
  maxEjectionMs?: number;
  /** Default 10 (Envoy's max_ejection_percent). */
  maxEjectionPercent?: number;
  backoff?: "exponential" | "linear";
  clock?: Clock;
  onTransition?: (key: string, ejected: boolean) => void;
}

interface Monitor {
  failures: number;
  ejections: number;
  ejectedUntil: number;
  lastReturn: number;
  timer: NodeJS.Timeout | undefined;
}

export class OutlierDetector {
  private readonly monitors = new Map<string, Monitor>();
  private ejectedCount = 0;
  private readonly clock: Clock;
  private readonly threshold: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly maxPercent: number;

  constructor(private readonly options: OutlierDetectionOptions = {}) {
    this.clock = options.clock ?? monotonicClock;
    this.threshold = options.consecutiveFailures ?? 5;
    this.baseMs = options.baseEjectionMs ?? 30_000;
    this.maxMs = options.maxEjectionMs ?? 300_000;
    this.maxPercent = options.maxEjectionPercent ?? 10;
  }

  /** The endpoints to watch; ejection state of the ones still listed is kept. */
  setEndpoints(keys: Iterable<string>): void {
    const keep = new Set(keys);
    for (const k of keep) {
      if (!this.monitors.has(k)) {
        this.monitors.set(k, { failures: 0, ejections: 0, ejectedUntil: 0, lastReturn: 0, timer: undefined });
      }
    }
    for (const [k, m] of this.monitors) {
      if (keep.has(k)) continue;
      if (m.timer) clearTimeout(m.timer);
      if (m.ejectedUntil > 0) this.ejectedCount--;
      this.monitors.delete(k);
    }
  }

  isEjected(key: string): boolean {
    return (this.monitors.get(key)?.ejectedUntil ?? 0) > 0;
  }

  get ejected(): number {
    return this.ejectedCount;
  }

  reportSuccess(key: string): void {
    const m = this.monitors.get(key);
    if (m) m.failures = 0;
  }

  reportFailure(key: string): void {
    const m = this.monitors.get(key);
    if (!m || m.ejectedUntil > 0) return;
    m.failures++;
    if (m.failures < this.threshold) return;
    // Over the cap the failures keep counting: the next one ejects once there is room.
    if (this.ejectedCount > 0 && (100 * (this.ejectedCount + 1)) / this.monitors.size > this.maxPercent)
      return;
    this.eject(key, m);
  }

  /** Cancels every pending return; nothing is reported afterwards. Idempotent. */
  close(): void {
    for (const m of this.monitors.values()) if (m.timer) clearTimeout(m.timer);
    this.monitors.clear();
    this.ejectedCount = 0;
  }

  private eject(key: string, m: Monitor): void {
    const now = this.clock();
    if (m.ejections > 0 && m.lastReturn > 0) {
      m.ejections = Math.max(0, m.ejections - Math.floor((now - m.lastReturn) / this.baseMs));
    }
    m.ejections++;
    const factor = this.options.backoff === "linear" ? m.ejections : 2 ** (m.ejections - 1);
    const duration = Math.min(this.maxMs, this.baseMs * factor);
    m.ejectedUntil = now + duration;
    m.failures = 0;
    this.ejectedCount++;
    m.timer = setTimeout(() => this.restore(key, m), duration);
    m.timer.unref?.();
    this.options.onTransition?.(key, true);
  }

  private restore(key: string, m: Monitor): void {
    m.timer = undefined;
    if (this.monitors.get(key) !== m || m.ejectedUntil === 0) return;
    m.ejectedUntil = 0;
    m.lastReturn = this.clock();
    this.ejectedCount--;
    this.options.onTransition?.(key, false);
  }
}
