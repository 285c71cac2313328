// The compiler's output (services/control/compiler/chain-resources.ts) run by the function host: the
// two sides of DESIGN.md "Hop resources" were written apart, so this checks they agree. Operator
// config in, bytes through three hops (or one fused host) out, a denied source refused.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionHost } from "../../functions/sdk/host.js";
import { type ChainInput, chainResources } from "../../services/control/compiler/chain-resources.js";
import { applyHopConfigDefaults } from "../../services/control/model/defaults.js";
import { Snapshot } from "../../xds/index.js";
import {
  type Backend,
  dial,
  freePort,
  readAll,
  roundTrip,
  sha256,
  startBackend,
  startHost,
  startXds,
  type XdsServer,
} from "./support/harness.js";

describe.each([
  { placement: "separate" as const, net: 8 },
  { placement: "fused" as const, net: 9 },
])("compiled chain ($placement)", ({ placement, net }) => {
  const ip = (n: number) => `127.64.${net}.${n}`;
  const instances = {
    "edge-fw": [{ id: `c-fw-${placement}`, address: ip(1) }],
    "edge-qos": [{ id: `c-qos-${placement}`, address: ip(2) }],
    "edge-lb": [{ id: `c-lb-${placement}`, address: ip(3) }],
  };
  let xds: XdsServer;
  let backends: Backend[];
  let hosts: FunctionHost[] = [];
  let port: number;

  beforeAll(async () => {
    xds = await startXds();
    port = await freePort(ip(1));
    backends = await Promise.all([0, 1].map((i) => startBackend(i, ip(10 + i))));
    const hop = (fn: string, type: string, config: Record<string, unknown>) => ({
      function: fn,
      type,
      config: applyHopConfigDefaults(type, config),
    });
    const input: ChainInput = {
      name: `cc-${placement}`,
      service: "web",
      port,
      placement,
      hops: [
        hop("edge-fw", "firewall", { defaultAction: "deny", allow: [{ from: [{ cidr: "127.0.0.1/32" }] }] }),
        hop("edge-qos", "qos", {
          connectionsPerSecond: 500,
          maxConnections: 100,
          bandwidth: { bytesPerSecond: 64 * 1024 * 1024 },
        }),
        hop("edge-lb", "loadbalancer", {
          policy: "round_robin",
          healthCheck: { intervalMs: 500, timeoutMs: 200, unhealthyThreshold: 2, healthyThreshold: 1 },
        }),
      ],
      serviceProxyProtocol: false,
      endpoints: backends.map((b) => ({ address: b.address, port: b.port, weight: 1 })),
      instances,
    };
    const compiled = chainResources(input);
    expect(compiled.problems).toEqual([]);
    for (const [id, resources] of compiled.byInstance) xds.cache.setSnapshot(id, Snapshot.from(resources));
    const run = [...compiled.byInstance.keys()];
    const types: Record<string, string> = { fw: "firewall", qos: "qos", lb: "loadbalancer" };
    hosts = await Promise.all(
      Object.values(instances)
        .flat()
        .filter((i) => run.includes(i.id))
        .map((i) =>
          startHost({
            xds,
            type: types[i.id.split("-")[1] as string] as string,
            nodeId: i.id,
            address: i.address,
          }),
        ),
    );
    await Promise.all(hosts.map((h) => h.whenReady()));
  });

  afterAll(async () => {
    for (const h of hosts) h.destroy();
    await Promise.all(hosts.map((h) => h.close()));
    await Promise.all((backends ?? []).map((b) => b.close()));
    await xds?.close();
  });

  it("every instance ACKs what the compiler sent", () => {
    for (const h of hosts) {
      for (const t of xds.server.status.node(h.options.nodeId)?.types.values() ?? []) {
        expect(t.errorDetail, `${h.options.nodeId} ${t.typeUrl}`).toBeUndefined();
      }
    }
  });

  it("carries bytes intact from an allowed client to the backends, round robin", async () => {
    const payload = randomBytes(1024 * 1024);
    const banners = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await roundTrip(ip(1), port, payload, "127.0.0.1");
      expect(sha256(r.echo)).toBe(sha256(payload));
      banners.add(r.banner);
    }
    expect(banners.size).toBe(2);
  });

  it("refuses a client the firewall does not allow, with nothing sent", async () => {
    const s = await dial(ip(1), port, "127.0.0.9");
    const got = readAll(s);
    s.write("x");
    expect((await got).length).toBe(0);
  });
});
