import { describe, expect, it } from "vitest";
import type { NodeStatus, ResourceSyncState, StatusReader, TypeStatus } from "../../../xds/index.js";
import { TYPE_URL } from "../../../xds/index.js";
import type { ChainProgress, ExpectedResource } from "../compiler/compiler.js";
import type { StoredResource } from "../model/resource.js";
import type { FunctionInstance } from "../registry/instances.js";
import { applyDesired, chainStatus, functionStatus, statusSays } from "./datapath-status.js";

type Held = Record<string, { version: string; state: ResourceSyncState }>;

/** A status table: per node, per type, the resources it holds and the type's versions. */
function reader(
  nodes: Record<string, Record<string, { held?: Held } & Partial<Omit<TypeStatus, "resources">>>>,
): StatusReader {
  const table = new Map<string, NodeStatus>();
  for (const [id, types] of Object.entries(nodes)) {
    const map = new Map<string, TypeStatus>();
    for (const [typeUrl, t] of Object.entries(types)) {
      const { held, ...rest } = t;
      map.set(typeUrl, {
        typeUrl,
        lastUpdated: new Date(0),
        resources: new Map(Object.entries(held ?? {})),
        ...rest,
      });
    }
    table.set(id, {
      node: { id, cluster: "f", metadata: {} },
      streams: 1,
      connectedAt: new Date(0),
      types: map,
    });
  }
  return { nodes: () => [...table.values()], node: (id) => table.get(id) };
}

const L: ExpectedResource = { typeUrl: TYPE_URL.listener, name: "c/0", version: "v1" };
const C: ExpectedResource = { typeUrl: TYPE_URL.cluster, name: "c/0/next", version: "v2" };

function chain(over: Partial<ChainProgress> = {}): ChainProgress {
  return {
    name: "c",
    port: 8080,
    stages: [{ name: "c/0", hops: [0], function: "fw", instances: ["fw-1"] }],
    expected: new Map([["fw-1", [L, C]]]),
    ingress: [{ id: "fw-1", address: "127.64.0.1" }],
    ...over,
  };
}

const acked = reader({
  "fw-1": {
    [TYPE_URL.listener]: { held: { "c/0": { version: "v1", state: "acked" } } },
    [TYPE_URL.cluster]: { held: { "c/0/next": { version: "v2", state: "acked" } } },
  },
});

describe("chain status", () => {
  it("every expected resource ACKed at its version: Programmed, Ready, ingress", () => {
    const s = chainStatus(chain(), acked);
    expect(s.conditions).toEqual([
      expect.objectContaining({ type: "Programmed", status: "True", reason: "Acked" }),
      { type: "Ready", status: "True", reason: "Ready", message: "clients connect to 127.64.0.1:8080" },
    ]);
    expect(s.fields).toEqual({
      ingress: { address: "127.64.0.1", port: 8080 },
      ingresses: [{ address: "127.64.0.1", port: 8080 }],
    });
  });

  it("an older version ACKed is still awaited", () => {
    const r = reader({
      "fw-1": {
        [TYPE_URL.listener]: { held: { "c/0": { version: "v0", state: "acked" } } },
        [TYPE_URL.cluster]: { held: { "c/0/next": { version: "v2", state: "acked" } } },
      },
    });
    const [programmed, ready] = chainStatus(chain(), r).conditions;
    expect(programmed).toMatchObject({
      status: "Unknown",
      reason: "AwaitingAck",
      message: expect.stringContaining("fw-1"),
    });
    expect(ready).toMatchObject({ status: "Unknown", reason: "AwaitingAck" });
  });

  it("a NACKed resource makes it False with the instance and the error", () => {
    const r = reader({
      "fw-1": {
        [TYPE_URL.listener]: {
          held: { "c/0": { version: "v1", state: "nacked" } },
          errorDetail: { code: 3, message: "filter_chains[0]: bad" },
        },
        [TYPE_URL.cluster]: { held: { "c/0/next": { version: "v2", state: "acked" } } },
      },
    });
    const [programmed, ready] = chainStatus(chain(), r).conditions;
    expect(programmed).toEqual({
      type: "Programmed",
      status: "False",
      reason: "Nacked",
      message: "fw-1 rejected Listener c/0: filter_chains[0]: bad",
    });
    expect(ready).toMatchObject({ status: "False", reason: "Nacked" });
  });

  it("a hop without instances: not Ready, NoInstances, naming the hop", () => {
    const s = chainStatus(
      chain({
        stages: [
          { name: "c/0", hops: [0], function: "fw", instances: ["fw-1"] },
          { name: "c/1", hops: [1], function: "qos", instances: [] },
        ],
      }),
      acked,
    );
    expect(s.conditions[1]).toEqual({
      type: "Ready",
      status: "False",
      reason: "NoInstances",
      message: "hop 1 (qos) has no connected instance with an address",
    });
  });

  it("nothing compiled: no ingress, Programmed False", () => {
    const s = chainStatus(chain({ expected: new Map(), ingress: [], stages: [] }), acked);
    expect(s.conditions[0]).toMatchObject({ status: "False", reason: "NoInstances" });
    expect(s.fields).toEqual({ ingress: undefined, ingresses: undefined });
  });

  it("a problem (missing reference, port conflict) is both conditions' reason", () => {
    const s = chainStatus(chain({ problem: { reason: "PortConflict", message: "taken" } }), acked);
    expect(s.conditions.map((c) => [c.type, c.status, c.reason])).toEqual([
      ["Programmed", "False", "PortConflict"],
      ["Ready", "False", "PortConflict"],
    ]);
  });
});

describe("ServiceFunction status", () => {
  const fn = (replicas?: number) =>
    ({
      kind: "ServiceFunction",
      metadata: { name: "fw" },
      spec: { type: "firewall", ...(replicas === undefined ? {} : { replicas }) },
    }) as unknown as StoredResource;
  const inst = (id: string): FunctionInstance => ({ id, function: "fw", type: "firewall", connectedAt: "" });
  const synced = (version: string) => ({
    [TYPE_URL.listener]: { sentVersion: version, ackedVersion: version },
  });

  it.each([
    {
      name: "no instance",
      replicas: 1,
      ids: [],
      want: ["False", "NoInstances", "0 of 1 instance(s) connected"],
    },
    {
      name: "fewer than replicas",
      replicas: 2,
      ids: ["a"],
      want: ["False", "MissingInstances", "1 of 2 instance(s) connected"],
    },
    {
      name: "all replicas",
      replicas: 2,
      ids: ["a", "b"],
      want: ["True", "InstancesConnected", "2 of 2 instance(s) connected"],
    },
    { name: "replicas 0", replicas: 0, ids: [], want: ["True", "NoReplicas", "replicas is 0"] },
  ])("Ready: $name", ({ replicas, ids, want }) => {
    const r = reader(Object.fromEntries(ids.map((id) => [id, synced("v")])));
    const ready = functionStatus(fn(replicas), ids.map(inst), r).conditions.find((c) => c.type === "Ready");
    expect([ready?.status, ready?.reason, ready?.message]).toEqual(want);
  });

  it("Programmed: True once everything sent is ACKed, False on a held NACK, unsaid while in flight", () => {
    const programmed = (r: StatusReader) =>
      functionStatus(fn(), [inst("a")], r).conditions.find((c) => c.type === "Programmed");
    expect(programmed(reader({ a: synced("v") }))).toMatchObject({ status: "True", reason: "Acked" });
    expect(
      programmed(
        reader({
          a: {
            [TYPE_URL.listener]: {
              sentVersion: "v2",
              ackedVersion: "v1",
              nackedVersion: "v2",
              errorDetail: { code: 3, message: "no" },
            },
          },
        }),
      ),
    ).toEqual({
      type: "Programmed",
      status: "False",
      reason: "Nacked",
      message: "a rejected Listener version v2: no",
    });
    expect(
      programmed(reader({ a: { [TYPE_URL.listener]: { sentVersion: "v2", ackedVersion: "v1" } } })),
    ).toBeUndefined();
  });
});

describe("status writes", () => {
  it("applyDesired sets conditions and fields, removes undefined fields, keeps transition times", () => {
    const before = {
      observedGeneration: 3,
      ingress: { address: "127.64.0.1", port: 1 },
      conditions: [
        { type: "Ready", status: "True" as const, reason: "Ready", message: "m", lastTransitionTime: "t0" },
      ],
    };
    const desired = {
      conditions: [{ type: "Ready", status: "True" as const, reason: "Ready", message: "m2" }],
      fields: { ingress: undefined, ingresses: undefined },
    };
    expect(statusSays(before, desired)).toBe(false);
    const after = applyDesired(before, desired, new Date(1000));
    expect(after).toEqual({
      observedGeneration: 3,
      conditions: [
        { type: "Ready", status: "True", reason: "Ready", message: "m2", lastTransitionTime: "t0" },
      ],
    });
    expect(statusSays(after, desired)).toBe(true);
  });
});
