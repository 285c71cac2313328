import { describe, expect, it } from "vitest";
import type { ErrorDetail } from "../errors.js";
import {
  type BatchEntry,
  checkDeletes,
  checkReferences,
  indexResources,
  referencesOf,
} from "./cross-checks.js";
import { locateDetail, parseManifests } from "./manifest.js";
import type { Kind, Resource } from "./resource.js";
import { validateManifests } from "./validate-manifests.js";

function obj(kind: Kind, name: string, spec: Record<string, unknown>): Resource {
  return { apiVersion: "catena.dev/v1alpha1", kind, metadata: { name }, spec };
}

const edge = obj("Network", "edge", { cidr: "127.64.0.0/16", exclude: ["127.64.255.0/24"] });
const payments = obj("Network", "payments", { cidr: "127.65.0.0/16" });
const web = obj("Service", "web", { network: "edge", ports: [{ name: "http", port: 8080 }] });
const fw = obj("ServiceFunction", "edge-fw", { type: "firewall" });
const qos = obj("ServiceFunction", "edge-qos", { type: "qos", config: { maxConnections: 10 } });
const lb = obj("ServiceFunction", "edge-lb", { type: "loadbalancer" });
const vpnA = obj("ServiceFunction", "vpn-a", { type: "vpn" });
const vpnB = obj("ServiceFunction", "vpn-b", { type: "vpn", config: { peer: "vpn-a" } });
const waf = obj("ServiceFunction", "waf", { type: "acme-waf", plugin: "./waf.js" });

const chain = (name: string, spec: Record<string, unknown> = {}) =>
  obj("ServiceChain", name, {
    service: "web",
    ingress: { port: 8080 },
    hops: [{ function: "edge-fw", config: { defaultAction: "deny" } }, { function: "edge-qos" }],
    ...spec,
  });

const store = [edge, payments, web, fw, qos, lb, vpnA, vpnB, waf];

interface Case {
  name: string;
  batch: Resource[];
  /** The store before the request; default: `store`. */
  existing?: Resource[];
  errors: Partial<ErrorDetail>[];
}

const cases: Case[] = [
  { name: "a chain over existing functions passes", batch: [chain("web-edge")], errors: [] },
  {
    name: "a hop may name a function created in the same request",
    existing: [edge, web],
    batch: [
      obj("ServiceFunction", "edge-fw", { type: "firewall" }),
      chain("web-edge", { hops: [{ function: "edge-fw", config: { defaultAction: "allow" } }] }),
    ],
    errors: [],
  },
  {
    name: "a hop naming a missing function fails",
    batch: [
      chain("web-edge", {
        hops: [{ function: "edge-fw", config: { defaultAction: "deny" } }, { function: "edge-qoss" }],
      }),
    ],
    errors: [
      {
        document: 0,
        kind: "ServiceChain",
        name: "web-edge",
        path: "spec.hops[1].function",
        message: 'ServiceFunction "edge-qoss" does not exist',
      },
    ],
  },
  {
    name: "a chain's service must exist",
    batch: [chain("api-edge", { service: "api" })],
    errors: [{ path: "spec.service", message: 'Service "api" does not exist' }],
  },
  {
    name: "a hop's config is checked against its function's type",
    batch: [
      chain("web-edge", {
        hops: [
          {
            function: "edge-fw",
            config: { defaultAction: "block", allow: [{ from: [{ cidr: "10.0.0.1/8" }] }] },
          },
          { function: "edge-qos", config: { bandwidth: { burstBytes: 10 } } },
          { function: "edge-lb", config: { policy: "fastest" } },
        ],
      }),
    ],
    errors: [
      { path: "spec.hops[0].config.defaultAction", message: "must be one of: allow, deny" },
      {
        path: "spec.hops[0].config.allow[0].from[0].cidr",
        message: "10.0.0.1/8 is not a network address; did you mean 10.0.0.0/8",
      },
      { path: "spec.hops[1].config.bandwidth.bytesPerSecond", message: "is required" },
      {
        path: "spec.hops[2].config.policy",
        message: "must be one of: round_robin, least_request, ring_hash, maglev, random",
      },
    ],
  },
  {
    name: "a required field missing from a firewall hop (no defaults in the function)",
    batch: [chain("web-edge", { hops: [{ function: "edge-fw" }] })],
    errors: [{ path: "spec.hops[0].config.defaultAction", message: "is required" }],
  },
  {
    name: "the function's config supplies defaults the hop may rely on",
    existing: [
      ...store.filter((r) => r !== fw),
      obj("ServiceFunction", "edge-fw", { type: "firewall", config: { defaultAction: "deny" } }),
    ],
    batch: [chain("web-edge", { hops: [{ function: "edge-fw", config: { allow: [{ ports: [80] }] } }] })],
    errors: [],
  },
  {
    name: "a third-party function takes any config",
    batch: [
      chain("web-edge", { hops: [{ function: "waf", config: { rules: ["x"], anything: { goes: true } } }] }),
    ],
    errors: [],
  },
  {
    name: "a vpn hop's peer must be another vpn function",
    batch: [
      chain("a", { hops: [{ function: "vpn-a", config: { peer: "vpn-b" } }] }),
      obj("Service", "web2", { network: "edge", ports: [{ name: "http", port: 80 }] }),
      chain("b", { service: "web2", hops: [{ function: "vpn-a", config: { peer: "edge-fw" } }] }),
      obj("Service", "web3", { network: "edge", ports: [{ name: "http", port: 80 }] }),
      chain("c", { service: "web3", hops: [{ function: "vpn-a", config: { peer: "vpn-z" } }] }),
    ],
    errors: [
      {
        document: 2,
        path: "spec.hops[0].config.peer",
        message: 'ServiceFunction "edge-fw" has type firewall, not vpn',
      },
      { document: 4, path: "spec.hops[0].config.peer", message: 'ServiceFunction "vpn-z" does not exist' },
    ],
  },
  {
    name: "a vpn function's default peer must exist and not be itself",
    batch: [
      obj("ServiceFunction", "vpn-c", { type: "vpn", config: { peer: "vpn-c" } }),
      obj("ServiceFunction", "vpn-d", { type: "vpn", config: { peer: "nowhere" } }),
    ],
    errors: [
      {
        document: 0,
        path: "spec.config.peer",
        message: "must name another vpn ServiceFunction, not this one",
      },
      { document: 1, path: "spec.config.peer", message: 'ServiceFunction "nowhere" does not exist' },
    ],
  },
  {
    name: "a service's network must exist",
    batch: [obj("Service", "api", { network: "core", ports: [{ name: "http", port: 80 }] })],
    errors: [{ path: "spec.network", message: 'Network "core" does not exist' }],
  },
  {
    name: "a workload's networks must exist and its addresses fit them",
    batch: [
      obj("Workload", "vm-1", {
        kind: "vm",
        networks: [
          { name: "edge", address: "127.65.0.1" },
          { name: "payments", address: "127.65.0.0" },
          { name: "core" },
        ],
      }),
      obj("Workload", "vm-2", { kind: "vm", networks: [{ name: "edge", address: "127.64.255.7" }] }),
      obj("Workload", "vm-3", { kind: "vm", networks: [{ name: "edge", address: "fd00::1" }] }),
    ],
    errors: [
      { document: 0, path: "spec.networks[2].name", message: 'Network "core" does not exist' },
      {
        document: 0,
        path: "spec.networks[0].address",
        message: '127.65.0.1 is not in Network "edge" (127.64.0.0/16)',
      },
      {
        document: 0,
        path: "spec.networks[1].address",
        message: '127.65.0.0 is the network address of Network "payments"',
      },
      {
        document: 1,
        path: "spec.networks[0].address",
        message: '127.64.255.7 is in a range Network "edge" excludes (127.64.255.0/24)',
      },
      {
        document: 2,
        path: "spec.networks[0].address",
        message: 'fd00::1 is not in Network "edge" (127.64.0.0/16)',
      },
    ],
  },
  {
    name: "a workload may not take an address another already has",
    existing: [
      ...store,
      obj("Workload", "old", { kind: "vm", networks: [{ name: "edge", address: "127.64.0.40" }] }),
    ],
    batch: [
      obj("Workload", "new", { kind: "vm", networks: [{ name: "edge", address: "127.64.0.40" }] }),
      obj("Workload", "newer", { kind: "vm", networks: [{ name: "payments", address: "127.65.0.9" }] }),
      obj("Workload", "newest", { kind: "vm", networks: [{ name: "payments", address: "127.65.0.9" }] }),
    ],
    errors: [
      {
        document: 0,
        path: "spec.networks[0].address",
        message: "127.64.0.40 is already used by Workload/old",
      },
      {
        document: 2,
        path: "spec.networks[0].address",
        message: "127.65.0.9 is already used by Workload/newer",
      },
    ],
  },
  {
    name: "a chain's ingress address lies in its service's network",
    batch: [chain("web-edge", { ingress: { port: 80, address: "127.65.0.1" } })],
    errors: [
      { path: "spec.ingress.address", message: '127.65.0.1 is not in Network "edge" (127.64.0.0/16)' },
    ],
  },
  {
    name: "networks may not overlap the store's or each other",
    batch: [
      obj("Network", "edge-2", { cidr: "127.64.128.0/17" }),
      obj("Network", "v6-a", { cidr: "fd00::/16" }),
      obj("Network", "v6-b", { cidr: "fd00:1::/32" }),
      obj("Network", "other", { cidr: "10.0.0.0/8" }),
    ],
    errors: [
      { document: 0, path: "spec.cidr", message: '127.64.128.0/17 overlaps Network "edge" (127.64.0.0/16)' },
      { document: 2, path: "spec.cidr", message: 'fd00:1::/32 overlaps Network "v6-a" (fd00::/16)' },
    ],
  },
  {
    name: "a network may change its own CIDR without overlapping itself",
    batch: [obj("Network", "payments", { cidr: "127.65.0.0/17" })],
    errors: [],
  },
  {
    name: "shrinking a network must keep the addresses objects outside the request hold",
    existing: [
      ...store,
      obj("Workload", "vm", { kind: "vm", networks: [{ name: "edge", address: "127.64.200.1" }] }),
    ],
    batch: [obj("Network", "edge", { cidr: "127.64.0.0/17" })],
    errors: [
      { path: "spec.cidr", message: 'Workload/vm: 127.64.200.1 is not in Network "edge" (127.64.0.0/17)' },
    ],
  },
  {
    name: "a policy's network peers must exist",
    batch: [
      obj("NetworkPolicy", "p", {
        subject: { selector: {} },
        ingress: [{ from: [{ network: "edge" }, { network: "dmz" }] }],
        egress: [{ to: [{ network: "core" }] }],
        deny: [{ from: [{ network: "edge" }], to: [{ network: "lab" }] }],
      }),
    ],
    errors: [
      { path: "spec.ingress[0].from[1].network", message: 'Network "dmz" does not exist' },
      { path: "spec.egress[0].to[0].network", message: 'Network "core" does not exist' },
      { path: "spec.deny[0].to[0].network", message: 'Network "lab" does not exist' },
    ],
  },
  {
    name: "the same object twice in one request",
    batch: [fw, obj("ServiceFunction", "edge-fw", { type: "qos" })],
    errors: [
      {
        document: 1,
        path: "metadata.name",
        message: "ServiceFunction/edge-fw is also defined by an earlier document",
      },
    ],
  },
  {
    name: "one chain per service",
    existing: [...store, chain("web-edge")],
    batch: [chain("web-edge-2")],
    errors: [{ path: "spec.service", message: 'Service "web" is already fronted by ServiceChain/web-edge' }],
  },
];

describe("checkReferences", () => {
  it.each(cases)("$name", ({ batch, existing = store, errors }) => {
    const entries: BatchEntry[] = batch.map((resource, index) => ({ index, resource }));
    const { get, list } = indexResources(existing);
    const found = checkReferences(entries, get, list);
    expect(found).toHaveLength(errors.length);
    for (const expected of errors) expect(found).toContainEqual(expect.objectContaining(expected));
  });

  it("without a list, checks across a kind cover the request only", () => {
    const { get } = indexResources(store);
    const errors = checkReferences(
      [{ index: 0, resource: obj("Network", "edge-2", { cidr: "127.64.0.0/24" }) }],
      get,
    );
    expect(errors).toEqual([]);
  });
});

describe("checkDeletes", () => {
  const users = [
    ...store,
    chain("web-edge"),
    obj("Workload", "vm", { kind: "vm", networks: [{ name: "payments" }] }),
  ];

  it.each([
    {
      name: "a function a chain uses",
      deletes: [{ kind: "ServiceFunction" as Kind, name: "edge-fw" }],
      messages: ['ServiceFunction "edge-fw" is used by ServiceChain/web-edge'],
    },
    {
      name: "a function and the chain using it together",
      deletes: [
        { kind: "ServiceChain" as Kind, name: "web-edge" },
        { kind: "ServiceFunction" as Kind, name: "edge-fw" },
      ],
      messages: [],
    },
    {
      name: "a network a service and a workload use",
      deletes: [
        { kind: "Network" as Kind, name: "edge" },
        { kind: "Network" as Kind, name: "payments" },
      ],
      messages: ['Network "edge" is used by Service/web', 'Network "payments" is used by Workload/vm'],
    },
    {
      name: "a vpn function another names as its peer",
      deletes: [{ kind: "ServiceFunction" as Kind, name: "vpn-a" }],
      messages: ['ServiceFunction "vpn-a" is used by ServiceFunction/vpn-b'],
    },
    {
      name: "a service its chain fronts",
      deletes: [{ kind: "Service" as Kind, name: "web" }],
      messages: ['Service "web" is used by ServiceChain/web-edge'],
    },
    {
      name: "an unused function",
      deletes: [{ kind: "ServiceFunction" as Kind, name: "edge-lb" }],
      messages: [],
    },
  ])("$name", ({ deletes, messages }) => {
    const entries = deletes.map((d, index) => ({ index, ...d }));
    const keys = new Set(deletes.map((d) => `${d.kind}/${d.name}`));
    const remaining = users.filter((r) => !keys.has(`${r.kind}/${r.metadata.name}`));
    const errors = checkDeletes(entries, remaining);
    expect(errors.map((e) => e.message)).toEqual(messages);
    for (const e of errors) expect(e).toMatchObject({ path: "" });
  });

  it("names the request's document", () => {
    const [error] = checkDeletes([{ index: 3, kind: "ServiceFunction", name: "edge-qos" }], users);
    expect(error).toEqual({
      document: 3,
      kind: "ServiceFunction",
      name: "edge-qos",
      path: "",
      message: 'ServiceFunction "edge-qos" is used by ServiceChain/web-edge',
    });
  });
});

describe("referencesOf", () => {
  it("lists a chain's references with their paths", () => {
    const { get } = indexResources(store);
    const c = chain("x", { hops: [{ function: "vpn-b" }, { function: "waf", config: { peer: "edge-fw" } }] });
    expect(referencesOf(c, get)).toEqual([
      { kind: "Service", name: "web", path: "spec.service" },
      { kind: "ServiceFunction", name: "vpn-b", path: "spec.hops[0].function" },
      // vpn-b's own config supplies the peer; waf is third-party, so its `peer` means nothing to us.
      { kind: "ServiceFunction", name: "vpn-a", path: "spec.hops[0].config.peer" },
      { kind: "ServiceFunction", name: "waf", path: "spec.hops[1].function" },
    ]);
  });
});

describe("cross-check errors located in the source", () => {
  it("points at the hop's function and at the config field in YAML", () => {
    const text = [
      "apiVersion: catena.dev/v1alpha1",
      "kind: ServiceChain",
      "metadata: {name: web-edge}",
      "spec:",
      "  service: web",
      "  ingress: {port: 8080}",
      "  hops:",
      "    - function: edge-fw",
      "      config: {defaultAction: maybe}",
      "    - function: edge-qoss",
    ].join("\n");
    const { resources, errors } = validateManifests(text);
    expect(errors).toEqual([]);
    const { get, list } = indexResources(store);
    const documents = parseManifests(text).documents;
    const located = checkReferences(resources, get, list).map((d) =>
      locateDetail(documents[d.document!]!, d),
    );
    expect(located).toEqual([
      expect.objectContaining({
        path: "spec.hops[1].function",
        message: 'ServiceFunction "edge-qoss" does not exist',
        line: 10,
        column: 17,
      }),
      expect.objectContaining({
        path: "spec.hops[0].config.defaultAction",
        message: "must be one of: allow, deny",
        line: 9,
        column: 31,
      }),
    ]);
  });
});
