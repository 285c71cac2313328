import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { validateResource } from "./validate.js";
import { validateManifests } from "./validate-manifests.js";

/** Test sources start on the line after the backtick. */
const src = (text: string) => text.replace(/^\n/, "");

interface Expected {
  path: string;
  message: string;
  line: number;
  column: number;
}

interface Case {
  name: string;
  text: string;
  errors: Expected[];
}

const valid: { name: string; text: string }[] = [
  {
    name: "Network with IPv6 CIDR, exclude and isolation",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: Network
metadata: {name: edge6, labels: {tier: front, example.com/owner: net-team}}
spec:
  cidr: fd00:64::/64
  exclude: [fd00:64::/120]
  isolation: default-deny
`),
  },
  {
    name: "Workload with ports and a fixed address",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: Workload
metadata: {name: billing-vm-1, labels: {app: billing}}
spec:
  kind: vm
  networks: [{name: payments}, {name: edge, address: 127.64.0.40}]
  ports: [{name: http, port: 8443}, {name: dns, port: 53, protocol: UDP}]
`),
  },
  {
    name: "Service with every optional field",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: Service
metadata: {name: web}
spec:
  network: edge
  ports: [{name: http, port: 8080, targetPort: 80}, {name: http-udp, port: 8080, protocol: UDP}]
  endpoints:
    - {address: 127.0.0.1, port: 9001, weight: 128, locality: {region: eu, zone: eu-1}, labels: {v: "2"}}
    - {address: "::1", port: 9002}
  selector: {app: web}
  proxyProtocol: v2
  healthCheck: {intervalMs: 1000, timeoutMs: 500}
`),
  },
  {
    name: "ServiceFunction of a third-party type with free-form config",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: ServiceFunction
metadata: {name: waf}
spec: {type: acme-waf, plugin: ./plugins/waf.js, replicas: 0, config: {rules: [1, 2], mode: block}}
`),
  },
  {
    name: "ServiceFunction defaults may leave required fields to the hops",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: ServiceFunction
metadata: {name: tunnel}
spec: {type: vpn, config: {tunnelPort: 4443}}
`),
  },
  {
    name: "ServiceChain fused with a firewall port range",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: ServiceChain
metadata: {name: web-edge}
spec:
  service: web
  ingress: {port: 8080, address: 127.64.0.10}
  placement: fused
  hops:
    - function: edge-fw
      config: {defaultAction: deny, allow: [{ports: [8080, {port: 9000, endPort: 9100}]}]}
`),
  },
  {
    name: "server-written fields and status are accepted on input",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: Network
metadata: {name: edge, uid: 1b4e, generation: 3, creationTimestamp: "2024-01-01T00:00:00Z", resourceVersion: "17"}
spec: {cidr: 127.64.0.0/16}
status: {observedGeneration: 3, conditions: []}
`),
  },
];

const cases: Case[] = [
  {
    name: "Network: host bits, bad exclude, bad enum, unknown field",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: Network
metadata: {name: edge}
spec:
  cidr: 127.64.0.1/16
  exclude: [127.65.0.0/24, nonsense]
  isolation: closed
  gateway: 127.64.0.1
`),
    errors: [
      {
        path: "spec.cidr",
        message: "127.64.0.1/16 is not a network address; did you mean 127.64.0.0/16",
        line: 5,
        column: 9,
      },
      {
        path: "spec.exclude[1]",
        message: '"nonsense" is not a CIDR (expected address/prefix, such as 10.0.0.0/16)',
        line: 6,
        column: 28,
      },
      { path: "spec.isolation", message: "must be one of: open, default-deny", line: 7, column: 14 },
      { path: "spec.gateway", message: 'unknown field "gateway"', line: 8, column: 3 },
    ],
  },
  {
    name: "Network: exclude outside the CIDR, bad prefix length",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: Network
metadata: {name: edge}
spec: {cidr: 10.1.0.0/16, exclude: [10.2.0.0/24, 10.1.0.0/33]}
`),
    errors: [
      { path: "spec.exclude[0]", message: "10.2.0.0/24 is not inside 10.1.0.0/16", line: 4, column: 37 },
      {
        path: "spec.exclude[1]",
        message: '"10.1.0.0/33" is not a CIDR: the prefix length must be 0 to 32 for IPv4',
        line: 4,
        column: 50,
      },
    ],
  },
  {
    name: "Workload: name, label key, kind, address, duplicates, port range, protocol",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: Workload
metadata:
  name: Billing_VM
  labels: {app: billing, "bad key": x}
spec:
  kind: pod
  networks:
    - name: payments
      address: 127.65.0.300
    - {name: payments}
  ports:
    - {name: http, port: 70000}
    - {name: http, port: 8443, protocol: SCTP}
`),
    errors: [
      {
        path: "metadata.name",
        message:
          "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit",
        line: 4,
        column: 9,
      },
      {
        path: 'metadata.labels["bad key"]',
        message:
          "invalid key: must be a label key: an optional DNS prefix and '/', then letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        line: 5,
        column: 26,
      },
      {
        path: "spec.kind",
        message: "must be one of: container, vm, baremetal, function",
        line: 7,
        column: 9,
      },
      {
        path: "spec.networks[0].address",
        message: '"127.65.0.300" is not an IPv4 or IPv6 address',
        line: 10,
        column: 16,
      },
      {
        path: "spec.networks[1].name",
        message: 'duplicate network "payments" (also spec.networks[0].name)',
        line: 11,
        column: 14,
      },
      { path: "spec.ports[0].port", message: "must be between 1 and 65535", line: 13, column: 26 },
      {
        path: "spec.ports[1].name",
        message: 'duplicate port name "http" (also spec.ports[0].name)',
        line: 14,
        column: 14,
      },
      { path: "spec.ports[1].protocol", message: "must be one of: TCP, UDP", line: 14, column: 42 },
    ],
  },
  {
    name: "Workload: no networks at all",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: Workload
metadata: {name: w}
spec: {kind: container, networks: []}
`),
    errors: [{ path: "spec.networks", message: "must have at least one item", line: 4, column: 35 }],
  },
  {
    name: "Service: missing network, empty ports, weight, address, locality, enum, timeout",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: Service
metadata: {name: web}
spec:
  ports: []
  endpoints:
    - {address: 127.0.0.1, port: 9001, weight: 0}
    - address: web.example
      port: 9002
      locality: {region: eu, rack: r1}
  proxyProtocol: v1
  healthCheck: {intervalMs: 100, timeoutMs: -1}
`),
    errors: [
      { path: "spec.network", message: "is required", line: 5, column: 3 },
      { path: "spec.ports", message: "must have at least one item", line: 5, column: 10 },
      { path: "spec.endpoints[0].weight", message: "must be between 1 and 128", line: 7, column: 48 },
      {
        path: "spec.endpoints[1].address",
        message: '"web.example" is not an IPv4 or IPv6 address',
        line: 8,
        column: 16,
      },
      { path: "spec.endpoints[1].locality.rack", message: 'unknown field "rack"', line: 10, column: 30 },
      { path: "spec.proxyProtocol", message: "must be one of: none, v2", line: 11, column: 18 },
      { path: "spec.healthCheck.timeoutMs", message: "must be at least 1", line: 12, column: 45 },
    ],
  },
  {
    name: "Service: the same port twice",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: Service
metadata: {name: web}
spec:
  network: edge
  ports: [{name: a, port: 80}, {name: b, port: 80, protocol: TCP}]
`),
    errors: [
      {
        path: "spec.ports[1].port",
        message: "port 80/TCP is already declared at spec.ports[0]",
        line: 6,
        column: 48,
      },
    ],
  },
  {
    name: "ServiceFunction: replicas, firewall defaults vocabulary",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: ServiceFunction
metadata: {name: edge-fw}
spec:
  type: firewall
  replicas: 65
  config:
    defaultAction: drop
    allow:
      - from: [{cidr: 10.0.0.1/8}]
        ports: [80, {port: 9000, endPort: 8000}, http]
`),
    errors: [
      { path: "spec.replicas", message: "must be between 0 and 64", line: 6, column: 13 },
      { path: "spec.config.defaultAction", message: "must be one of: allow, deny", line: 8, column: 20 },
      {
        path: "spec.config.allow[0].from[0].cidr",
        message: "10.0.0.1/8 is not a network address; did you mean 10.0.0.0/8",
        line: 10,
        column: 23,
      },
      {
        path: "spec.config.allow[0].ports[1].endPort",
        message: "must be at least port (9000)",
        line: 11,
        column: 43,
      },
      {
        path: "spec.config.allow[0].ports[2]",
        message: "must be a port number or {port, endPort}",
        line: 11,
        column: 50,
      },
    ],
  },
  {
    name: "ServiceFunction: type missing, plugin empty",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: ServiceFunction
metadata: {name: waf}
spec:
  plugin: ""
`),
    errors: [
      { path: "spec.type", message: "is required", line: 5, column: 3 },
      { path: "spec.plugin", message: "must not be empty", line: 5, column: 11 },
    ],
  },
  {
    name: "ServiceChain: missing port, bad address, placement, misspelled field",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: ServiceChain
metadata: {name: web-edge}
spec:
  service: web
  ingress: {address: 127.64.0.999}
  placement: together
  hops:
    - function: edge-fw
      confg: {defaultAction: deny}
`),
    errors: [
      { path: "spec.ingress.port", message: "is required", line: 6, column: 12 },
      {
        path: "spec.ingress.address",
        message: '"127.64.0.999" is not an IPv4 or IPv6 address',
        line: 6,
        column: 22,
      },
      { path: "spec.placement", message: "must be one of: separate, fused", line: 7, column: 14 },
      { path: "spec.hops[0].confg", message: 'unknown field "confg"', line: 10, column: 7 },
    ],
  },
  {
    name: "ServiceChain: no hops, hop config not an object",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: ServiceChain
metadata: {name: web-edge}
spec:
  service: web
  ingress: {port: 8080}
  hops: []
---
apiVersion: catena.dev/v1alpha1
kind: ServiceChain
metadata: {name: web-edge-2}
spec:
  service: web
  ingress: {port: 8080}
  hops: [{function: fw, config: [deny]}]
`),
    errors: [
      { path: "spec.hops", message: "must have at least one item", line: 7, column: 9 },
      { path: "spec.hops[0].config", message: "must be an object", line: 15, column: 33 },
    ],
  },
  {
    name: "NetworkPolicy: enum item, two peer kinds, except outside, reversed range, empty deny",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: NetworkPolicy
metadata: {name: billing-ingress}
spec:
  subject: {selector: {app: billing}}
  policyTypes: [Ingress, Sideways]
  ingress:
    - from: [{selector: {app: web}, network: edge}, {ipBlock: {cidr: 127.64.0.0/16, except: [127.65.9.0/24]}}]
      ports: [{port: 9100, endPort: 9000}]
  deny:
    - {}
`),
    errors: [
      { path: "spec.policyTypes[1]", message: "must be one of: Ingress, Egress", line: 6, column: 26 },
      {
        path: "spec.ingress[0].from[0]",
        message: "must have exactly one of selector, network, ipBlock",
        line: 8,
        column: 14,
      },
      {
        path: "spec.ingress[0].from[1].ipBlock.except[0]",
        message: "127.65.9.0/24 is not inside 127.64.0.0/16",
        line: 8,
        column: 94,
      },
      {
        path: "spec.ingress[0].ports[0].endPort",
        message: "must be at least port (9100)",
        line: 9,
        column: 37,
      },
      { path: "spec.deny[0]", message: "must have at least one of from, to, ports", line: 11, column: 7 },
    ],
  },
  {
    name: "NetworkPolicy: subject required, empty peer, repeated policy type",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: NetworkPolicy
metadata: {name: p}
spec:
  policyTypes: [Egress, Egress]
  egress: [{to: [{}]}]
`),
    errors: [
      { path: "spec.subject", message: "is required", line: 5, column: 3 },
      { path: "spec.policyTypes[1]", message: "repeats item 0", line: 5, column: 25 },
      {
        path: "spec.egress[0].to[0]",
        message: "must have exactly one of selector, network, ipBlock",
        line: 6,
        column: 18,
      },
    ],
  },
  {
    name: "envelope: apiVersion, kind spelling, missing metadata and spec, unknown top-level field",
    text: src(`
apiVersion: catena.dev/v1
kind: servicechain
extra: true
`),
    errors: [
      // Missing fields point at the document itself, where they belong.
      { path: "metadata", message: "is required", line: 1, column: 1 },
      { path: "spec", message: "is required", line: 1, column: 1 },
      { path: "apiVersion", message: 'must be "catena.dev/v1alpha1"', line: 1, column: 13 },
      { path: "kind", message: "must be ServiceChain (exact spelling)", line: 2, column: 7 },
      { path: "extra", message: 'unknown field "extra"', line: 3, column: 1 },
    ],
  },
  {
    name: "envelope: unknown kind, spec of the wrong type, metadata without name",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: Gateway
metadata: {labels: {a: b}}
spec: [1]
`),
    errors: [
      {
        path: "kind",
        message: "must be one of: Network, Workload, Service, ServiceFunction, ServiceChain, NetworkPolicy",
        line: 2,
        column: 7,
      },
      { path: "metadata.name", message: "is required", line: 3, column: 11 },
      { path: "spec", message: "must be an object", line: 4, column: 7 },
    ],
  },
  {
    name: "metadata: label value too long and malformed, resourceVersion not a string",
    text: src(`
apiVersion: catena.dev/v1alpha1
kind: Network
metadata:
  name: edge
  resourceVersion: 12
  labels:
    ok: "-bad-"
spec: {cidr: 127.64.0.0/16}
`),
    errors: [
      { path: "metadata.resourceVersion", message: "must be a string", line: 5, column: 20 },
      {
        path: "metadata.labels.ok",
        message:
          "must be empty or letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        line: 7,
        column: 9,
      },
    ],
  },
];

describe("validateResource", () => {
  it.each(valid)("accepts: $name", ({ text }) => {
    const result = validateManifests(text);
    expect(result.errors).toEqual([]);
    expect(result.resources).toHaveLength(1);
  });

  it.each(cases)("rejects, every error at once, located: $name", ({ text, errors }) => {
    const result = validateManifests(text);
    expect(result.resources).toEqual([]);
    expect(result.errors.map(({ path, message, line, column }) => ({ path, message, line, column }))).toEqual(
      errors,
    );
  });

  it("labels each error with the document's kind and name", () => {
    const { errors } = validateManifests(cases[0]!.text);
    expect(errors[0]).toMatchObject({ document: 0, kind: "Network", name: "edge" });
  });

  it("keeps what the user owns and drops status and server-written metadata", () => {
    const result = validateResource({
      apiVersion: "catena.dev/v1alpha1",
      kind: "Network",
      metadata: { name: "edge", uid: "x", generation: 2, resourceVersion: "7", labels: { a: "b" } },
      spec: { cidr: "127.64.0.0/16" },
      status: { observedGeneration: 2 },
    });
    expect(result).toEqual({
      ok: true,
      value: {
        apiVersion: "catena.dev/v1alpha1",
        kind: "Network",
        metadata: { name: "edge", resourceVersion: "7", labels: { a: "b" } },
        spec: { cidr: "127.64.0.0/16" },
      },
    });
  });

  it.each([
    { name: "null", doc: null },
    { name: "a string", doc: "kind: Network" },
    { name: "a list", doc: [] },
  ])("rejects a document that is $name", ({ doc }) => {
    expect(validateResource(doc)).toEqual({
      ok: false,
      errors: [{ path: "", message: "must be an object with apiVersion, kind, metadata and spec" }],
    });
  });

  it("rejects a name longer than 63 characters", () => {
    const result = validateResource({
      apiVersion: "catena.dev/v1alpha1",
      kind: "Network",
      metadata: { name: "a".repeat(64) },
      spec: { cidr: "10.0.0.0/8" },
    });
    expect(result).toEqual({
      ok: false,
      errors: [{ path: "metadata.name", message: "must be at most 63 characters" }],
    });
  });

  it("checks the length of each part of a label key", () => {
    const result = validateResource({
      apiVersion: "catena.dev/v1alpha1",
      kind: "Network",
      metadata: { name: "n", labels: { [`example.com/${"k".repeat(64)}`]: "v" } },
      spec: { cidr: "10.0.0.0/8" },
    });
    expect(result.ok ? [] : result.errors).toEqual([
      {
        path: `metadata.labels["example.com/${"k".repeat(64)}"]`,
        message: "invalid key: the name part must be at most 63 characters",
      },
    ]);
  });

  it("accepts DESIGN.md's example manifest as it stands", () => {
    const text = readFileSync(new URL("./fixtures/design-example.yaml", import.meta.url), "utf8");
    const result = validateManifests(text);
    expect(result.errors).toEqual([]);
    expect(result.resources.map((r) => `${r.resource.kind}/${r.resource.metadata.name}`)).toEqual([
      "Network/edge",
      "Service/web",
      "ServiceFunction/edge-fw",
      "ServiceFunction/edge-qos",
      "ServiceFunction/edge-lb",
      "ServiceChain/web-edge",
      "Network/payments",
      "Workload/billing-vm-1",
      "Service/billing",
      "NetworkPolicy/billing-ingress",
    ]);
  });
});
