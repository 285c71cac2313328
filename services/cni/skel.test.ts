import { describe, expect, it } from "vitest";
import { labelsFromArgs, parseCniArgs, parsePluginConfig, workloadName } from "./config.js";
import { PluginError, PluginErrorCode } from "./errors.js";
import { type CmdArgs, dispatch, type PluginFuncs } from "./skel.js";
import { SUPPORTED_VERSIONS } from "./version.js";

function harness(env: Record<string, string>, stdin: string, funcs: Partial<PluginFuncs> = {}) {
  const out: string[] = [];
  const calls: CmdArgs[] = [];
  const record = async (a: CmdArgs) => {
    calls.push(a);
  };
  const all: PluginFuncs = {
    add: async (a) => {
      calls.push(a);
      return { ips: [{ address: "10.0.0.2/24", gateway: "10.0.0.1" }], routes: [], dns: {} };
    },
    del: record,
    check: record,
    status: record,
    gc: record,
    ...funcs,
  };
  const io = {
    getenv: (n: string) => env[n],
    readStdin: async () => stdin,
    writeStdout: (t: string) => out.push(t),
    writeStderr: () => undefined,
  };
  return { run: () => dispatch(all, io, "test"), out, calls };
}

const FULL = { CNI_CONTAINERID: "c1", CNI_NETNS: "/n", CNI_IFNAME: "eth0", CNI_PATH: "/p" };

describe.each(SUPPORTED_VERSIONS)("[%s] skel", (version) => {
  const conf = JSON.stringify({ cniVersion: version, name: "n", type: "x" });

  it("ADD prints the result in the config's version", async () => {
    const h = harness({ ...FULL, CNI_COMMAND: "ADD" }, conf);
    expect(await h.run()).toBe(0);
    const result = JSON.parse(h.out.join(""));
    expect(result.cniVersion).toBe(version);
    const ip = result.ips[0];
    if (version.startsWith("0.")) expect(ip.version).toBe("4");
    else expect(ip.version).toBeUndefined();
  });

  it("DEL needs no CNI_NETNS and prints nothing", async () => {
    const h = harness(
      { CNI_CONTAINERID: "c1", CNI_IFNAME: "eth0", CNI_PATH: "/p", CNI_COMMAND: "DEL" },
      conf,
    );
    expect(await h.run()).toBe(0);
    expect(h.out).toEqual([]);
    expect(h.calls[0]?.netns).toBe("");
  });

  it("CHECK, STATUS and GC only from the versions that have them", async () => {
    for (const [command, min] of [
      ["CHECK", "0.4.0"],
      ["STATUS", "1.1.0"],
      ["GC", "1.1.0"],
    ] as const) {
      const h = harness({ ...FULL, CNI_COMMAND: command }, conf);
      const allowed = SUPPORTED_VERSIONS.indexOf(version) >= SUPPORTED_VERSIONS.indexOf(min);
      expect(await h.run()).toBe(allowed ? 0 : 1);
      if (!allowed) expect(JSON.parse(h.out.join(""))).toMatchObject({ code: 1 });
    }
  });
});

describe("skel edges", () => {
  it("a handler's PluginError keeps its code; anything else becomes 999", async () => {
    const coded = harness({ ...FULL, CNI_COMMAND: "ADD" }, JSON.stringify({ cniVersion: "1.1.0" }), {
      add: async () => {
        throw new PluginError(PluginErrorCode.TryAgainLater, "later", "why");
      },
    });
    expect(await coded.run()).toBe(1);
    expect(JSON.parse(coded.out.join(""))).toEqual({
      cniVersion: "1.1.0",
      code: 11,
      msg: "later",
      details: "why",
    });
    const plain = harness({ ...FULL, CNI_COMMAND: "DEL" }, JSON.stringify({ cniVersion: "1.1.0" }), {
      del: async () => {
        throw new Error("boom");
      },
    });
    expect(await plain.run()).toBe(1);
    expect(JSON.parse(plain.out.join(""))).toMatchObject({ code: 999, msg: "boom" });
  });
});

describe("config", () => {
  it("reads the IPAM role from ipam and the chained role from the top level", () => {
    expect(
      parsePluginConfig({ name: "n", type: "bridge", ipam: { type: "catena-cni", network: "edge" } }),
    ).toMatchObject({
      role: "ipam",
      network: "edge",
      server: "http://127.0.0.1:7070",
    });
    expect(
      parsePluginConfig({
        name: "n",
        type: "catena-cni",
        network: "edge",
        server: "http://h:1/",
        labels: { app: "x" },
      }),
    ).toMatchObject({ role: "chained", server: "http://h:1", labels: { app: "x" } });
  });

  it("reports every problem at once", () => {
    try {
      parsePluginConfig({ type: "catena-cni", network: "Bad_Name", server: 3, labels: { "bad key!": "v" } });
      throw new Error("no error");
    } catch (err) {
      expect(err).toMatchObject({ code: "InvalidConfig" });
      const details = (err as PluginError).details ?? "";
      for (const part of ["network", "server", "labels", "name"]) expect(details).toContain(part);
    }
  });

  it("names Workloads as DESIGN.md says", () => {
    expect(workloadName("0123456789abcdef", new Map())).toBe("ctr-0123456789ab");
    const k8s = parseCniArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-7d9f");
    expect(workloadName("0123456789abcdef", k8s)).toBe("shop-web-7d9f");
    const long = workloadName(
      "x",
      parseCniArgs(`K8S_POD_NAMESPACE=${"a".repeat(40)};K8S_POD_NAME=${"b".repeat(40)}`),
    );
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^a+-b+-[0-9a-f]{8}$/);
  });

  it("takes labels from CNI_ARGS as key:value pairs", () => {
    expect(labelsFromArgs(parseCniArgs("CATENA_LABELS=app:web,example.com/tier:front"))).toEqual({
      app: "web",
      "example.com/tier": "front",
    });
    expect(() => labelsFromArgs(parseCniArgs("CATENA_LABELS=novalue"))).toThrow(/key:value/);
  });
});
