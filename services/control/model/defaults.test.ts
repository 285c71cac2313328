import { describe, expect, it } from "vitest";
import { applyDefaults, applyHopConfigDefaults } from "./defaults.js";
import type { Resource } from "./resource.js";

const meta = { apiVersion: "catena.dev/v1alpha1", metadata: { name: "x" } } as const;

describe("applyDefaults", () => {
  it.each<{ name: string; resource: Resource; spec: Record<string, unknown> }>([
    {
      name: "ServiceFunction replicas",
      resource: { ...meta, kind: "ServiceFunction", spec: { type: "qos" } },
      spec: { type: "qos", replicas: 1 },
    },
    {
      name: "ServiceChain placement",
      resource: {
        ...meta,
        kind: "ServiceChain",
        spec: { service: "web", ingress: { port: 80 }, hops: [{ function: "f" }] },
      },
      spec: { service: "web", ingress: { port: 80 }, placement: "separate", hops: [{ function: "f" }] },
    },
    {
      name: "Service endpoint weight and port protocol",
      resource: {
        ...meta,
        kind: "Service",
        spec: {
          network: "n",
          ports: [{ name: "http", port: 80 }],
          endpoints: [{ address: "127.0.0.1", port: 1 }],
        },
      },
      spec: {
        network: "n",
        ports: [{ name: "http", port: 80, protocol: "TCP" }],
        endpoints: [{ address: "127.0.0.1", port: 1, weight: 1 }],
        proxyProtocol: "none",
      },
    },
    {
      name: "Network isolation, explicit values kept",
      resource: { ...meta, kind: "Network", spec: { cidr: "10.0.0.0/8", isolation: "default-deny" } },
      spec: { cidr: "10.0.0.0/8", isolation: "default-deny" },
    },
  ])("$name", ({ resource, spec }) => {
    const before = structuredClone(resource);
    expect(applyDefaults(resource).spec).toEqual(spec);
    expect(resource).toEqual(before);
  });

  it("fills a built-in hop config's defaults and leaves plugin configs alone", () => {
    expect(
      applyHopConfigDefaults("loadbalancer", { healthCheck: { intervalMs: 1000, timeoutMs: 100 } }),
    ).toEqual({
      policy: "round_robin",
      healthCheck: { intervalMs: 1000, timeoutMs: 100, unhealthyThreshold: 2, healthyThreshold: 1 },
    });
    expect(applyHopConfigDefaults("acme", { a: 1 })).toEqual({ a: 1 });
  });
});

describe("hop config defaults with ports", () => {
  it("fills defaults of a firewall config whose rules name ports (numbers and ranges)", () => {
    const config = {
      defaultAction: "deny",
      allow: [{ from: [{ cidr: "127.0.0.0/8" }], ports: [8080, { port: 9000, endPort: 9100 }] }],
    };
    expect(applyHopConfigDefaults("firewall", config)).toEqual(config);
  });
});
