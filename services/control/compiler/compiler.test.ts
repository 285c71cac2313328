import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { SnapshotCache, TYPE_URL } from "../../../xds/index.js";
import type { Kind, StoredResource } from "../model/resource.js";
import { InstanceRegistry } from "../registry/instances.js";
import type { Change, Store } from "../store/store.js";
import { Compiler, instanceKey } from "./compiler.js";

let revision = 0;
function stored(kind: Kind, name: string, spec: Record<string, unknown>): StoredResource {
  revision++;
  return {
    apiVersion: "catena.dev/v1alpha1",
    kind,
    metadata: { name, resourceVersion: String(revision), generation: 1, uid: name, creationTimestamp: "" },
    spec,
  };
}

function chainSpec(name: string, port: number, qosConfig: Record<string, unknown>) {
  return stored("ServiceChain", name, {
    service: "web",
    ingress: { port },
    hops: [
      { function: "fw", config: { defaultAction: "allow" } },
      { function: "qos", config: qosConfig },
    ],
  });
}

function setup() {
  const cache = new SnapshotCache({ debounceMs: 0 });
  const instances = new InstanceRegistry();
  // compile() is driven by hand here; the store is only read by run().
  const compiler = new Compiler({ store: {} as Store, cache, instances, logger: pino({ level: "silent" }) });
  const put = (o: StoredResource) =>
    compiler.state.apply({ type: "created", object: o, revision } satisfies Change);
  put(
    stored("Service", "web", {
      network: "n",
      ports: [{ name: "http", port: 80 }],
      endpoints: [{ address: "10.0.0.1", port: 80 }],
    }),
  );
  put(stored("ServiceFunction", "fw", { type: "firewall" }));
  put(stored("ServiceFunction", "qos", { type: "qos" }));
  put(chainSpec("a", 8080, { maxConnections: 10 }));
  instances.streamOpened({ id: "fw-1", function: "fw", type: "firewall", address: "127.64.0.1" });
  instances.streamOpened({ id: "qos-1", function: "qos", type: "qos", address: "127.64.0.2" });
  compiler.compile();
  return { cache, instances, compiler, put };
}

const names = (cache: SnapshotCache, id: string, typeUrl: string) => [
  ...(cache.snapshot(instanceKey(id))?.resources(typeUrl).keys() ?? []),
];

describe("Compiler, data path", () => {
  it("publishes each instance's hop resources under its own key", () => {
    const { cache } = setup();
    expect(names(cache, "fw-1", TYPE_URL.listener)).toEqual(["a/0"]);
    expect(names(cache, "qos-1", TYPE_URL.listener)).toEqual(["a/1"]);
    expect(names(cache, "qos-1", TYPE_URL.endpoint)).toEqual(["a/1/next"]);
  });

  it("republishes only the instances whose resources changed", () => {
    const { cache, compiler, put } = setup();
    const fwBefore = cache.snapshot(instanceKey("fw-1"));
    const qosBefore = cache.snapshot(instanceKey("qos-1"));
    put(chainSpec("a", 8080, { maxConnections: 20 }));
    compiler.compile();
    expect(cache.snapshot(instanceKey("fw-1"))).toBe(fwBefore);
    expect(cache.snapshot(instanceKey("qos-1"))).not.toBe(qosBefore);
    // A compile with nothing changed publishes nothing.
    const qosAfter = cache.snapshot(instanceKey("qos-1"));
    compiler.compile();
    expect(cache.snapshot(instanceKey("qos-1"))).toBe(qosAfter);
  });

  it("an instance leaving drops its snapshot and updates the hop before it", () => {
    const { cache, compiler, instances } = setup();
    const fwBefore = cache.snapshot(instanceKey("fw-1"));
    instances.streamClosed("qos-1");
    compiler.compile();
    expect(cache.snapshot(instanceKey("qos-1"))).toBeUndefined();
    expect(cache.snapshot(instanceKey("fw-1"))).not.toBe(fwBefore);
    const chain = compiler.chains()[0];
    expect(chain?.stages.map((s) => s.instances)).toEqual([["fw-1"], []]);
    expect(chain?.ingress).toEqual([{ id: "fw-1", address: "127.64.0.1" }]);
  });

  it("two chains on one port sharing a function: the first by name keeps the port", () => {
    const { cache, compiler, put } = setup();
    put(chainSpec("b", 8080, {}));
    put(chainSpec("c", 9090, {}));
    compiler.compile();
    expect(names(cache, "fw-1", TYPE_URL.listener).sort()).toEqual(["a/0", "c/0"]);
    const b = compiler.chains().find((c) => c.name === "b");
    expect(b?.problem).toEqual({
      reason: "PortConflict",
      message: "instance fw-1 already listens on port 8080 for chain a (and 1 more)",
    });
    expect(b?.expected.size).toBe(0);
  });

  it("a chain whose function is gone reports it and compiles to nothing", () => {
    const { cache, compiler } = setup();
    compiler.state.apply({
      type: "deleted",
      object: stored("ServiceFunction", "qos", { type: "qos" }),
      revision,
    });
    compiler.compile();
    expect(compiler.chains()[0]?.problem).toMatchObject({ reason: "InvalidReference" });
    expect(names(cache, "fw-1", TYPE_URL.listener)).toEqual([]);
  });
});

describe("Compiler, vpn tunnels and secrets", () => {
  function vpnSetup() {
    const cache = new SnapshotCache({ debounceMs: 0 });
    const instances = new InstanceRegistry();
    const synced: string[][] = [];
    // A stand-in for the mesh CA's issuer (the real one is tested in services/control/ca).
    const certificates = {
      trustDomain: "example.org",
      rootPem: "ROOT",
      get: (id: string) => (id === "b-1" ? { certPem: `CERT ${id}` } : undefined),
      sync: (list: readonly { id: string }[]) => synced.push(list.map((i) => i.id)),
    };
    const compiler = new Compiler({
      store: {} as Store,
      cache,
      instances,
      logger: pino({ level: "silent" }),
      certificates,
    });
    const put = (o: StoredResource) =>
      compiler.state.apply({ type: "created", object: o, revision } satisfies Change);
    put(stored("Service", "web", { network: "n", ports: [{ name: "http", port: 80 }], endpoints: [] }));
    put(stored("ServiceFunction", "vpn-a", { type: "vpn", config: { peer: "vpn-b" } }));
    put(stored("ServiceFunction", "vpn-b", { type: "vpn" }));
    const chain = (name: string, authority: string) =>
      stored("ServiceChain", name, {
        service: "web",
        ingress: { port: name === "a" ? 8080 : 8081 },
        hops: [{ function: "vpn-a", config: { authority } }],
      });
    instances.streamOpened({ id: "a-1", function: "vpn-a", type: "vpn", address: "127.67.0.2", csr: "CSR" });
    instances.streamOpened({ id: "b-1", function: "vpn-b", type: "vpn", address: "127.68.0.2", csr: "CSR" });
    return { cache, compiler, put, chain, synced };
  }

  it("each peer instance gets one terminating listener per port with every chain's route, and its own secrets", () => {
    const { cache, compiler, put, chain, synced } = vpnSetup();
    put(chain("a", "one"));
    put(chain("b", "two"));
    compiler.compile();
    expect(names(cache, "b-1", TYPE_URL.listener)).toEqual(["vpn/15008"]);
    expect(names(cache, "b-1", TYPE_URL.cluster).sort()).toEqual(["a/0/exit", "b/0/exit"]);
    expect(names(cache, "b-1", TYPE_URL.secret).sort()).toEqual([
      "ROOTCA",
      "spiffe://example.org/function/vpn-b/b-1",
    ]);
    // a-1 has no certificate yet: no secrets, and nobody else's.
    expect(names(cache, "a-1", TYPE_URL.secret)).toEqual([]);
    expect(synced.at(-1)).toEqual(["a-1", "b-1"]);
    const a = compiler.chains().find((c) => c.name === "a");
    expect(
      a?.expected
        .get("b-1")
        ?.map((r) => r.name)
        .sort(),
    ).toEqual(["a/0/exit", "a/0/exit", "vpn/15008"]);
  });

  it("a second chain claiming an authority on the same peer and port is left out", () => {
    const { cache, compiler, put, chain } = vpnSetup();
    put(chain("a", "same"));
    put(chain("b", "same"));
    compiler.compile();
    expect(compiler.chains().find((c) => c.name === "b")?.problem).toMatchObject({
      reason: "AuthorityConflict",
    });
    expect(names(cache, "b-1", TYPE_URL.cluster)).toEqual(["a/0/exit"]);
  });
});
