import { describe, expect, it } from "vitest";
import {
  decodeClusterLoadAssignment,
  decodeEnvoyCluster,
  decodeLoadBalancerConfig,
} from "./cluster-config.js";

describe("decodeLoadBalancerConfig (operator vocabulary)", () => {
  it("decodes the design's example hop", () => {
    const r = decodeLoadBalancerConfig({
      policy: "round_robin",
      healthCheck: { intervalMs: 1000, timeoutMs: 500, unhealthyThreshold: 2, healthyThreshold: 1 },
    });
    expect(r).toEqual({
      ok: true,
      value: {
        lb: { policy: "round_robin" },
        healthCheck: { intervalMs: 1000, timeoutMs: 500, unhealthyThreshold: 2, healthyThreshold: 1 },
      },
    });
  });

  it("decodes outlier detection, limits and attempts", () => {
    const r = decodeLoadBalancerConfig({
      policy: "maglev",
      panicThresholdPercent: 0,
      outlierDetection: { consecutiveFailures: 3, baseEjectionMs: 1000, backoff: "linear" },
      maxConnections: 100,
      connectAttempts: 3,
    });
    expect(r.ok && r.value).toEqual({
      lb: { policy: "maglev", panicThresholdPercent: 0 },
      outlierDetection: { consecutiveFailures: 3, baseEjectionMs: 1000, backoff: "linear" },
      circuitBreaker: { maxConnections: 100 },
      connectAttempts: 3,
    });
  });

  it("reports every bad field with its path", () => {
    const r = decodeLoadBalancerConfig({
      policy: "fastest",
      panicThresholdPercent: 120,
      healthCheck: { intervalMs: 0, unhealthyThreshold: 1.5 },
      outlierDetection: { backoff: "cubic" },
      maxConns: 1,
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.path).sort()).toEqual(
      [
        "maxConns",
        "policy",
        "panicThresholdPercent",
        "healthCheck.intervalMs",
        "healthCheck.unhealthyThreshold",
        "outlierDetection.backoff",
      ].sort(),
    );
  });
});

describe("decodeEnvoyCluster", () => {
  it("reads lb_policy, its config, panic threshold, TCP health check, outlier detection and breakers", () => {
    const r = decodeEnvoyCluster({
      name: "web",
      type: "EDS",
      lb_policy: "MAGLEV",
      maglev_lb_config: { table_size: { value: 5 } },
      common_lb_config: { healthy_panic_threshold: { value: 25 } },
      health_checks: [
        {
          timeout: { seconds: 0, nanos: 500_000_000 },
          interval: { seconds: "1" },
          unhealthy_threshold: { value: 2 },
          healthy_threshold: { value: 1 },
          tcp_health_check: {},
        },
      ],
      outlier_detection: {
        consecutive_5xx: { value: 4 },
        base_ejection_time: "10s",
        max_ejection_percent: { value: 50 },
      },
      circuit_breakers: {
        thresholds: [{ priority: "DEFAULT", max_connections: { value: 64 }, max_retries: { value: 0 } }],
      },
    });
    expect(r).toEqual({
      ok: true,
      value: {
        lb: { policy: "maglev", maglev: { tableSize: 5 }, panicThresholdPercent: 25 },
        healthCheck: { intervalMs: 1000, timeoutMs: 500, unhealthyThreshold: 2, healthyThreshold: 1 },
        outlierDetection: {
          backoff: "linear",
          consecutiveFailures: 4,
          baseEjectionMs: 10_000,
          maxEjectionPercent: 50,
        },
        circuitBreaker: { maxConnections: 64, maxRetries: 0 },
      },
    });
  });

  it("defaults to ROUND_ROBIN and accepts enum numbers", () => {
    expect(decodeEnvoyCluster({ name: "x" })).toEqual({ ok: true, value: { lb: { policy: "round_robin" } } });
    expect(decodeEnvoyCluster({ lb_policy: 1 }).ok && decodeEnvoyCluster({ lb_policy: 1 })).toMatchObject({
      value: { lb: { policy: "least_request" } },
    });
  });

  it("refuses what a TCP function cannot honour, by path", () => {
    const r = decodeEnvoyCluster({
      lb_policy: "CLUSTER_PROVIDED",
      maglev_lb_config: { table_size: { value: 65536 } },
      health_checks: [
        {
          interval: "1s",
          timeout: "1s",
          unhealthy_threshold: { value: 1 },
          healthy_threshold: { value: 1 },
          http_health_check: {},
        },
      ],
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.path)).toEqual([
      "lb_policy",
      "maglev_lb_config.table_size",
      "health_checks[0]",
    ]);
  });
});

describe("decodeClusterLoadAssignment", () => {
  it("reads addresses, weights and health status", () => {
    const r = decodeClusterLoadAssignment({
      cluster_name: "web",
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 9001 } } } },
            {
              endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 9002 } } },
              load_balancing_weight: { value: 3 },
              health_status: "UNHEALTHY",
            },
            {
              endpoint: { address: { socket_address: { address: "::1", port_value: 9003 } } },
              health_status: "DEGRADED",
            },
          ],
        },
      ],
    });
    expect(r).toEqual({
      ok: true,
      value: [
        { address: "127.0.0.1", port: 9001, weight: 1, healthy: true },
        { address: "127.0.0.1", port: 9002, weight: 3, healthy: false },
        { address: "::1", port: 9003, weight: 1, healthy: true },
      ],
    });
  });

  it("refuses failover priorities and endpoints without a port", () => {
    const r = decodeClusterLoadAssignment({
      endpoints: [
        { priority: 1, lb_endpoints: [] },
        { lb_endpoints: [{ endpoint: { address: { socket_address: { address: "10.0.0.1" } } } }] },
      ],
    });
    expect(!r.ok && r.errors.map((e) => e.path)).toEqual([
      "endpoints[0].priority",
      "endpoints[1].lb_endpoints[0].endpoint.address.socket_address.port_value",
    ]);
  });
});
