// The host and its xDS server: what it cannot apply is NACKed with the field path (the server's status
// table shows it) while the last accepted config keeps serving; a change elsewhere (a cluster's
// endpoints) keeps established connections; and a control server that goes away changes nothing.
import { once } from "node:events";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionHost } from "../../functions/sdk/host.js";
import { readProxyHeader } from "../../functions/sdk/proxy-header-reader.js";
import type { ProxyParseResult } from "../../functions/sdk/proxy-protocol.js";
import {
  clusterLoadAssignment,
  edsCluster,
  networkFilter,
  type Resource,
  Snapshot,
  TYPE_URL,
  tcpProxyListener,
  typedConfig,
  typedStruct,
} from "../../xds/index.js";
import {
  BANNER_LENGTH,
  type Backend,
  dial,
  freePort,
  rbacAllow,
  readAll,
  roundTrip,
  sleep,
  startBackend,
  startHost,
  startXds,
  until,
  type XdsServer,
} from "./support/harness.js";

const ADDR = "127.64.5.1";
const NODE = "cfg-1";
let xds: XdsServer;
let host: FunctionHost;
let backends: Backend[];
let port: number;

function resources(o: { filters?: ReturnType<typeof networkFilter>[]; backend?: number } = {}): Resource[] {
  const b = backends[o.backend ?? 0] as Backend;
  return [
    tcpProxyListener({
      name: "cfg/0",
      address: ADDR,
      port,
      filters: o.filters ?? [rbacAllow("cfg/0", [{ address: "127.0.0.1", prefixLen: 32 }])],
      tcpProxy: { cluster: "cfg/0/next", statPrefix: "cfg/0" },
      metadata: { catena: { chain: "cfg", hop: 0, service: "web" } },
    }),
    edsCluster({ name: "cfg/0/next" }),
    clusterLoadAssignment({ clusterName: "cfg/0/next", endpoints: [{ address: b.address, port: b.port }] }),
  ];
}

const listenerStatus = () => xds.server.status.node(NODE)?.types.get(TYPE_URL.listener);

beforeAll(async () => {
  xds = await startXds();
  port = await freePort(ADDR);
  backends = await Promise.all([0, 1].map((i) => startBackend(i, `127.64.5.${10 + i}`)));
  xds.cache.setSnapshot(NODE, Snapshot.from(resources()));
  host = await startHost({ xds, type: "firewall", nodeId: NODE, address: ADDR });
  await host.whenReady();
});

afterAll(async () => {
  host?.destroy();
  await host?.close();
  await Promise.all((backends ?? []).map((b) => b.close()));
  await xds?.close();
});

describe("config the host cannot apply", () => {
  it.each([
    {
      name: "an unknown plugin type",
      filter: networkFilter(
        "catena.filters.network.nope",
        typedStruct("type.googleapis.com/catena.plugin.nope", { x: 1 }),
      ),
      error:
        /cfg\/0: filter_chains\[0\]\.filters\[0\]\.typed_config: no function handles type\.googleapis\.com\/catena\.plugin\.nope/,
    },
    {
      name: "an RBAC principal the firewall cannot match",
      filter: networkFilter(
        "envoy.filters.network.rbac",
        typedConfig(TYPE_URL.networkRbac, {
          stat_prefix: "cfg/0",
          rules: {
            action: "ALLOW",
            policies: { "allow-0": { permissions: [{ any: true }], principals: [{ authenticated: {} }] } },
          },
        }),
      ),
      error:
        /filter_chains\[0\]\.filters\[0\]\.typed_config\.rules\.policies\.allow-0\.principals\[0\]\.authenticated: principal not supported/,
    },
    {
      name: "a local_ratelimit without a fill interval",
      filter: networkFilter(
        "envoy.filters.network.local_ratelimit",
        typedConfig(TYPE_URL.localRateLimit, { stat_prefix: "cfg/0", token_bucket: { max_tokens: 5 } }),
      ),
      error:
        /filter_chains\[0\]\.filters\[0\]\.typed_config\.token_bucket\.fill_interval: must be a duration/,
    },
  ])("$name is NACKed with its field path and the last config keeps serving", async ({ filter, error }) => {
    const nacked = listenerStatus()?.nackedVersion;
    xds.cache.setSnapshot(NODE, Snapshot.from(resources({ filters: [filter] })));
    await until(
      () => listenerStatus()?.errorDetail !== undefined && listenerStatus()?.nackedVersion !== nacked,
      "a NACK",
    );
    expect(listenerStatus()?.errorDetail?.message).toMatch(error);
    const r = await roundTrip(ADDR, port, Buffer.from("ok"), "127.0.0.1");
    expect(r.echo.toString()).toBe("ok");
    // Back to a good config: ACKed again.
    xds.cache.setSnapshot(NODE, Snapshot.from(resources()));
    await until(() => listenerStatus()?.errorDetail === undefined, "an ACK");
  });
});

describe("live changes", () => {
  it("new endpoints take new connections; an established one keeps its backend", async () => {
    const s = await dial(ADDR, port, "127.0.0.1");
    let got = "";
    s.on("data", (c: Buffer) => {
      got += c.toString();
    });
    await until(() => got.length >= BANNER_LENGTH, "the banner");
    expect(got).toBe("backend-0\n");
    xds.cache.setSnapshot(NODE, Snapshot.from(resources({ backend: 1 })));
    await until(
      () => xds.server.status.node(NODE)?.types.get(TYPE_URL.endpoint)?.errorDetail === undefined,
      "ack",
    );
    let moved = false;
    for (let i = 0; i < 50 && !moved; i++) {
      moved = (await roundTrip(ADDR, port, Buffer.from("n"), "127.0.0.1")).banner === "backend-1\n";
      if (!moved) await sleep(20);
    }
    expect(moved).toBe(true);
    s.write("still");
    await until(() => got.endsWith("still"), "the old connection's echo");
    s.end();
    xds.cache.setSnapshot(NODE, Snapshot.from(resources()));
  });

  it("counts connections, denials and endpoint health in /metrics", async () => {
    await roundTrip(ADDR, port, Buffer.from("m"), "127.0.0.1");
    await roundTrip(ADDR, port, Buffer.from("m"), "127.0.0.9");
    const text = await (await fetch(`http://${host.adminAddress}/metrics`)).text();
    // Prometheus labels as the exporter writes them (plus otel_scope_name): `metric{...} value`.
    const value = (metric: string, labels: string[]) => {
      for (const line of text.split("\n")) {
        if (!line.startsWith(`${metric}{`)) continue;
        if (labels.every((l) => line.includes(l))) return Number(line.slice(line.lastIndexOf(" ") + 1));
      }
      return Number.NaN;
    };
    expect(value("catena_connections_total", ['listener="cfg/0"'])).toBeGreaterThanOrEqual(2);
    expect(
      value("catena_connections_denied_total", ['listener="cfg/0"', 'reason="firewall:default"']),
    ).toBeGreaterThanOrEqual(1);
    expect(value("catena_firewall_denied_total", ['listener="cfg/0"', 'hop="0"'])).toBeGreaterThanOrEqual(1);
    expect(value("catena_endpoint_healthy", ['cluster="cfg/0/next"', 'endpoint="127.64.5.10:'])).toBe(1);
    expect(value("catena_bytes_in_total", ['listener="cfg/0"'])).toBeGreaterThanOrEqual(1);
  });

  it("sends the next hop a PROXY v2 header: the original client, the chain, the receiving hop", async () => {
    const headers: ProxyParseResult[] = [];
    const pp = createServer((sock) => {
      // Probes and resets reach this server too: a socket error must not become an uncaught one.
      sock.on("error", () => sock.destroy());
      void readProxyHeader(sock).then((r) => {
        headers.push(r);
        sock.end("pp\n");
      });
    });
    pp.listen(0, "127.64.5.20");
    await once(pp, "listening");
    const ppPort = (pp.address() as { port: number }).port;
    const ppListen = await freePort(ADDR);
    xds.cache.setSnapshot(
      NODE,
      Snapshot.from([
        ...resources(),
        tcpProxyListener({
          name: "pp/0",
          address: ADDR,
          port: ppListen,
          tcpProxy: { cluster: "pp/0/next", statPrefix: "pp/0" },
          metadata: { catena: { chain: "pp", hop: 0, service: "web" } },
        }),
        edsCluster({ name: "pp/0/next", upstreamProxyProtocol: "V2" }),
        clusterLoadAssignment({
          clusterName: "pp/0/next",
          endpoints: [{ address: "127.64.5.20", port: ppPort }],
        }),
      ]),
    );
    await until(() => host.listenerAddress("pp/0") !== undefined, "the pp/0 listener");
    const s = await dial(ADDR, ppListen, "127.0.0.7");
    const local = s.localPort;
    await readAll(s);
    await until(() => headers.length === 1, "a header");
    const h = headers[0];
    expect(h?.state).toBe("done");
    if (h?.state === "done") {
      expect(h.header.source).toEqual({ address: "127.0.0.7", port: local });
      expect(h.header.destination).toEqual({ address: ADDR, port: ppListen });
      expect(h.header.chain).toBe("pp");
      expect(h.header.hop).toBe(1);
    }
    pp.close();
    xds.cache.setSnapshot(NODE, Snapshot.from(resources()));
  });

  it("keeps serving the last config while the control server is gone", async () => {
    await xds.close();
    await sleep(200);
    const r = await roundTrip(ADDR, port, Buffer.from("alone"), "127.0.0.1");
    expect(r.echo.toString()).toBe("alone");
    expect(host.ready).toBe(true);
  });
});
