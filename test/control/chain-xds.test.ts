// The data path through the whole control server: the edge chain example applied as a manifest,
// fake function instances (the real AdsClient) connected as its hops. Each instance receives
// exactly its hops' listener, cluster and assignment; fused placement puts one listener on the
// first hop's instances; the chain's status gets its ingress and Programmed/Ready once the
// instances ACK, and a NACK shows up in its conditions.
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AdsClient,
  clusterType,
  endpointType,
  type ListenerJson,
  listenerType,
  type ProtoJson,
  TYPE_URL,
  withValidation,
} from "../../xds/index.js";
import { getJson, post, startTestControl, type TestControl } from "../support/control.js";

const CHAIN_YAML = new URL("../../deploy/examples/edge-chain/chain.yaml", import.meta.url);

interface Instance {
  id: string;
  fn: string;
  type: string;
  address: string;
  client: AdsClient;
}

let control: TestControl;
let manifest: string;
const instances: Instance[] = [];

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface ChainStatus {
  ingress?: { address: string; port: number };
  ingresses?: { address: string; port: number }[];
  conditions?: Condition[];
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (last !== undefined) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function connect(id: string, fn: string, type: string, address: string, rejectListeners?: string): Instance {
  const client = new AdsClient({
    servers: [control.server.xdsAddr],
    node: { id, cluster: fn, metadata: { type, address } },
  });
  const listeners = rejectListeners
    ? withValidation(listenerType, () => ({
        ok: false as const,
        errors: [{ path: "filter_chains[0].filters[0].typed_config", message: rejectListeners }],
      }))
    : listenerType;
  client.watch(listeners, "*");
  client.watch(clusterType, "*");
  client.watch(endpointType, "*");
  const instance = { id, fn, type, address, client };
  instances.push(instance);
  return instance;
}

async function disconnect(instance: Instance): Promise<void> {
  await instance.client.close();
  instances.splice(instances.indexOf(instance), 1);
}

/** What an instance holds now: names per type. */
function holds(i: Instance): { listeners: string[]; clusters: string[]; endpoints: string[] } {
  const names = (typeUrl: string) => [...i.client.resources(typeUrl).keys()].sort();
  return {
    listeners: names(TYPE_URL.listener),
    clusters: names(TYPE_URL.cluster),
    endpoints: names(TYPE_URL.endpoint),
  };
}

function hopResources(...stages: string[]) {
  return {
    listeners: stages,
    clusters: stages.map((s) => `${s}/next`),
    endpoints: stages.map((s) => `${s}/next`),
  };
}

function listenerOf(i: Instance, name: string): ListenerJson {
  const l = i.client.resources<ListenerJson>(listenerType).get(name);
  if (!l) throw new Error(`${i.id} holds no listener ${name}`);
  return l.value;
}

async function chainStatus(): Promise<ChainStatus> {
  const res = await getJson(control.url, "/v1/servicechains/web-edge");
  return ((res.body as { status?: ChainStatus }).status ?? {}) as ChainStatus;
}

function condition(status: { conditions?: Condition[] }, type: string): Condition | undefined {
  return status.conditions?.find((c) => c.type === type);
}

async function untilChain(what: string, check: (s: ChainStatus) => boolean): Promise<ChainStatus> {
  return until(what, async () => {
    const s = await chainStatus();
    return check(s) ? s : undefined;
  });
}

async function apply(text: string): Promise<void> {
  const res = await post(control.url, "/v1/apply", text);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

beforeAll(async () => {
  control = await startTestControl();
  manifest = await readFile(CHAIN_YAML, "utf8");
  await apply(manifest);
});

afterAll(async () => {
  await Promise.all(instances.map((i) => i.client.close()));
  await control?.stop();
});

describe("ServiceChain on the data path", () => {
  it("without instances the chain is not Ready (NoInstances) and has no ingress", async () => {
    const s = await untilChain("Ready=False", (s) => condition(s, "Ready")?.reason === "NoInstances");
    expect(condition(s, "Ready")).toMatchObject({
      status: "False",
      message: expect.stringContaining("edge-fw"),
    });
    expect(s.ingress).toBeUndefined();
  });

  it("each instance receives exactly its hop's listener, cluster and assignment", async () => {
    const fw = connect("fw-1", "edge-fw", "firewall", "127.64.0.1");
    const qos = connect("qos-1", "edge-qos", "qos", "127.64.0.2");
    const lb1 = connect("lb-1", "edge-lb", "loadbalancer", "127.64.0.3");
    const lb2 = connect("lb-2", "edge-lb", "loadbalancer", "127.64.0.4");
    const want = new Map([
      [fw, hopResources("web-edge/0")],
      [qos, hopResources("web-edge/1")],
      [lb1, hopResources("web-edge/2")],
      [lb2, hopResources("web-edge/2")],
    ]);
    for (const [i, expected] of want) {
      await until(`${i.id}'s resources`, () =>
        JSON.stringify(holds(i)) === JSON.stringify(expected) ? true : undefined,
      );
    }
    // Nothing of the services (no `web` assignment) and nothing of other hops.
    for (const i of want.keys()) expect(holds(i)).toEqual(want.get(i));

    const l0 = listenerOf(fw, "web-edge/0");
    expect(l0.address).toEqual({ socket_address: { address: "127.64.0.1", port_value: 8080 } });
    const filters0 = (l0.filter_chains as { filters: { name: string }[] }[])[0]?.filters.map((f) => f.name);
    expect(filters0).toEqual(["envoy.filters.network.rbac", "envoy.filters.network.tcp_proxy"]);

    const l1 = listenerOf(qos, "web-edge/1");
    expect((l1.filter_chains as ProtoJson[])[0]?.filter_chain_match).toEqual({
      direct_source_prefix_ranges: [{ address_prefix: "127.64.0.1", prefix_len: { value: 32 } }],
    });
    expect((l1.filter_chains as { filters: { name: string }[] }[])[0]?.filters.map((f) => f.name)).toEqual([
      "envoy.filters.network.local_ratelimit",
      "envoy.filters.network.connection_limit",
      "catena.filters.network.bandwidth",
      "envoy.filters.network.tcp_proxy",
    ]);

    // The firewall forwards to the qos instance, the qos to both load balancers, they to the Service.
    const upstream = (i: Instance, name: string) => {
      const cla = i.client.resources(endpointType).get(name)?.value as {
        endpoints?: {
          lb_endpoints: {
            endpoint: { address: { socket_address: { address: string; port_value: number } } };
          }[];
        }[];
      };
      return (cla.endpoints ?? []).flatMap((g) =>
        g.lb_endpoints.map(
          (e) =>
            `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`,
        ),
      );
    };
    expect(upstream(fw, "web-edge/0/next")).toEqual(["127.64.0.2:8080"]);
    expect(upstream(qos, "web-edge/1/next")).toEqual(["127.64.0.3:8080", "127.64.0.4:8080"]);
    expect(upstream(lb1, "web-edge/2/next")).toEqual(["127.0.0.1:9001", "127.0.0.1:9002"]);
    expect(lb1.client.resources(clusterType).get("web-edge/2/next")?.value).toMatchObject({
      lb_policy: "ROUND_ROBIN",
      health_checks: [{ tcp_health_check: {} }],
    });
  });

  it("once every instance ACKs, the chain has its ingress and is Programmed and Ready", async () => {
    const s = await untilChain("Ready=True", (s) => condition(s, "Ready")?.status === "True");
    expect(condition(s, "Programmed")).toMatchObject({ status: "True", reason: "Acked" });
    expect(s.ingress).toEqual({ address: "127.64.0.1", port: 8080 });
    expect(s.ingresses).toEqual([{ address: "127.64.0.1", port: 8080 }]);
    const lbReady = await until("edge-lb Ready", async () => {
      const lb = (await getJson(control.url, "/v1/servicefunctions/edge-lb")).body as { status: ChainStatus };
      const ready = condition(lb.status, "Ready");
      return ready?.status === "True" ? ready : undefined;
    });
    expect(lbReady.message).toBe("2 of 2 instance(s) connected");
  });

  it("a service lookup resolves to the chain's ingress", async () => {
    // What proxyless clients and discovery read: the `web` assignment points at the first hop.
    const reader = new AdsClient({
      servers: [control.server.xdsAddr],
      node: { id: "reader", cluster: "proxyless", metadata: {} },
    });
    try {
      reader.watch(endpointType, ["web"]);
      const cla = await until("web's assignment", () => reader.resources(endpointType).get("web")?.value);
      expect(JSON.stringify(cla)).toContain("127.64.0.1");
    } finally {
      await reader.close();
    }
  });

  it("a NACK shows up in the chain's conditions, and goes once the instance leaves", async () => {
    const bad = connect("qos-2", "edge-qos", "qos", "127.64.0.5", "refused for the test");
    const s = await untilChain("Programmed=False", (s) => condition(s, "Programmed")?.reason === "Nacked");
    expect(condition(s, "Programmed")).toMatchObject({
      status: "False",
      message: expect.stringMatching(/qos-2 rejected Listener web-edge\/1: .*refused for the test/),
    });
    expect(condition(s, "Ready")).toMatchObject({ status: "False", reason: "Nacked" });
    // The function's status is written in the same pass, just after the chain's.
    await until("edge-qos Programmed=False", async () => {
      const fn = (await getJson(control.url, "/v1/servicefunctions/edge-qos")).body as {
        status: ChainStatus;
      };
      const programmed = condition(fn.status, "Programmed");
      return programmed?.status === "False" && programmed.reason === "Nacked" ? true : undefined;
    });
    await disconnect(bad);
    await untilChain("Ready=True again", (s) => condition(s, "Ready")?.status === "True");
  });

  it("fused placement: one listener on the first hop's instances, nothing on the others", async () => {
    await apply(manifest.replace("placement: separate", "placement: fused"));
    const byId = (id: string) => instances.find((i) => i.id === id) as Instance;
    await until("fused resources", () =>
      JSON.stringify(holds(byId("fw-1"))) === JSON.stringify(hopResources("web-edge/fused"))
        ? true
        : undefined,
    );
    for (const id of ["qos-1", "lb-1", "lb-2"]) {
      await until(`${id} empty`, () =>
        JSON.stringify(holds(byId(id))) === JSON.stringify(hopResources()) ? true : undefined,
      );
    }
    const l = listenerOf(byId("fw-1"), "web-edge/fused");
    expect((l.filter_chains as { filters: { name: string }[] }[])[0]?.filters.map((f) => f.name)).toEqual([
      "envoy.filters.network.rbac",
      "envoy.filters.network.local_ratelimit",
      "envoy.filters.network.connection_limit",
      "catena.filters.network.bandwidth",
      "envoy.filters.network.tcp_proxy",
    ]);
    const s = await untilChain("fused Ready", (s) => condition(s, "Ready")?.status === "True");
    expect(s.ingress).toEqual({ address: "127.64.0.1", port: 8080 });
  });
});
