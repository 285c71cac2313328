// A real proxyless gRPC client (@grpc/grpc-js-xds) resolves xds:///svc through the AdsServer and
// reaches two real gRPC backends, with resources made by xds/resources builders.
import {
  Client,
  credentials,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceError,
  type sendUnaryData,
} from "@grpc/grpc-js";
import { register } from "@grpc/grpc-js-xds";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Snapshot } from "../../xds/cache/snapshot.js";
import { SnapshotCache } from "../../xds/cache/snapshot-cache.js";
import { apiListener } from "../../xds/resources/api-listener.js";
import { edsCluster } from "../../xds/resources/cluster.js";
import { clusterLoadAssignment } from "../../xds/resources/cluster-load-assignment.js";
import { routeConfiguration } from "../../xds/resources/route-configuration.js";
import { AdsServer } from "../../xds/server/ads-server.js";
import type { AckEvent } from "../../xds/server/callbacks.js";
import { TYPE_URL } from "../../xds/type-urls.js";
import { rawService } from "../../xds/wire/services.js";

const ECHO = "/catena.test.Echo/Who";
const identity = (b: Buffer) => b;

async function backend(name: string): Promise<{ server: Server; port: number }> {
  const server = new Server();
  server.addService(rawService([{ path: ECHO, requestStream: false, responseStream: false }]), {
    Who: (_call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => cb(null, Buffer.from(name)),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { server, port };
}

function call(client: Client): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      ECHO,
      identity,
      identity,
      Buffer.alloc(0),
      { deadline: Date.now() + 10_000 },
      (err: ServiceError | null, res?: Buffer) => (err || !res ? reject(err) : resolve(res.toString())),
    );
  });
}

const NODE_ID = "proxyless-1";
let cache: SnapshotCache;
let ads: AdsServer;
let backends: { server: Server; port: number }[];
const acks: AckEvent[] = [];

beforeAll(async () => {
  backends = [await backend("b1"), await backend("b2")];
  cache = new SnapshotCache({ debounceMs: 0 });
  ads = new AdsServer({ cache, callbacks: { onAck: (e) => acks.push(e) } });
  const port = await ads.listen("127.0.0.1:0");
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [
      { server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: "insecure" }], server_features: ["xds_v3"] },
    ],
    node: { id: NODE_ID, cluster: "proxyless", locality: {} },
  });
  register();
});

afterAll(async () => {
  await ads.close();
  for (const b of backends) b.server.forceShutdown();
});

describe("grpc-js-xds client", () => {
  it("resolves xds:///svc via LDS, RDS, CDS, EDS and reaches both backends", async () => {
    cache.setSnapshot(
      NODE_ID,
      Snapshot.from([
        apiListener({ name: "svc", routeConfigName: "svc-routes" }),
        routeConfiguration({
          name: "svc-routes",
          virtualHosts: [{ name: "svc", domains: ["*"], routes: [{ cluster: "svc-backends" }] }],
        }),
        edsCluster({ name: "svc-backends" }),
        clusterLoadAssignment({
          clusterName: "svc-backends",
          endpoints: backends.map((b) => ({ address: "127.0.0.1", port: b.port })),
        }),
      ]),
    );
    const client = new Client("xds:///svc", credentials.createInsecure());
    try {
      const seen = new Set<string>();
      for (let i = 0; i < 20 && seen.size < 2; i++) seen.add(await call(client));
      expect([...seen].sort()).toEqual(["b1", "b2"]);
      const acked = new Set(acks.filter((a) => a.node.id === NODE_ID).map((a) => a.typeUrl));
      expect(acked).toEqual(
        new Set([TYPE_URL.listener, TYPE_URL.route, TYPE_URL.cluster, TYPE_URL.endpoint]),
      );
      expect(ads.status.node(NODE_ID)?.types.get(TYPE_URL.listener)?.nackedVersion).toBeUndefined();

      // An endpoint change reaches the client: only b2 remains.
      const b2 = backends[1];
      cache.setSnapshot(
        NODE_ID,
        (cache.snapshot(NODE_ID) ?? Snapshot.empty()).update([
          clusterLoadAssignment({
            clusterName: "svc-backends",
            endpoints: [{ address: "127.0.0.1", port: b2?.port ?? 0 }],
          }),
        ]),
      );
      let last = "";
      for (let i = 0; i < 50; i++) {
        last = await call(client);
        if (last === "b2" && (await call(client)) === "b2" && (await call(client)) === "b2") break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(last).toBe("b2");
    } finally {
      client.close();
    }
  });
});
