// QoS config in its two dialects, decoded without throwing and with every problem's field path:
//  - the operator's hop config: {connectionsPerSecond, connectionBurst?, maxConnections,
//    bandwidth: {bytesPerSecond, burstBytes?, perConnection?: {bytesPerSecond, burstBytes?}}}
//  - Envoy's local_ratelimit and connection_limit network filters, as protobufjs decodes them with
//    keepCase (snake_case, wrappers as {value}, Durations as {seconds, nanos} or "1.5s").
import { durationMs, isObject, type Json, wrappedValue as wrapped } from "../sdk/proto-json.js";
import { ErrorList, type Validated } from "../sdk/validated.js";
import type { ByteRate } from "./byte-shaper.js";
import type { ConnectionLimitOptions } from "./connection-limiter.js";

/** A connection-rate bucket: Envoy's discrete form or a plain per-second rate. */
export type ConnectionRate =
  | { capacity: number; tokensPerFill: number; fillIntervalMs: number }
  | { capacity: number; tokensPerSecond: number };

export interface QosConfig {
  connectionRate?: ConnectionRate;
  connectionLimit?: ConnectionLimitOptions;
  bandwidth?: { shared?: ByteRate; perConnection?: ByteRate };
}

function positive(v: unknown, path: string, errors: ErrorList, integer = false): number | undefined {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    errors.add(path, integer ? "must be a positive integer" : "must be a positive number");
    return undefined;
  }
  return v;
}

function checkKeys(o: Json, allowed: readonly string[], path: string, errors: ErrorList): void {
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) errors.add(path ? `${path}.${k}` : k, "unknown field");
}

function byteRate(
  v: unknown,
  path: string,
  errors: ErrorList,
  extra: readonly string[] = [],
): ByteRate | undefined {
  if (!isObject(v)) {
    errors.add(path, "must be an object with bytesPerSecond");
    return undefined;
  }
  checkKeys(v, ["bytesPerSecond", "burstBytes", ...extra], path, errors);
  const bytesPerSecond = positive(v.bytesPerSecond, `${path}.bytesPerSecond`, errors);
  const burstBytes =
    v.burstBytes === undefined ? undefined : positive(v.burstBytes, `${path}.burstBytes`, errors, true);
  if (bytesPerSecond === undefined) return undefined;
  return burstBytes === undefined ? { bytesPerSecond } : { bytesPerSecond, burstBytes };
}

/** The operator's QoS hop config. connectionBurst defaults to one second's worth of connections. */
export function decodeQosConfig(raw: unknown): Validated<QosConfig> {
  const errors = new ErrorList();
  const out: QosConfig = {};
  if (!isObject(raw)) {
    errors.add("", "QoS config must be an object");
    return errors.result(out);
  }
  checkKeys(
    raw,
    ["connectionsPerSecond", "connectionBurst", "maxConnections", "connectionLimitDelayMs", "bandwidth"],
    "",
    errors,
  );
  if (raw.connectionsPerSecond !== undefined) {
    const rate = positive(raw.connectionsPerSecond, "connectionsPerSecond", errors);
    const burst =
      raw.connectionBurst === undefined
        ? undefined
        : positive(raw.connectionBurst, "connectionBurst", errors, true);
    if (rate !== undefined)
      out.connectionRate = { capacity: burst ?? Math.max(1, Math.ceil(rate)), tokensPerSecond: rate };
  } else if (raw.connectionBurst !== undefined) {
    errors.add("connectionBurst", "needs connectionsPerSecond");
  }
  if (raw.maxConnections !== undefined) {
    const max = positive(raw.maxConnections, "maxConnections", errors, true);
    let delayMs = 0;
    if (raw.connectionLimitDelayMs !== undefined) {
      const d = raw.connectionLimitDelayMs;
      if (typeof d !== "number" || !(d >= 0)) errors.add("connectionLimitDelayMs", "must be a number >= 0");
      else delayMs = d;
    }
    if (max !== undefined) out.connectionLimit = { maxConnections: max, delayMs };
  }
  if (raw.bandwidth !== undefined) {
    const shared = byteRate(raw.bandwidth, "bandwidth", errors, ["perConnection"]);
    const perRaw = isObject(raw.bandwidth) ? raw.bandwidth.perConnection : undefined;
    const perConnection =
      perRaw === undefined ? undefined : byteRate(perRaw, "bandwidth.perConnection", errors);
    out.bandwidth = {};
    if (shared) out.bandwidth.shared = shared;
    if (perConnection) out.bandwidth.perConnection = perConnection;
  }
  return errors.result(out);
}

/** envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit: a connection takes one token. */
export function decodeLocalRateLimit(raw: unknown): Validated<ConnectionRate> {
  const errors = new ErrorList();
  const fallback: ConnectionRate = { capacity: 1, tokensPerFill: 1, fillIntervalMs: 1000 };
  const tb = isObject(raw) ? raw.token_bucket : undefined;
  if (!isObject(tb)) {
    errors.add("token_bucket", "must be set");
    return errors.result(fallback);
  }
  const capacity = positive(wrapped(tb.max_tokens), "token_bucket.max_tokens", errors, true);
  const perFillRaw =
    tb.tokens_per_fill === undefined || tb.tokens_per_fill === null ? 1 : wrapped(tb.tokens_per_fill);
  const tokensPerFill = positive(perFillRaw, "token_bucket.tokens_per_fill", errors, true);
  const interval = durationMs(tb.fill_interval);
  // Envoy rejects fill intervals under 50 ms.
  if (interval === undefined || interval < 50)
    errors.add("token_bucket.fill_interval", "must be a duration of at least 50ms");
  if (capacity === undefined || tokensPerFill === undefined || interval === undefined)
    return errors.result(fallback);
  return errors.result({ capacity, tokensPerFill, fillIntervalMs: interval });
}

/** envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit. */
export function decodeConnectionLimit(raw: unknown): Validated<ConnectionLimitOptions> {
  const errors = new ErrorList();
  const o = isObject(raw) ? raw : {};
  const max = positive(wrapped(o.max_connections), "max_connections", errors, true);
  let delayMs = 0;
  if (o.delay !== undefined && o.delay !== null) {
    const d = durationMs(o.delay);
    if (d === undefined || d < 0) errors.add("delay", "must be a non-negative duration");
    else delayMs = d;
  }
  return errors.result({ maxConnections: max ?? 1, delayMs });
}
