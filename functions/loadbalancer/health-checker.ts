// Active health checking (Envoy's health_checks with a TCP check): each endpoint is probed every
// interval (plus jitter) after the previous probe finished; a probe that does not succeed within the
// timeout fails. healthyThreshold successes in a row mark an endpoint healthy, unhealthyThreshold
// failures unhealthy; the first verdict for a new endpoint needs a single probe (Envoy's startup
// rule). Transitions are reported through onTransition; nothing is logged per probe.
import { connect, isIP } from "node:net";
import { SDK_ERROR, SdkError } from "../sdk/errors.js";
import { type Endpoint, endpointKey } from "./endpoint.js";

export type HealthState = "unknown" | "healthy" | "unhealthy";

/** Resolves true when the endpoint is healthy; must stop and resolve when signal aborts. */
export type HealthProbe = (endpoint: Endpoint, signal: AbortSignal) => Promise<boolean>;

export interface HealthCheckOptions {
  intervalMs: number;
  timeoutMs: number;
  unhealthyThreshold: number;
  healthyThreshold: number;
  /** Up to this many ms added at random to each interval, so checks from many hosts spread out. */
  intervalJitterMs?: number;
  onTransition: (endpoint: Endpoint, healthy: boolean) => void;
  /** Default: a TCP connect, healthy once the handshake completes. */
  probe?: HealthProbe;
}

/**
 * The TCP check: connect, and close at once. From `localAddress` when given (a host sends its
 * checks from its own address, like its traffic: a backend may filter on it).
 */
export function tcpProbeFrom(localAddress?: string): HealthProbe {
  return (endpoint, signal) =>
    new Promise((resolve) => {
      const s = connect({
        host: endpoint.address,
        port: endpoint.port,
        localAddress:
          localAddress !== undefined && isIP(localAddress) === isIP(endpoint.address)
            ? localAddress
            : undefined,
      });
      let settled = false;
      const done = (ok: boolean) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        s.destroy();
        resolve(ok);
      };
      const onAbort = () => done(false);
      signal.addEventListener("abort", onAbort);
      s.once("connect", () => done(true));
      s.once("error", () => done(false));
      if (signal.aborted) done(false);
    });
}

export const tcpConnectProbe: HealthProbe = tcpProbeFrom();

interface Target {
  endpoint: Endpoint;
  state: HealthState;
  successes: number;
  failures: number;
  timer: NodeJS.Timeout | undefined;
  inflight: Promise<void> | undefined;
  abort: AbortController | undefined;
  removed: boolean;
}

export class ActiveHealthChecker {
  private readonly targets = new Map<string, Target>();
  private readonly probe: HealthProbe;
  private closed = false;

  constructor(private readonly options: HealthCheckOptions) {
    for (const f of ["intervalMs", "timeoutMs", "unhealthyThreshold", "healthyThreshold"] as const) {
      const v = options[f];
      if (!(typeof v === "number" && v > 0))
        throw new SdkError(SDK_ERROR.invalidArgument, `${f}: must be positive`);
    }
    this.probe = options.probe ?? tcpConnectProbe;
  }

  /** Starts probing new endpoints at once and stops probing the ones no longer listed. */
  setEndpoints(endpoints: readonly Endpoint[]): void {
    if (this.closed) throw new SdkError(SDK_ERROR.closed, "health checker is closed");
    const keep = new Set<string>();
    for (const e of endpoints) {
      const key = endpointKey(e);
      keep.add(key);
      const t = this.targets.get(key);
      if (t) {
        t.endpoint = e;
        continue;
      }
      const target: Target = {
        endpoint: e,
        state: "unknown",
        successes: 0,
        failures: 0,
        timer: undefined,
        inflight: undefined,
        abort: undefined,
        removed: false,
      };
      this.targets.set(key, target);
      this.run(target);
    }
    for (const [key, t] of this.targets) {
      if (keep.has(key)) continue;
      this.stop(t);
      this.targets.delete(key);
    }
  }

  health(key: string): HealthState {
    return this.targets.get(key)?.state ?? "unknown";
  }

  /** Stops every probe (aborting the ones in flight) and resolves once they have settled. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const inflight: Promise<void>[] = [];
    for (const t of this.targets.values()) {
      this.stop(t);
      if (t.inflight) inflight.push(t.inflight);
    }
    this.targets.clear();
    await Promise.all(inflight);
  }

  private stop(t: Target): void {
    t.removed = true;
    if (t.timer) clearTimeout(t.timer);
    t.timer = undefined;
    t.abort?.abort();
  }

  private run(t: Target): void {
    t.timer = undefined;
    if (t.removed) return;
    const abort = new AbortController();
    t.abort = abort;
    const timeout = setTimeout(() => abort.abort(), this.options.timeoutMs);
    t.inflight = this.probe(t.endpoint, abort.signal)
      .catch(() => false)
      .then((ok) => {
        clearTimeout(timeout);
        t.inflight = undefined;
        t.abort = undefined;
        if (t.removed) return;
        this.record(t, ok && !abort.signal.aborted);
        const jitter = this.options.intervalJitterMs ? Math.random() * this.options.intervalJitterMs : 0;
        t.timer = setTimeout(() => this.run(t), this.options.intervalMs + jitter);
      });
  }

  private record(t: Target, ok: boolean): void {
    if (ok) {
      t.successes++;
      t.failures = 0;
      if (t.state !== "healthy" && (t.state === "unknown" || t.successes >= this.options.healthyThreshold)) {
        this.transition(t, "healthy");
      }
    } else {
      t.failures++;
      t.successes = 0;
      if (
        t.state !== "unhealthy" &&
        (t.state === "unknown" || t.failures >= this.options.unhealthyThreshold)
      ) {
        this.transition(t, "unhealthy");
      }
    }
  }

  private transition(t: Target, state: HealthState): void {
    t.state = state;
    this.options.onTransition(t.endpoint, state === "healthy");
  }
}
