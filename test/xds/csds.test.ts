// CSDS and Fetch: what the server reports of each node, and one-shot discovery.
import type { Client, ServiceError } from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Snapshot } from "../../xds/cache/snapshot.js";
import { messageType } from "../../xds/protos.js";
import { TYPE_URL } from "../../xds/type-urls.js";
import { decodeDiscoveryResponse, encodeDiscoveryRequest } from "../../xds/wire/discovery.js";
import { CSDS_PATHS, TYPED_SERVICES } from "../../xds/wire/services.js";
import { cla, cluster, namesOf, node, node2 } from "./support/fixtures.js";
import { req, sotwStream, xdsClient } from "./support/raw-stream.js";
import { startTestServer, type TestServer } from "./support/server.js";

let ts: TestServer;
let client: Client;
let nacked = 0;

beforeEach(async () => {
  nacked = 0;
  ts = await startTestServer({ server: { callbacks: { onNack: () => nacked++ } } });
  client = xdsClient(ts.port);
});

afterEach(async () => {
  client.close();
  await ts.close();
});

function unary<Res>(path: string, body: Buffer, decode: (b: Buffer) => Res): Promise<Res> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      decode,
      body,
      (err: ServiceError | null, res?: Res) => (err || res === undefined ? reject(err) : resolve(res)),
    );
  });
}

interface GenericConfig {
  type_url: string;
  name: string;
  version_info: string;
  config_status: string;
  client_status: string;
  xds_config?: Record<string, unknown>;
  error_state?: { details: string; version_info: string };
}

async function clientStatus(
  request: Record<string, unknown>,
): Promise<{ node: { id: string }; generic_xds_configs?: GenericConfig[] }[]> {
  const reqType = messageType("envoy.service.status.v3.ClientStatusRequest");
  const resType = messageType("envoy.service.status.v3.ClientStatusResponse");
  const body = Buffer.from(reqType.encode(reqType.fromObject(request)).finish());
  const res = await unary(CSDS_PATHS.fetch, body, (b) =>
    resType.toObject(resType.decode(b), { json: true, enums: String }),
  );
  return (res as { config?: [] }).config ?? [];
}

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("CSDS", () => {
  it("reports per node the versions sent, which are ACKed and which NACKed", async () => {
    const snap = Snapshot.from([cluster("a"), cla("a")]);
    ts.cache.setSnapshot(node.id, snap);
    ts.cache.setSnapshot(node2.id, snap);
    const s = sotwStream(client);
    s.send(req({ node, typeUrl: TYPE_URL.cluster }));
    const cds = await s.next();
    s.send(req({ typeUrl: TYPE_URL.cluster, versionInfo: cds.versionInfo, responseNonce: cds.nonce }));
    s.send(req({ typeUrl: TYPE_URL.endpoint, resourceNames: ["a"] }));
    const eds = await s.next();
    s.send(
      req({
        typeUrl: TYPE_URL.endpoint,
        resourceNames: ["a"],
        responseNonce: eds.nonce,
        errorDetail: { code: 3, message: "a: no endpoints" },
      }),
    );
    await until(() => nacked === 1);
    const s2 = sotwStream(client);
    s2.send(req({ node: node2, typeUrl: TYPE_URL.cluster }));
    await s2.next();

    const all = await clientStatus({});
    expect(all.map((c) => c.node.id).sort()).toEqual([node.id, node2.id]);

    const [one] = await clientStatus({ node_matchers: [{ node_id: { exact: node.id } }] });
    const byType = Object.fromEntries((one?.generic_xds_configs ?? []).map((g) => [g.type_url, g]));
    expect(byType[TYPE_URL.cluster]).toMatchObject({
      name: "a",
      version_info: cds.versionInfo,
      config_status: "SYNCED",
      client_status: "ACKED",
      xds_config: { "@type": TYPE_URL.cluster, name: "a" },
    });
    expect(byType[TYPE_URL.endpoint]).toMatchObject({
      name: "a",
      config_status: "ERROR",
      client_status: "NACKED",
      error_state: { details: "a: no endpoints", version_info: eds.versionInfo },
    });

    const [other] = await clientStatus({
      node_matchers: [{ node_id: { prefix: "node-2" } }],
      exclude_resource_contents: true,
    });
    expect(other?.generic_xds_configs?.[0]).toMatchObject({
      config_status: "STALE",
      client_status: "REQUESTED",
    });
    expect(other?.generic_xds_configs?.[0]?.xds_config).toBeUndefined();
    s.close();
    s2.close();
  });
});

describe("Fetch", () => {
  it("returns the current resources of the service's type", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cla("a"), cla("b")]));
    const eds = TYPED_SERVICES.find((t) => t.typeUrl === TYPE_URL.endpoint);
    const res = await unary(
      eds?.fetch ?? "",
      encodeDiscoveryRequest(req({ node, typeUrl: TYPE_URL.endpoint, resourceNames: ["b"] })),
      decodeDiscoveryResponse,
    );
    expect(res.ok && namesOf(res.value.resources)).toEqual(["b"]);
  });
});
