import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../xds/logger.js";
import type { Connection, HostHelper, NetworkFilter, PluginEvent } from "../sdk/define-function.js";
import { decodeBandwidthConfig } from "./bandwidth-config.js";
import qos, { QOS_TYPE_URL } from "./plugin.js";

const events: PluginEvent[] = [];
const helper: HostHelper = {
  log: silentLogger,
  emit: (e) => events.push(e),
  metrics: { counter: () => ({ add: () => {} }) },
  scope: { function: "qos", nodeId: "n", hop: 1 },
};

const conn: Connection = {
  id: 1,
  source: { address: "10.0.0.1", port: 5000 },
  destination: { address: "127.64.0.1", port: 8080 },
  peer: { address: "127.64.0.9", port: 6000 },
  chain: "c",
  hop: 1,
  listener: "c/1",
};

function make(typeUrl: string, raw: unknown): NetworkFilter {
  const cfg = qos.parseConfig(raw, typeUrl);
  if (!cfg.ok) throw new Error(JSON.stringify(cfg.errors));
  return qos.createFilter(cfg.value, helper);
}

const allowed = (f: NetworkFilter) => {
  const v = f.onConnection(conn);
  return !("then" in v) && v.allow;
};

describe("qos plugin", () => {
  it("local_ratelimit: a connection takes a token; none left closes it", () => {
    const f = make(QOS_TYPE_URL.localRateLimit, {
      token_bucket: { max_tokens: 3, tokens_per_fill: { value: 3 }, fill_interval: { seconds: 60 } },
    });
    expect([allowed(f), allowed(f), allowed(f), allowed(f)]).toEqual([true, true, true, false]);
    expect(events.at(-1)).toMatchObject({ verb: "throttled", data: { limit: "rate" } });
  });

  it("connection_limit: at most max open; a close frees a slot; the delay is kept", () => {
    const f = make(QOS_TYPE_URL.connectionLimit, { max_connections: { value: 2 }, delay: { nanos: 5e6 } });
    expect([allowed(f), allowed(f)]).toEqual([true, true]);
    expect(f.onConnection(conn)).toMatchObject({ allow: false, delayMs: 5 });
    f.onClose?.(conn, { bytesUp: 0, bytesDown: 0, durationMs: 1, connected: true });
    expect(allowed(f)).toBe(true);
  });

  it("bandwidth: per connection and per chain throttles", () => {
    const per = make(QOS_TYPE_URL.bandwidth, { bytes_per_second: 1000, scope: "CONNECTION" });
    const a = per.wrapStreams?.(conn);
    const b = per.wrapStreams?.(conn);
    expect(a?.up?.grant(1000)).toBe(1000);
    expect(b?.up?.grant(1000)).toBe(1000);
    const shared = make(QOS_TYPE_URL.bandwidth, { bytes_per_second: 1000, scope: "CHAIN" });
    const c = shared.wrapStreams?.(conn);
    const d = shared.wrapStreams?.(conn);
    expect(c?.up?.grant(1000)).toBe(1000);
    expect(d?.up?.grant(1000)).toBe(0);
  });

  it.each([
    {
      name: "the JSON form",
      raw: { bytes_per_second: 10, burst_bytes: 5, scope: "CHAIN" },
      want: { bytesPerSecond: 10, burstBytes: 5, scope: "CHAIN" },
    },
    {
      name: "an absent scope (the zero value)",
      raw: { bytes_per_second: 10 },
      want: { bytesPerSecond: 10, scope: "CONNECTION" },
    },
    {
      name: "an undecoded Any (no proto in the process)",
      raw: {
        type_url: QOS_TYPE_URL.bandwidth,
        value: protobuf.Writer.create().uint32(8).uint64(2048).uint32(24).uint32(1).finish(),
      },
      want: { bytesPerSecond: 2048, scope: "CHAIN" },
    },
  ])("decodes Bandwidth from $name", ({ raw, want }) => {
    expect(decodeBandwidthConfig(raw)).toEqual({ ok: true, value: want });
  });

  it("refuses a Bandwidth without a rate", () => {
    expect(decodeBandwidthConfig({ scope: "CHAIN" })).toMatchObject({
      ok: false,
      errors: [{ path: "bytes_per_second" }],
    });
  });
});
