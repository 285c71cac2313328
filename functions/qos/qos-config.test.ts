import { describe, expect, it } from "vitest";
import { durationMs } from "../sdk/proto-json.js";
import { decodeConnectionLimit, decodeLocalRateLimit, decodeQosConfig } from "./qos-config.js";

describe("decodeQosConfig", () => {
  it("decodes the design's example hop", () => {
    const r = decodeQosConfig({
      connectionsPerSecond: 200,
      maxConnections: 1000,
      bandwidth: { bytesPerSecond: 10485760, burstBytes: 1048576 },
    });
    expect(r).toEqual({
      ok: true,
      value: {
        connectionRate: { capacity: 200, tokensPerSecond: 200 },
        connectionLimit: { maxConnections: 1000, delayMs: 0 },
        bandwidth: { shared: { bytesPerSecond: 10485760, burstBytes: 1048576 } },
      },
    });
  });

  it("decodes a per-connection bandwidth next to the shared one", () => {
    const r = decodeQosConfig({
      bandwidth: { bytesPerSecond: 1000, perConnection: { bytesPerSecond: 100 } },
      connectionsPerSecond: 0.5,
      connectionBurst: 3,
    });
    expect(r.ok && r.value).toEqual({
      connectionRate: { capacity: 3, tokensPerSecond: 0.5 },
      bandwidth: { shared: { bytesPerSecond: 1000 }, perConnection: { bytesPerSecond: 100 } },
    });
  });

  it("reports every bad field with its path", () => {
    const r = decodeQosConfig({
      connectionsPerSecond: -1,
      maxConnections: 1.5,
      bandwidth: { bytesPerSecond: "fast", burstBytes: 0, perConnection: { bytesPerSecond: 1, extra: 1 } },
      shaping: true,
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.path).sort()).toEqual(
      [
        "shaping",
        "connectionsPerSecond",
        "maxConnections",
        "bandwidth.bytesPerSecond",
        "bandwidth.burstBytes",
        "bandwidth.perConnection.extra",
      ].sort(),
    );
  });
});

describe("Envoy QoS filters", () => {
  it("decodes local_ratelimit's token bucket with Envoy defaults", () => {
    expect(
      decodeLocalRateLimit({
        stat_prefix: "x",
        token_bucket: { max_tokens: 10, fill_interval: { seconds: 1 } },
      }),
    ).toEqual({
      ok: true,
      value: { capacity: 10, tokensPerFill: 1, fillIntervalMs: 1000 },
    });
    expect(
      decodeLocalRateLimit({
        token_bucket: {
          max_tokens: 5,
          tokens_per_fill: { value: 5 },
          fill_interval: { seconds: "0", nanos: 250_000_000 },
        },
      }),
    ).toEqual({ ok: true, value: { capacity: 5, tokensPerFill: 5, fillIntervalMs: 250 } });
  });

  it("refuses a fill interval under 50 ms and a missing bucket", () => {
    const r = decodeLocalRateLimit({ token_bucket: { max_tokens: 1, fill_interval: "0.01s" } });
    expect(!r.ok && r.errors.map((e) => e.path)).toEqual(["token_bucket.fill_interval"]);
    expect(decodeLocalRateLimit({}).ok).toBe(false);
  });

  it("decodes connection_limit with its delay", () => {
    expect(decodeConnectionLimit({ max_connections: { value: "100" }, delay: "0.5s" })).toEqual({
      ok: true,
      value: { maxConnections: 100, delayMs: 500 },
    });
    expect(decodeConnectionLimit({}).ok).toBe(false);
  });

  it("reads Durations in both forms", () => {
    expect(durationMs("1.5s")).toBe(1500);
    expect(durationMs({ seconds: 2, nanos: 1_000_000 })).toBe(2001);
    expect(durationMs("soon")).toBeUndefined();
  });
});
