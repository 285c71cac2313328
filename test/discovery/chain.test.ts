// A Service fronted by a chain resolves to the chain's ingress: its first hop's connected instances,
// at the chain's port (DNS A and SRV, and the lookup API); its self-registered endpoints feed the chain.
import { Resolver } from "node:dns/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdsClient, type ClusterLoadAssignmentJson, endpointType, listenerType } from "../../xds/index.js";
import { getJson, post } from "../support/control.js";
import { BASE_MANIFESTS, eventually, type Mesh, startMesh } from "./support.js";

const CHAIN = `
apiVersion: catena.dev/v1alpha1
kind: ServiceFunction
metadata: {name: edge-fw}
spec: {type: firewall, replicas: 1}
---
apiVersion: catena.dev/v1alpha1
kind: ServiceChain
metadata: {name: web-edge}
spec:
  service: web
  ingress: {port: 8080}
  hops: [{function: edge-fw, config: {defaultAction: allow}}]
`;

describe("discovery of a chain-fronted service", () => {
  let mesh: Mesh;
  let fw: AdsClient;
  let resolver: Resolver;

  beforeAll(async () => {
    mesh = await startMesh(`${BASE_MANIFESTS}---${CHAIN}`);
    // The firewall instance: an xDS node of the ServiceFunction, with its own address.
    fw = new AdsClient({
      servers: [mesh.control.server.xdsAddr],
      node: { id: "fw-1", cluster: "edge-fw", metadata: { type: "firewall", address: "127.64.0.9" } },
    });
    fw.watch(listenerType, "*");
    fw.watch(endpointType, "*");
    resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`${mesh.dnsHost}:${mesh.dnsPort}`]);
  }, 30_000);
  afterAll(async () => {
    await fw?.close();
    await mesh?.stop();
  });

  it("A and SRV answer the ingress instance at the chain's port; the lookup says so", async () => {
    await eventually(async () =>
      (await resolver.resolve4("web.catena").catch(() => [])).join() === "127.64.0.9" ? true : undefined,
    );
    const srv = await resolver.resolveSrv("_http._tcp.web.catena");
    expect(srv.map((s) => `${s.name}:${s.port}`)).toEqual(["127-64-0-9.web.catena:8080"]);
    const body = (await getJson(mesh.control.url, "/v1/services/web/endpoints")).body as {
      endpoints: { address: string; port: number; source: string; owner: string }[];
    };
    expect(body.endpoints).toEqual([
      expect.objectContaining({ address: "127.64.0.9", port: 8080, source: "chain", owner: "fw-1" }),
    ]);
  });

  it("a self-registered endpoint of the service goes to the chain's last hop, not to DNS", async () => {
    await post(mesh.control.url, "/v1/services/web/endpoints", {
      address: "127.0.0.33",
      port: 9033,
      ttlSeconds: 30,
    });
    await eventually(() => {
      const cla = fw.resources(endpointType).get("web-edge/0/next")?.value as
        | ClusterLoadAssignmentJson
        | undefined;
      return JSON.stringify(cla ?? {}).includes("127.0.0.33") ? true : undefined;
    });
    expect(await resolver.resolve4("web.catena")).toEqual(["127.64.0.9"]);
  });

  it("when the instance leaves, the name has no address (NODATA), not NXDOMAIN", async () => {
    await fw.close();
    await eventually(async () => {
      const err = await resolver.resolve4("web.catena").then(
        () => undefined,
        (e: { code: string }) => e.code,
      );
      return err === "ENODATA" ? true : undefined;
    });
  });
});
