import { describe, expect, it } from "vitest";
import { apiListener } from "../resources/api-listener.js";
import { edsCluster } from "../resources/cluster.js";
import { clusterLoadAssignment } from "../resources/cluster-load-assignment.js";
import { routeConfiguration } from "../resources/route-configuration.js";
import { TYPE_URL } from "../type-urls.js";
import { Snapshot } from "./snapshot.js";

const cla = (name: string, port = 80) =>
  clusterLoadAssignment({ clusterName: name, endpoints: [{ address: "10.0.0.1", port }] });

describe("Snapshot", () => {
  it("resource version is a hash of its encoding", () => {
    const a = Snapshot.from([cla("web")]);
    const b = Snapshot.from([cla("web")]);
    const c = Snapshot.from([cla("web", 81)]);
    expect(a.get(TYPE_URL.endpoint, "web")?.version).toBe(b.get(TYPE_URL.endpoint, "web")?.version);
    expect(a.get(TYPE_URL.endpoint, "web")?.version).not.toBe(c.get(TYPE_URL.endpoint, "web")?.version);
  });

  it("type version does not depend on insertion order", () => {
    const a = Snapshot.from([cla("a"), cla("b")]);
    const b = Snapshot.from([cla("b"), cla("a")]);
    expect(a.version(TYPE_URL.endpoint)).toBe(b.version(TYPE_URL.endpoint));
    expect(a.version(TYPE_URL.endpoint)).not.toBe(Snapshot.from([cla("a")]).version(TYPE_URL.endpoint));
  });

  it("duplicate names are rejected", () => {
    expect(() => Snapshot.from([cla("a"), cla("a", 81)])).toThrow(
      expect.objectContaining({ code: "XDS_ERR_INVALID_OPTION" }),
    );
  });

  it("update reuses unchanged resources", () => {
    const a = Snapshot.from([cla("a"), cla("b")]);
    const b = a.update([cla("c")], [{ typeUrl: TYPE_URL.endpoint, name: "a" }]);
    expect([...b.resources(TYPE_URL.endpoint).keys()].sort()).toEqual(["b", "c"]);
    expect(b.get(TYPE_URL.endpoint, "b")).toBe(a.get(TYPE_URL.endpoint, "b"));
  });

  it("cluster with missing endpoints is inconsistent", () => {
    const s = Snapshot.from([edsCluster({ name: "web" })]);
    expect(s.consistent()).toEqual([
      expect.objectContaining({ message: `refers to missing ${TYPE_URL.endpoint} web` }),
    ]);
    expect(Snapshot.from([edsCluster({ name: "web" }), cla("web")]).consistent()).toEqual([]);
  });

  it("listener with missing route configuration is inconsistent", () => {
    const l = apiListener({ name: "svc", routeConfigName: "r" });
    expect(Snapshot.from([l]).consistent()).toHaveLength(1);
    const r = routeConfiguration({ name: "r", virtualHosts: [] });
    expect(Snapshot.from([l, r]).consistent()).toEqual([]);
  });
});
