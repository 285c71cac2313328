// catena-cni's failures, as a runtime sees them: the spec's error object on stdout (cniVersion,
// code, msg) and a non-zero exit. Then the control server going away: ADD says "try again later"
// (11), DEL succeeds locally and is replayed once the server is back.

import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../services/control/events/nats-server-process.js";
import { type ControlServer, startControlServer } from "../../services/control/server.js";
import { getJson, post } from "../support/control.js";
import { deleteEventStream, SHARED_NATS_URL, uniqueRoot } from "../support/nats.js";
import { catenaCniDir, execPlugin } from "./support/cni-runtime.js";

const ENV = {
  CNI_CONTAINERID: "errtest0001",
  CNI_NETNS: "/var/run/netns/none",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/usr/lib/cni",
};

let bin: { dir: string; dispose(): Promise<void> };
let stateDir: string;

function plugin(command: string, stdin: string, env: Record<string, string> = ENV) {
  return execPlugin(
    join(bin.dir, "catena-cni"),
    {
      PATH: process.env.PATH ?? "",
      CNI_COMMAND: command,
      CATENA_CNI_STATE_DIR: stateDir,
      CATENA_CNI_TIMEOUT_MS: "2000",
      ...env,
    },
    stdin,
  );
}

const conf = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: "1.1.0", name: "n", type: "catena-cni", network: "pods", ...extra });

beforeAll(async () => {
  bin = await catenaCniDir();
  stateDir = await mkdtemp(join(tmpdir(), "catena-cni-state-"));
});

afterAll(async () => {
  await bin?.dispose();
  await rm(stateDir, { recursive: true, force: true });
});

describe("error results", () => {
  const cases: {
    name: string;
    command: string;
    stdin: string;
    env?: Record<string, string>;
    code: number;
    msg: RegExp;
  }[] = [
    { name: "bad JSON is 6", command: "ADD", stdin: "{not json", code: 6, msg: /decoding/ },
    { name: "a JSON array is 6", command: "ADD", stdin: "[1]", code: 6, msg: /JSON object/ },
    {
      name: "unknown cniVersion is 1",
      command: "ADD",
      stdin: conf({ cniVersion: "9.9.9" }),
      code: 1,
      msg: /incompatible CNI versions; config is "9.9.9"/,
    },
    {
      name: "absent cniVersion (0.1.0) is 1",
      command: "ADD",
      stdin: JSON.stringify({ name: "n", type: "catena-cni", network: "x" }),
      code: 1,
      msg: /"0.1.0"/,
    },
    {
      name: "missing variables are 4, all named",
      command: "ADD",
      stdin: conf(),
      env: { CNI_PATH: "/usr/lib/cni" },
      code: 4,
      msg: /\[CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME\] missing/,
    },
    {
      name: "a bad container id is 4",
      command: "DEL",
      stdin: conf(),
      env: { ...ENV, CNI_CONTAINERID: "-bad id" },
      code: 4,
      msg: /CNI_CONTAINERID/,
    },
    {
      name: "a bad interface name is 4",
      command: "DEL",
      stdin: conf(),
      env: { ...ENV, CNI_IFNAME: "way-too-long-ifname" },
      code: 4,
      msg: /CNI_IFNAME/,
    },
    {
      name: "an unknown command is 4",
      command: "FROB",
      stdin: conf(),
      code: 4,
      msg: /unknown CNI_COMMAND: FROB/,
    },
    {
      name: "no network is 7",
      command: "ADD",
      stdin: conf({ network: undefined }),
      code: 7,
      msg: /invalid network configuration/,
    },
    {
      name: "chained ADD without prevResult is 7",
      command: "ADD",
      stdin: conf({ server: "http://127.0.0.1:9" }),
      code: 7,
      msg: /needs prevResult/,
    },
    {
      name: "CHECK under 0.3.1 is 1",
      command: "CHECK",
      stdin: conf({ cniVersion: "0.3.1" }),
      code: 1,
      msg: /does not allow command CHECK/,
    },
    {
      name: "GC under 1.0.0 is 1",
      command: "GC",
      stdin: conf({ cniVersion: "1.0.0" }),
      env: { CNI_PATH: "/usr/lib/cni" },
      code: 1,
      msg: /does not allow command GC/,
    },
    {
      name: "bad CNI_ARGS is 4",
      command: "ADD",
      stdin: conf(),
      env: { ...ENV, CNI_ARGS: "oops" },
      code: 4,
      msg: /CNI_ARGS/,
    },
  ];

  it.each(cases)("$name", async ({ command, stdin, env, code, msg }) => {
    const r = await plugin(command, stdin, env);
    expect(r.code).not.toBe(0);
    expect(r.json).toMatchObject({ code, msg: expect.stringMatching(msg), cniVersion: expect.any(String) });
  });

  it("VERSION lists 0.3.1 to 1.1.0", async () => {
    const r = await plugin("VERSION", "", {});
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: "1.1.0", supportedVersions: ["0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
  });
});

describe("control server unreachable, then back", () => {
  let port: number;
  let dataDir: string;
  const root = uniqueRoot();
  let server: ControlServer | undefined;
  const start = async () => {
    server = await startControlServer({
      apiAddr: `127.0.0.1:${port}`,
      xdsAddr: "127.0.0.1:0",
      dataDir,
      natsUrl: SHARED_NATS_URL,
      natsRoot: root,
      embeddedNats: false,
      logger: pino({ level: "silent" }),
    });
  };
  const ipamConf = () =>
    JSON.stringify({
      cniVersion: "1.0.0",
      name: "n",
      type: "bridge",
      ipam: { type: "catena-cni", network: "pods", server: `http://127.0.0.1:${port}` },
    });

  beforeAll(async () => {
    port = await freePort();
    dataDir = await mkdtemp(join(tmpdir(), "catena-cni-down-"));
    await start();
    await post(`http://127.0.0.1:${port}`, "/v1/apply", {
      apiVersion: "catena.dev/v1alpha1",
      kind: "Network",
      metadata: { name: "pods" },
      spec: { cidr: "127.73.0.0/24" },
    });
  });

  afterAll(async () => {
    await server?.close();
    await deleteEventStream(SHARED_NATS_URL, root).catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  });

  it("IPAM ADD answers the Network's address, the same on a retry (0.3.1 result shape)", async () => {
    const first = await plugin("ADD", ipamConf());
    expect(first.code, first.stdout).toBe(0);
    expect(first.json).toEqual({
      cniVersion: "1.0.0",
      ips: [{ address: "127.73.0.2/24", gateway: "127.73.0.1" }],
      routes: [],
      dns: {},
    });
    const again = await plugin("ADD", ipamConf().replace('"1.0.0"', '"0.3.1"'));
    expect(again.json).toMatchObject({
      cniVersion: "0.3.1",
      ips: [{ version: "4", address: "127.73.0.2/24" }],
    });
  });

  it("with the server down: ADD is 11 (try again later), DEL succeeds and leaves a pending delete", async () => {
    await server?.close();
    server = undefined;
    const add = await plugin("ADD", ipamConf(), { ...ENV, CNI_CONTAINERID: "other0002" });
    expect(add.code).not.toBe(0);
    expect(add.json).toMatchObject({ code: 11, msg: expect.stringMatching(/unreachable/) });
    const del = await plugin("DEL", ipamConf());
    expect(del.code, del.stdout).toBe(0);
    expect(del.stdout).toBe("");
    expect(await readdir(join(stateDir, "pending-deletes"))).toHaveLength(1);
    const status = await plugin("STATUS", ipamConf().replace('"1.0.0"', '"1.1.0"'), {
      CNI_PATH: "/usr/lib/cni",
    });
    expect(status.json).toMatchObject({ code: 50 });
  });

  it("once the server is back, the next invocation replays the DEL and the address is free", async () => {
    await start();
    const base = `http://127.0.0.1:${port}`;
    expect((await getJson(base, "/v1/ipam/networks/pods")).body).toMatchObject({ allocated: 1 });
    const status = await plugin("STATUS", ipamConf().replace('"1.0.0"', '"1.1.0"'), {
      CNI_PATH: "/usr/lib/cni",
    });
    expect(status.code, status.stdout).toBe(0);
    expect(await readdir(join(stateDir, "pending-deletes"))).toHaveLength(0);
    expect((await getJson(base, "/v1/ipam/networks/pods")).body).toMatchObject({ allocated: 0 });
  });

  it("GC (1.1.0) releases this node's attachments the runtime no longer lists, and keeps the others", async () => {
    const conf11 = () => ipamConf().replace('"1.0.0"', '"1.1.0"');
    for (const id of ["gc-keep", "gc-drop"]) {
      const r = await plugin("ADD", conf11(), { ...ENV, CNI_CONTAINERID: id, CATENA_CNI_NODE: "gc-node" });
      expect(r.code, r.stdout).toBe(0);
    }
    const gcConf = JSON.stringify({
      ...JSON.parse(conf11()),
      "cni.dev/valid-attachments": [{ containerID: "gc-keep", ifname: "eth0" }],
    });
    const gc = await plugin("GC", gcConf, { CNI_PATH: "/usr/lib/cni", CATENA_CNI_NODE: "gc-node" });
    expect(gc.code, gc.stdout).toBe(0);
    const base = `http://127.0.0.1:${port}/v1/ipam/networks/pods/attachments`;
    expect((await getJson(base, `${base}/gc-keep/eth0`)).status).toBe(200);
    expect((await getJson(base, `${base}/gc-drop/eth0`)).status).toBe(404);
    expect((await plugin("DEL", conf11(), { ...ENV, CNI_CONTAINERID: "gc-keep" })).code).toBe(0);
  });

  it("chained GC deletes this node's Workloads of the network whose containers the runtime no longer lists", async () => {
    const chained = (extra: Record<string, unknown> = {}) =>
      JSON.stringify({
        cniVersion: "1.1.0",
        name: "n",
        type: "catena-cni",
        network: "pods",
        server: `http://127.0.0.1:${port}`,
        ...extra,
      });
    for (const [i, id] of ["chkeep", "chdrop"].entries()) {
      const prevResult = {
        cniVersion: "1.1.0",
        interfaces: [{ name: "eth0", sandbox: "/var/run/netns/x" }],
        ips: [{ address: `127.73.0.${50 + i}/24`, interface: 0 }],
      };
      const r = await plugin("ADD", chained({ prevResult }), {
        ...ENV,
        CNI_CONTAINERID: id,
        CATENA_CNI_NODE: "gc-node",
      });
      expect(r.code, r.stdout).toBe(0);
      expect(r.json).toMatchObject({ ips: prevResult.ips }); // passed through
    }
    const base = `http://127.0.0.1:${port}`;
    expect((await getJson(base, "/v1/workloads/ctr-chdrop")).status).toBe(200);
    const gc = await plugin(
      "GC",
      chained({ "cni.dev/valid-attachments": [{ containerID: "chkeep", ifname: "eth0" }] }),
      { CNI_PATH: "/usr/lib/cni", CATENA_CNI_NODE: "gc-node" },
    );
    expect(gc.code, gc.stdout).toBe(0);
    expect((await getJson(base, "/v1/workloads/ctr-chkeep")).status).toBe(200);
    expect((await getJson(base, "/v1/workloads/ctr-chdrop")).status).toBe(404);
    expect((await plugin("DEL", chained(), { ...ENV, CNI_CONTAINERID: "chkeep" })).code).toBe(0);
    expect((await getJson(base, "/v1/workloads/ctr-chkeep")).status).toBe(404);
  });

  it("an ADD of the same attachment drops its pending delete (the runtime wants it again)", async () => {
    await server?.close();
    server = undefined;
    expect((await plugin("DEL", ipamConf())).code).toBe(0);
    expect(await readdir(join(stateDir, "pending-deletes"))).toHaveLength(1);
    await start();
    const add = await plugin("ADD", ipamConf());
    expect(add.code, add.stdout).toBe(0);
    expect(await readdir(join(stateDir, "pending-deletes"))).toHaveLength(0);
    expect((await getJson(`http://127.0.0.1:${port}`, "/v1/ipam/networks/pods")).body).toMatchObject({
      allocated: 1,
    });
    expect((await plugin("DEL", ipamConf())).code).toBe(0);
  });
});
