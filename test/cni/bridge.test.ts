// catena-cni run exactly as a container runtime runs it: the reference `bridge` plugin with
// catena-cni as its IPAM, then catena-cni chained after it; two network namespaces get addresses
// from a Catena Network, ping each other, appear as Workloads (and as endpoints of a Service that
// selects them); CHECK passes, then fails after the interface is changed by hand; DEL removes the
// Workloads and frees the addresses, and DEL again still succeeds.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Discovery, runDiscovery } from "../../functions/discovery/index.js";
import { getJson, post, startTestControl, type TestControl } from "../support/control.js";
import {
  addNetns,
  CniRuntime,
  catenaCniDir,
  deleteLink,
  delNetns,
  inNetns,
  ip,
  type NetworkList,
  type RuntimeConf,
  requireNetns,
} from "./support/cni-runtime.js";

const API = "catena.dev/v1alpha1";
// Addresses live only inside this test's namespaces; the bridge carries frames and has no address.
const CIDR = "198.18.77.0/24";

describe("bridge + catena-cni (IPAM and chained) in two network namespaces", () => {
  const tag = randomBytes(3).toString("hex");
  const bridge = `cbr-${tag}`;
  const names = [`cat-a-${tag}`, `cat-b-${tag}`];
  let control: TestControl;
  let bin: { dir: string; dispose(): Promise<void> };
  let stateDir: string;
  let runtime: CniRuntime;
  let list: NetworkList;
  let discovery: Discovery | undefined;
  const containers: { rt: RuntimeConf; result?: Record<string, unknown>; address?: string }[] = [];

  beforeAll(async () => {
    await requireNetns();
    control = await startTestControl();
    bin = await catenaCniDir();
    stateDir = await mkdtemp(join(tmpdir(), "catena-cni-state-"));
    runtime = new CniRuntime([bin.dir, "/usr/lib/cni"], {
      CATENA_CNI_STATE_DIR: stateDir,
      CATENA_CNI_NODE: "node-1",
    });
    const applied = await post(control.url, "/v1/apply", [
      { apiVersion: API, kind: "Network", metadata: { name: "pods" }, spec: { cidr: CIDR } },
      { apiVersion: API, kind: "ServiceFunction", metadata: { name: "dns" }, spec: { type: "discovery" } },
      {
        apiVersion: API,
        kind: "Service",
        metadata: { name: "demo" },
        spec: { network: "pods", selector: { app: "demo" }, ports: [{ name: "http", port: 8080 }] },
      },
    ]);
    expect(applied.status).toBe(200);
    discovery = await runDiscovery({
      nodeId: "dns-1",
      functionName: "dns",
      xdsServers: [control.server.xdsAddr],
      dnsAddr: "127.0.0.1:0",
      ttlSeconds: 5,
    });
    await discovery.synced;
    list = {
      cniVersion: "1.0.0",
      name: "catena-pods",
      plugins: [
        {
          type: "bridge",
          bridge,
          isGateway: false,
          ipMasq: false,
          ipam: { type: "catena-cni", network: "pods", server: control.url },
        },
        { type: "catena-cni", network: "pods", server: control.url, labels: { app: "demo" } },
      ],
    };
    // The bridge exists before the plugin runs, with a fixed MAC: a Linux bridge otherwise takes the
    // lowest MAC of its ports, so adding the second container would change what the first one's
    // cached result says and the reference plugin's CHECK would fail for that reason alone.
    await ip(["link", "add", "name", bridge, "type", "bridge"]);
    await ip(["link", "set", bridge, "address", "02:ca:7e:00:00:01", "up"]);
    for (const [i, name] of names.entries()) {
      const netns = await addNetns(name);
      containers.push({
        rt: {
          containerId: `${tag}c${i}${"0".repeat(20)}`,
          netns,
          ifname: "eth0",
          args: i === 1 ? "IgnoreUnknown=1;CATENA_LABELS=tier:back" : "IgnoreUnknown=1",
        },
      });
    }
  }, 60_000);

  afterAll(async () => {
    for (const c of containers) await runtime?.del(list, c.rt, c.result).catch(() => undefined);
    for (const n of names) await delNetns(n);
    await deleteLink(bridge);
    await bin?.dispose();
    await discovery?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
    await control?.stop();
  }, 60_000);

  it("ADD gives each namespace an address from the Network on eth0", async () => {
    for (const c of containers) {
      c.result = await runtime.add(list, c.rt);
      const ips = c.result.ips as { address: string; gateway?: string }[];
      expect(ips).toHaveLength(1);
      expect(ips[0]?.address).toMatch(/^198\.18\.77\.\d+\/24$/);
      expect(ips[0]?.gateway).toBe("198.18.77.1");
      c.address = ips[0]?.address.split("/")[0];
      const shown = await ip([
        "-n",
        c.rt.netns.split("/").pop() as string,
        "-j",
        "addr",
        "show",
        "dev",
        "eth0",
      ]);
      expect(shown).toContain(c.address);
    }
    expect(containers[0]?.address).not.toBe(containers[1]?.address);
    expect(["198.18.77.0", "198.18.77.1", "198.18.77.255"]).not.toContain(containers[0]?.address);
  }, 60_000);

  it("the namespaces can ping each other", async () => {
    const [a, b] = names as [string, string];
    const ab = await inNetns(a, ["ping", "-c", "2", "-W", "2", containers[1]?.address as string]);
    const ba = await inNetns(b, ["ping", "-c", "2", "-W", "2", containers[0]?.address as string]);
    expect(ab.code, ab.stdout).toBe(0);
    expect(ba.code, ba.stdout).toBe(0);
  }, 30_000);

  it("the containers are Workloads named ctr-<id> with their address and labels, Service endpoints and in DNS", async () => {
    for (const [i, c] of containers.entries()) {
      const name = `ctr-${c.rt.containerId.slice(0, 12)}`;
      const w = await getJson(control.url, `/v1/workloads/${name}`);
      expect(w.status).toBe(200);
      expect(w.body).toMatchObject({
        metadata: {
          labels: i === 1 ? { app: "demo", tier: "back" } : { app: "demo" },
          annotations: { "cni.catena.dev/container-id": c.rt.containerId, "cni.catena.dev/ifname": "eth0" },
        },
        spec: { kind: "container", networks: [{ name: "pods", address: c.address }] },
      });
    }
    // The registry answers the Service with both containers as endpoints.
    const deadline = Date.now() + 5000;
    let addresses: string[] = [];
    while (Date.now() < deadline) {
      const r = await getJson(control.url, "/v1/services/demo/endpoints");
      addresses = ((r.body as { endpoints?: { address: string }[] }).endpoints ?? [])
        .map((e) => e.address)
        .sort();
      if (addresses.length === 2) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(addresses).toEqual(containers.map((c) => c.address as string).sort());
    // And DNS (the discovery function, fed over xDS) answers the Service with them.
    const [host, port] = (discovery as Discovery).dnsAddress.split(":") as [string, string];
    let answers: string[] = [];
    while (Date.now() < deadline + 5000) {
      const { stdout } = await promisify(execFile)("dig", [
        `@${host}`,
        "-p",
        port,
        "+short",
        "+time=2",
        "+tries=1",
        "demo.catena.",
        "A",
      ]);
      answers = stdout.trim().split("\n").filter(Boolean).sort();
      if (answers.length === 2) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(answers).toEqual(containers.map((c) => c.address as string).sort());
  });

  it("CHECK passes, and fails after the interface is changed by hand", async () => {
    const c = containers[0] as (typeof containers)[number];
    const passed = await runtime.check(list, c.rt, c.result);
    expect(passed && `${passed.stdout} ${passed.stderr}`).toBeUndefined();
    await ip(["-n", names[0] as string, "addr", "del", `${c.address}/24`, "dev", "eth0"]);
    const failed = await runtime.check(list, c.rt, c.result);
    expect(failed?.code).not.toBe(0);
    expect(failed?.json?.code).toEqual(expect.any(Number));
    // catena-cni's own CHECK sees it too.
    const own = await runtime.invoke(
      "CHECK",
      list,
      list.plugins[1] as NetworkList["plugins"][number],
      c.rt,
      c.result,
    );
    expect(own.code).not.toBe(0);
    expect(own.json).toMatchObject({
      code: 101,
      msg: expect.stringMatching(/interface eth0 has \[.*\], expected 198\.18\.77\./),
    });
  }, 30_000);

  it("DEL removes the Workloads and frees the addresses; DEL again succeeds", async () => {
    for (const c of containers) {
      const runs = await runtime.del(list, c.rt, c.result);
      expect(runs.map((r) => r.code)).toEqual([0, 0]);
      const name = `ctr-${c.rt.containerId.slice(0, 12)}`;
      expect((await getJson(control.url, `/v1/workloads/${name}`)).status).toBe(404);
      const lease = await getJson(control.url, `/v1/ipam/networks/pods/attachments/${c.rt.containerId}/eth0`);
      expect(lease.status).toBe(404);
      const again = await runtime.del(list, c.rt, c.result);
      expect(again.map((r) => r.code)).toEqual([0, 0]);
    }
    const usage = await getJson(control.url, "/v1/ipam/networks/pods");
    expect(usage.body).toMatchObject({ allocated: 0 });
  }, 60_000);
});
