// The QoS function: up to three filters per hop (DESIGN.md "Hop resources"):
//  - envoy.filters.network.local_ratelimit: new connections take a token; none left → closed;
//  - envoy.filters.network.connection_limit: at most max_connections open → closed after `delay`;
//  - catena.filters.network.bandwidth (catena.v1.Bandwidth): bytes per second per connection, or
//    shared by every connection of the chain through this instance (scope CHAIN).
// Refused connections are counted and reported as rate-limited `dev.catena.qos.throttled` events;
// a shaped connection is reported once, when shaping first holds its bytes back.
import {
  ACCEPT,
  type Connection,
  type Deny,
  defineFunction,
  deny,
  type HostHelper,
  type MetricCounter,
  type NetworkFilter,
  type StreamWrap,
  type Verdict,
} from "../sdk/define-function.js";
import { EventRateLimiter } from "../sdk/events.js";
import type { Throttle } from "../sdk/pump.js";
import { invalid, type Validated } from "../sdk/validated.js";
import { BANDWIDTH_TYPE_URL, type BandwidthConfig, decodeBandwidthConfig } from "./bandwidth-config.js";
import { ByteShaper } from "./byte-shaper.js";
import type { ConnectionLimitOptions } from "./connection-limiter.js";
import { type ConnectionRate, decodeConnectionLimit, decodeLocalRateLimit } from "./qos-config.js";
import { TokenBucket } from "./token-bucket.js";

export const QOS_TYPE_URL = {
  localRateLimit: "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit",
  connectionLimit: "type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit",
  bandwidth: BANDWIDTH_TYPE_URL,
} as const;

export type QosFilterConfig =
  | { kind: "rate"; rate: ConnectionRate }
  | { kind: "limit"; limit: ConnectionLimitOptions }
  | { kind: "bandwidth"; bandwidth: BandwidthConfig };

const EVENTS_PER_SECOND = 10;

/** Counting and reporting shared by the three filters. */
class Throttled {
  readonly #counter: MetricCounter;
  readonly #events = new EventRateLimiter({ perSecond: EVENTS_PER_SECOND });

  constructor(
    readonly helper: HostHelper,
    readonly what: "rate" | "limit" | "bandwidth",
  ) {
    this.#counter = helper.metrics.counter(`throttled_${what}`, `Connections throttled by QoS (${what})`);
  }

  report(conn: Connection, data: Record<string, unknown>): void {
    this.#counter.add();
    if (!this.#events.admit()) return;
    this.helper.emit({
      verb: "throttled",
      data: {
        limit: this.what,
        chain: conn.chain,
        hop: this.helper.scope.hop ?? conn.hop,
        listener: conn.listener,
        source: conn.source.address,
        sourcePort: conn.source.port,
        ...data,
        suppressed: this.#events.takeSuppressed(),
      },
    });
  }
}

export class RateLimitFilter implements NetworkFilter {
  readonly #bucket: TokenBucket;
  readonly #throttled: Throttled;
  static readonly DENY: Deny = deny("qos:rate_limited");

  constructor(rate: ConnectionRate, helper: HostHelper) {
    this.#bucket =
      "fillIntervalMs" in rate
        ? new TokenBucket({
            capacity: rate.capacity,
            tokensPerFill: rate.tokensPerFill,
            fillIntervalMs: rate.fillIntervalMs,
          })
        : new TokenBucket({ capacity: rate.capacity, tokensPerSecond: rate.tokensPerSecond });
    this.#throttled = new Throttled(helper, "rate");
  }

  onConnection(conn: Connection): Verdict {
    if (this.#bucket.take(1) === 0) return ACCEPT;
    this.#throttled.report(conn, {});
    return RateLimitFilter.DENY;
  }
}

export class ConnectionLimitFilter implements NetworkFilter {
  #active = 0;
  readonly #max: number;
  readonly #deny: Deny;
  readonly #throttled: Throttled;

  constructor(limit: ConnectionLimitOptions, helper: HostHelper) {
    this.#max = limit.maxConnections;
    this.#deny = deny("qos:connection_limit", limit.delayMs);
    this.#throttled = new Throttled(helper, "limit");
  }

  get active(): number {
    return this.#active;
  }

  onConnection(conn: Connection): Verdict {
    if (this.#active >= this.#max) {
      this.#throttled.report(conn, { maxConnections: this.#max });
      return this.#deny;
    }
    this.#active++;
    return ACCEPT;
  }

  onClose(): void {
    if (this.#active > 0) this.#active--;
  }
}

/** Reports a connection the first time shaping holds its bytes back; otherwise passes through. */
class ReportingThrottle implements Throttle {
  #reported = false;
  constructor(
    private readonly inner: Throttle,
    private readonly onFirstHold: () => void,
  ) {}

  grant(want: number): number {
    const n = this.inner.grant(want);
    if (n < want && !this.#reported) {
      this.#reported = true;
      this.onFirstHold();
    }
    return n;
  }

  waitMs(want: number): number {
    return this.inner.waitMs(want);
  }

  release(): void {
    this.inner.release?.();
  }
}

export class BandwidthFilter implements NetworkFilter {
  readonly #shaper: ByteShaper;
  readonly #config: BandwidthConfig;
  readonly #throttled: Throttled;

  constructor(config: BandwidthConfig, helper: HostHelper) {
    this.#config = config;
    const rate =
      config.burstBytes === undefined
        ? { bytesPerSecond: config.bytesPerSecond }
        : { bytesPerSecond: config.bytesPerSecond, burstBytes: config.burstBytes };
    this.#shaper = new ByteShaper(config.scope === "CHAIN" ? { shared: rate } : { perConnection: rate });
    this.#throttled = new Throttled(helper, "bandwidth");
  }

  onConnection(): Verdict {
    return ACCEPT;
  }

  wrapStreams(conn: Connection): StreamWrap | undefined {
    const t = this.#shaper.throttles();
    let reported = false;
    const report = () => {
      if (reported) return;
      reported = true;
      this.#throttled.report(conn, {
        bytesPerSecond: this.#config.bytesPerSecond,
        scope: this.#config.scope,
      });
    };
    return {
      up: t.up && new ReportingThrottle(t.up, report),
      down: t.down && new ReportingThrottle(t.down, report),
    };
  }
}

export function parseQosConfig(raw: unknown, typeUrl: string): Validated<QosFilterConfig> {
  switch (typeUrl) {
    case QOS_TYPE_URL.localRateLimit: {
      const r = decodeLocalRateLimit(raw);
      return r.ok ? { ok: true, value: { kind: "rate", rate: r.value } } : r;
    }
    case QOS_TYPE_URL.connectionLimit: {
      const r = decodeConnectionLimit(raw);
      return r.ok ? { ok: true, value: { kind: "limit", limit: r.value } } : r;
    }
    case QOS_TYPE_URL.bandwidth: {
      const r = decodeBandwidthConfig(raw);
      return r.ok ? { ok: true, value: { kind: "bandwidth", bandwidth: r.value } } : r;
    }
    default:
      return invalid([{ path: "", message: `qos does not handle ${typeUrl}` }]);
  }
}

export function createQosFilter(config: QosFilterConfig, helper: HostHelper): NetworkFilter {
  switch (config.kind) {
    case "rate":
      return new RateLimitFilter(config.rate, helper);
    case "limit":
      return new ConnectionLimitFilter(config.limit, helper);
    case "bandwidth":
      return new BandwidthFilter(config.bandwidth, helper);
  }
}

export default defineFunction<QosFilterConfig>({
  name: "qos",
  configTypes: [QOS_TYPE_URL.localRateLimit, QOS_TYPE_URL.connectionLimit, QOS_TYPE_URL.bandwidth],
  parseConfig: parseQosConfig,
  createFilter: createQosFilter,
});
