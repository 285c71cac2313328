// IPAM through the control server's API: 1,000 concurrent allocations without a duplicate, leases
// that survive a restart, Workloads that join and leave at run time, an exhausted network's error.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cidrContains, parseCidr, parseIp } from "../../services/control/model/ip.js";
import { getJson, post, settled, startTestControl, type TestControl } from "../support/control.js";

const API = "catena.dev/v1alpha1";

async function put(url: string, path: string, body: unknown) {
  const res = await fetch(new URL(path, url), {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function del(url: string, path: string) {
  const res = await fetch(new URL(path, url), { method: "DELETE" });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function network(name: string, spec: Record<string, unknown>) {
  return { apiVersion: API, kind: "Network", metadata: { name }, spec };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("IPAM over the API", () => {
  let dataDir: string;
  let control: TestControl;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "catena-ipam-test-"));
    control = await startTestControl({ dataDir });
    const applied = await post(control.url, "/v1/apply", [
      network("big", { cidr: "127.70.0.0/20", exclude: ["127.70.1.0/24"] }),
      network("tiny", { cidr: "127.71.0.0/29", exclude: ["127.71.0.6/32"] }),
      network("members", { cidr: "127.72.0.0/24" }),
    ]);
    expect(applied.status).toBe(200);
  });

  afterAll(async () => {
    await control?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const allocations = new Map<string, string>();

  it("1,000 concurrent allocations: each gets an address, none twice, none reserved or excluded", async () => {
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        put(control.url, `/v1/ipam/networks/big/attachments/c${i}/eth0`, { node: "n1" }),
      ),
    );
    const cidr = parseCidr("127.70.0.0/20");
    const excluded = parseCidr("127.70.1.0/24");
    if (!cidr.ok || !excluded.ok) throw new Error("bad test CIDR");
    for (const [i, r] of results.entries()) {
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ gateway: "127.70.0.1", prefixLength: 20, created: true });
      const address = r.body.address as string;
      const ip = parseIp(address);
      if (!ip) throw new Error(`not an address: ${address}`);
      expect(cidrContains(cidr.value, ip)).toBe(true);
      expect(cidrContains(excluded.value, ip)).toBe(false);
      expect(["127.70.0.0", "127.70.0.1", "127.70.15.255"]).not.toContain(address);
      allocations.set(`c${i}`, address);
    }
    expect(new Set(allocations.values()).size).toBe(1000);
  });

  it("a retried allocation (CNI ADD again) gets the same address", async () => {
    const again = await put(control.url, "/v1/ipam/networks/big/attachments/c42/eth0", { node: "n1" });
    expect(again.body).toMatchObject({ address: allocations.get("c42"), created: false });
  });

  it("allocations survive a restart of the control server", async () => {
    await control.stop();
    control = await startTestControl({ dataDir });
    const usage = await getJson(control.url, "/v1/ipam/networks/big");
    expect(usage.body).toMatchObject({ allocated: 1000, cidr: "127.70.0.0/20" });
    for (const i of [0, 1, 500, 999]) {
      const r = await put(control.url, `/v1/ipam/networks/big/attachments/c${i}/eth0`, {});
      expect(r.body).toMatchObject({ address: allocations.get(`c${i}`), created: false });
    }
    const fresh = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        put(control.url, `/v1/ipam/networks/big/attachments/d${i}/eth0`, {}),
      ),
    );
    const taken = new Set(allocations.values());
    for (const r of fresh) expect(taken.has(r.body.address as string)).toBe(false);
  });

  it("release frees the address (DEL), and releasing again is still a success", async () => {
    const first = await del(control.url, "/v1/ipam/networks/big/attachments/c7/eth0");
    expect(first.body).toEqual({ released: true, address: allocations.get("c7") });
    const second = await del(control.url, "/v1/ipam/networks/big/attachments/c7/eth0");
    expect(second).toEqual({ status: 200, body: { released: false } });
    const gone = await getJson(control.url, "/v1/ipam/networks/big/attachments/c7/eth0");
    expect(gone.status).toBe(404);
  });

  it("an exhausted network answers with a clear error naming it", async () => {
    // /29: .0 network, .1 gateway, .7 broadcast, .6 excluded: .2 to .5 remain.
    const got = [];
    for (let i = 0; i < 4; i++)
      got.push(await put(control.url, `/v1/ipam/networks/tiny/attachments/t${i}/eth0`, {}));
    expect(got.map((g) => g.body.address)).toEqual(["127.71.0.2", "127.71.0.3", "127.71.0.4", "127.71.0.5"]);
    const full = await put(control.url, "/v1/ipam/networks/tiny/attachments/t9/eth0", {});
    expect(full.status).toBe(503);
    expect(JSON.stringify(full.body)).toMatch(
      /network tiny \(127\.71\.0\.0\/29\) is exhausted: all 4 allocatable/,
    );
  });

  it("an unknown network is 404, bad ids are 400 with the field", async () => {
    expect((await put(control.url, "/v1/ipam/networks/nope/attachments/c1/eth0", {})).status).toBe(404);
    const bad = await put(control.url, "/v1/ipam/networks/big/attachments/c1/has%20space", {});
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/ifname/);
  });

  it("GC releases the node's attachments the runtime no longer knows, and only those", async () => {
    for (const c of ["g1", "g2", "g3"])
      await put(control.url, `/v1/ipam/networks/members/attachments/${c}/eth0`, { node: "gc-node" });
    await put(control.url, "/v1/ipam/networks/members/attachments/other/eth0", { node: "elsewhere" });
    const gc = await post(control.url, "/v1/ipam/networks/members/gc", {
      node: "gc-node",
      keep: [{ containerId: "g2", ifname: "eth0" }],
    });
    const released = (gc.body as { released: { owner: string }[] }).released.map((l) => l.owner).sort();
    expect(released).toEqual(["cni/g1/eth0", "cni/g3/eth0"]);
    for (const c of ["g2", "other"]) {
      await del(control.url, `/v1/ipam/networks/members/attachments/${c}/eth0`);
    }
  });

  it("Workloads join at run time (address in status, events), and leave (address released)", async () => {
    const applied = await post(control.url, "/v1/apply", [
      {
        apiVersion: API,
        kind: "Workload",
        metadata: { name: "billing-1", labels: { app: "billing" } },
        spec: { kind: "vm", networks: [{ name: "members" }] },
      },
      {
        apiVersion: API,
        kind: "Workload",
        metadata: { name: "fixed-1" },
        spec: { kind: "baremetal", networks: [{ name: "members", address: "127.72.0.200" }] },
      },
    ]);
    expect(applied.status).toBe(200);
    const addressOf = (name: string) =>
      until(`${name}'s address`, async () => {
        const w = await getJson(control.url, `/v1/workloads/${name}`);
        const addresses = (w.body as { status?: { addresses?: { network: string; address: string }[] } })
          .status?.addresses;
        return addresses?.[0]?.address;
      });
    const billing = await addressOf("billing-1");
    expect(await addressOf("fixed-1")).toBe("127.72.0.200");
    const usage = (await getJson(control.url, "/v1/ipam/networks/members")).body as {
      leases: { address: string; owner: string }[];
    };
    expect(usage.leases).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ address: billing, owner: "workload/billing-1" }),
        expect.objectContaining({ address: "127.72.0.200", owner: "workload/fixed-1" }),
      ]),
    );
    // A CNI attachment cannot take a Workload's fixed address.
    const clash = await put(control.url, "/v1/ipam/networks/members/attachments/x1/eth0", {
      address: "127.72.0.200",
    });
    expect(clash.status).toBe(409);
    expect(JSON.stringify(clash.body)).toMatch(/held by Workload fixed-1/);

    const removed = await post(control.url, "/v1/delete", [
      { kind: "Workload", metadata: { name: "billing-1" } },
    ]);
    expect(removed.status).toBe(200);
    await until("billing-1's lease to go", async () => {
      const u = (await getJson(control.url, "/v1/ipam/networks/members")).body as {
        leases: { owner: string }[];
      };
      return u.leases.some((l) => l.owner === "workload/billing-1") ? undefined : true;
    });
    const events = await until("joined and left events", async () => {
      const r = (await getJson(control.url, "/v1/events?kind=workload&limit=1000")).body as {
        items: { type: string; subject: string; data?: { network?: string; address?: string } }[];
      };
      const mine = r.items.filter((e) => e.subject === "billing-1");
      return mine.some((e) => e.type === "dev.catena.workload.left") ? mine : undefined;
    });
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(["dev.catena.workload.joined", "dev.catena.workload.left"]),
    );
    expect(events.find((e) => e.type === "dev.catena.workload.joined")?.data).toEqual({
      network: "members",
      address: billing,
    });
    const ipamEvents = (await getJson(control.url, "/v1/events?kind=ipam&name=members&limit=1000")).body as {
      items: { type: string; data: { owner: string } }[];
    };
    const billingEvents = ipamEvents.items
      .filter((e) => e.data.owner === "workload/billing-1")
      .map((e) => e.type);
    expect(billingEvents).toEqual(["dev.catena.ipam.allocated", "dev.catena.ipam.released"]);
    await settled(control);
  });
});
