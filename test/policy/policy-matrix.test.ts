// NetworkPolicy through a real chain's firewall: the control server compiles the policies into the
// RBAC of the firewall hop in front of each Service, a real function host applies it over xDS, and
// clients connect from the addresses of Workloads (and strangers) on loopback. Each case applies a
// set of policies, waits until the firewall ACKed what the compiler made, and checks a table of
// (source, destination) → allowed or denied.
import { once } from "node:events";
import { connect, createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionHost } from "../../functions/sdk/host.js";
import { freePort } from "../../services/control/events/nats-server-process.js";
import { chainProgrammed } from "../../services/control/status/datapath-status.js";
import { post, startTestControl, type TestControl } from "../support/control.js";
import { startTestHost } from "../support/hosts.js";
import { object } from "../support/manifest.js";

const FW = "127.80.0.2";
// Sources: Workloads' addresses and strangers.
const WEB = "127.80.1.10";
const ADMIN = "127.80.1.20";
const EXCEPTED = "127.80.9.9"; // inside 127.80.0.0/16 but in the except range
const OTHER_NET = "127.81.0.5";
const STRANGER = "127.90.0.1";

type Dest = "billing" | "public" | "vault";

let control: TestControl;
let host: FunctionHost | undefined;
let backend: Server;
const ports: Record<Dest, number> = { billing: 0, public: 0, vault: 0 };

/** allowed: the backend's banner arrives; denied: the firewall closes the connection saying nothing. */
async function attempt(from: string, dest: Dest): Promise<"allowed" | "denied"> {
  const s = connect({ host: FW, port: ports[dest], localAddress: from });
  let data = "";
  s.setEncoding("utf8");
  s.on("data", (d: string) => {
    data += d;
  });
  s.on("error", () => undefined);
  const deadline = Date.now() + 5000;
  while (!data.includes("\n") && !s.destroyed && !s.readableEnded && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  s.destroy();
  return data.includes("hello\n") ? "allowed" : "denied";
}

/** Waits for the compile the last apply caused, then for the firewall to ACK what it made. */
async function converged(before: string): Promise<void> {
  const compiler = control.server.xds.compiler;
  const versions = () =>
    JSON.stringify(compiler.chains().map((c) => [...c.expected.values()].flat().map((r) => r.version)));
  const deadline = Date.now() + 15_000;
  const graceUntil = Date.now() + 400; // a change that compiles to the same RBAC produces no new version
  while (versions() === before && Date.now() < graceUntil) await new Promise((r) => setTimeout(r, 20));
  for (;;) {
    const chains = compiler.chains();
    const done =
      chains.length === 3 &&
      chains.every((c) => !c.problem && chainProgrammed(c, control.server.xds.status).status === "True");
    if (done) return;
    if (Date.now() > deadline) throw new Error(`firewall did not converge: ${JSON.stringify(chains)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function setPolicies(policies: Record<string, unknown>[]): Promise<void> {
  const compiler = control.server.xds.compiler;
  const before = JSON.stringify(
    compiler.chains().map((c) => [...c.expected.values()].flat().map((r) => r.version)),
  );
  const existing = await control.server.store.list("NetworkPolicy");
  const keep = new Set(policies.map((p) => (p.metadata as { name: string }).name));
  const stale = existing.filter((p) => !keep.has(p.metadata.name));
  if (stale.length > 0) {
    const r = await post(
      control.url,
      "/v1/delete",
      stale.map((p) => ({ kind: "NetworkPolicy", metadata: { name: p.metadata.name } })),
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  }
  if (policies.length > 0) {
    const r = await post(control.url, "/v1/apply", policies);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  }
  await converged(before);
}

const policy = (name: string, spec: Record<string, unknown>) => object("NetworkPolicy", name, spec);
const billingSubject = { subject: { selector: { app: "billing" } } };

interface Case {
  name: string;
  policies: () => Record<string, unknown>[];
  expect: [from: string, to: Dest, outcome: "allowed" | "denied"][];
}

const cases: Case[] = [
  {
    name: "no policy: everything reaches an open network's services",
    policies: () => [],
    expect: [
      [WEB, "billing", "allowed"],
      [STRANGER, "billing", "allowed"],
      [STRANGER, "public", "allowed"],
    ],
  },
  {
    name: "default-deny network isolates its services without any policy",
    policies: () => [],
    expect: [
      [WEB, "vault", "denied"],
      [STRANGER, "vault", "denied"],
    ],
  },
  {
    name: "selected with no ingress rule: default deny; unselected services stay open",
    policies: () => [policy("lockdown", { ...billingSubject, policyTypes: ["Ingress"] })],
    expect: [
      [WEB, "billing", "denied"],
      [ADMIN, "billing", "denied"],
      [WEB, "public", "allowed"],
    ],
  },
  {
    name: "ingress from a workload selector",
    policies: () => [
      policy("from-web", { ...billingSubject, ingress: [{ from: [{ selector: { app: "web" } }] }] }),
    ],
    expect: [
      [WEB, "billing", "allowed"],
      [ADMIN, "billing", "denied"],
      [STRANGER, "billing", "denied"],
      [STRANGER, "public", "allowed"],
    ],
  },
  {
    name: "ipBlock with except",
    policies: () => [
      policy("block", {
        ...billingSubject,
        ingress: [{ from: [{ ipBlock: { cidr: "127.80.0.0/16", except: ["127.80.9.0/24"] } }] }],
      }),
    ],
    expect: [
      [WEB, "billing", "allowed"],
      [ADMIN, "billing", "allowed"],
      [EXCEPTED, "billing", "denied"],
      [OTHER_NET, "billing", "denied"],
    ],
  },
  {
    name: "a network peer",
    policies: () => [
      policy("from-other", { ...billingSubject, ingress: [{ from: [{ network: "other" }] }] }),
    ],
    expect: [
      [OTHER_NET, "billing", "allowed"],
      [WEB, "billing", "denied"],
    ],
  },
  {
    name: "endPort: a range holding the port allows",
    policies: () => [
      policy("range-in", {
        ...billingSubject,
        ingress: [
          {
            from: [{ ipBlock: { cidr: "127.0.0.0/8" } }],
            ports: [{ port: ports.billing - 5, endPort: ports.billing + 5 }],
          },
        ],
      }),
    ],
    expect: [[STRANGER, "billing", "allowed"]],
  },
  {
    name: "endPort: a range beside the port does not",
    policies: () => [
      policy("range-out", {
        ...billingSubject,
        ingress: [
          {
            from: [{ ipBlock: { cidr: "127.0.0.0/8" } }],
            ports: [{ port: ports.billing + 1, endPort: ports.billing + 50 }],
          },
        ],
      }),
    ],
    expect: [[STRANGER, "billing", "denied"]],
  },
  {
    name: "deny overrides allow",
    policies: () => [
      policy("allow-net", {
        ...billingSubject,
        ingress: [{ from: [{ ipBlock: { cidr: "127.80.0.0/16" } }] }],
      }),
      policy("deny-admin", { ...billingSubject, deny: [{ from: [{ selector: { app: "admin" } }] }] }),
    ],
    expect: [
      [WEB, "billing", "allowed"],
      [ADMIN, "billing", "denied"],
    ],
  },
  {
    name: "two policies add up",
    policies: () => [
      policy("allow-web", { ...billingSubject, ingress: [{ from: [{ selector: { app: "web" } }] }] }),
      policy("allow-admin", { ...billingSubject, ingress: [{ from: [{ selector: { app: "admin" } }] }] }),
    ],
    expect: [
      [WEB, "billing", "allowed"],
      [ADMIN, "billing", "allowed"],
      [STRANGER, "billing", "denied"],
    ],
  },
  {
    name: "a default-deny network's service opened by a policy",
    policies: () => [
      policy("vault-web", {
        subject: { selector: { app: "vault" } },
        ingress: [{ from: [{ selector: { app: "web" } }] }],
      }),
    ],
    expect: [
      [WEB, "vault", "allowed"],
      [ADMIN, "vault", "denied"],
    ],
  },
  {
    name: "egress: a selected workload reaches only what its rules allow",
    policies: () => [
      policy("admin-out", {
        subject: { selector: { app: "admin" } },
        policyTypes: ["Egress"],
        egress: [{ to: [{ selector: { app: "billing" } }] }],
      }),
    ],
    expect: [
      [ADMIN, "billing", "allowed"],
      [ADMIN, "public", "denied"],
      [WEB, "public", "allowed"],
    ],
  },
  {
    name: "deny `to`: the subject may not reach a network's services, whatever allows it",
    policies: () => [
      policy("vault-web", {
        subject: { selector: { app: "vault" } },
        ingress: [{ from: [{ selector: { app: "web" } }] }],
      }),
      policy("web-not-locked", {
        subject: { selector: { app: "web" } },
        deny: [{ to: [{ network: "locked" }] }],
      }),
    ],
    expect: [
      [WEB, "vault", "denied"],
      [WEB, "billing", "allowed"],
    ],
  },
];

beforeAll(async () => {
  backend = createServer((s) => {
    s.on("error", () => undefined);
    s.end("hello\n");
  });
  backend.listen(0, "127.0.0.1");
  await once(backend, "listening");
  const backendPort = (backend.address() as { port: number }).port;
  for (const d of Object.keys(ports) as Dest[]) ports[d] = await freePort(FW);
  control = await startTestControl();
  const endpoints = [{ address: "127.0.0.1", port: backendPort }];
  const svc = (name: Dest, network: string) =>
    object(
      "Service",
      name,
      { network, ports: [{ name: "tcp", port: ports[name] }], endpoints },
      { app: name },
    );
  const chain = (name: Dest) =>
    object("ServiceChain", name, {
      service: name,
      ingress: { port: ports[name] },
      hops: [{ function: "pm-fw", config: { defaultAction: "allow" } }],
    });
  const workload = (name: string, app: string, address: string) =>
    object("Workload", name, { kind: "vm", networks: [{ name: "pm", address }] }, { app });
  const res = await post(control.url, "/v1/apply", [
    object("Network", "pm", { cidr: "127.80.0.0/16" }),
    object("Network", "other", { cidr: "127.81.0.0/16" }),
    object("Network", "locked", { cidr: "127.82.0.0/16", isolation: "default-deny" }),
    workload("web-1", "web", WEB),
    workload("admin-1", "admin", ADMIN),
    svc("billing", "pm"),
    svc("public", "pm"),
    svc("vault", "locked"),
    object("ServiceFunction", "pm-fw", { type: "firewall" }),
    chain("billing"),
    chain("public"),
    chain("vault"),
  ]);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  host = await startTestHost({
    type: "firewall",
    functionName: "pm-fw",
    nodeId: "pm-fw-1",
    xdsServers: [control.server.xdsAddr],
    address: FW,
  });
  await converged("");
}, 60_000);

afterAll(async () => {
  host?.destroy();
  await host?.close().catch(() => undefined);
  await control?.stop();
  backend?.close();
});

describe("policy matrix through a chain's firewall", () => {
  it.each(cases)(
    "$name",
    async (c) => {
      await setPolicies(c.policies());
      const got = [];
      for (const [from, to] of c.expect) got.push([from, to, await attempt(from, to)]);
      expect(got).toEqual(c.expect);
    },
    30_000,
  );
});

describe("policy status and events", () => {
  it("a policy reports the Services it shapes and the chains enforcing it, with a compiled event", async () => {
    await setPolicies([
      policy("from-web", { ...billingSubject, ingress: [{ from: [{ selector: { app: "web" } }] }] }),
      object("NetworkPolicy", "orphan", {
        subject: { selector: { app: "nothing-fronted" } },
        policyTypes: ["Ingress"],
      }),
    ]);
    await post(control.url, "/v1/apply", [
      object(
        "Service",
        "bare",
        { network: "pm", ports: [{ name: "tcp", port: 9 }] },
        { app: "nothing-fronted" },
      ),
    ]);
    const deadline = Date.now() + 5000;
    let statuses: Record<string, unknown> = {};
    while (Date.now() < deadline) {
      const fromWeb = await control.server.store.get("NetworkPolicy", "from-web");
      const orphan = await control.server.store.get("NetworkPolicy", "orphan");
      statuses = { fromWeb: fromWeb?.status, orphan: orphan?.status };
      if ((orphan?.status?.unenforced as string[] | undefined)?.includes("bare")) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(statuses.fromWeb).toMatchObject({
      services: ["billing"],
      enforcedBy: ["billing"],
      unenforced: [],
      conditions: expect.arrayContaining([expect.objectContaining({ type: "Compiled", status: "True" })]),
    });
    expect(statuses.orphan).toMatchObject({
      services: ["bare"],
      unenforced: ["bare"],
      conditions: expect.arrayContaining([
        expect.objectContaining({ type: "Compiled", status: "False", reason: "NoFirewall" }),
      ]),
    });
    const events = control.server.events.recent(
      { type: "dev.catena.networkpolicy.compiled", name: "from-web" },
      100,
    );
    expect(events.at(-1)?.data).toMatchObject({ services: ["billing"], enforcedBy: ["billing"] });
  });
});
