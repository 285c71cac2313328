// CNI ADD and DEL latency, p50 and p99 over 200 containers (network namespaces), for the reference
// `host-local` IPAM and for catena-cni in the same run, each under the reference `bridge` plugin:
//   bridge + host-local                      the peer
//   bridge + catena-cni (IPAM)               an address from Catena's IPAM over the control server's API
//   bridge + catena-cni (IPAM) + catena-cni  the same, and the container registered as a Workload
// Every container gets one interface per setup (eth0, eth1, eth2 on three bridges), and the setups
// take turns per container, so drift hits them alike. The plugins run as processes with the spec's
// environment and stdin, as a runtime runs them. Needs root, iproute2, the reference plugins in
// /usr/lib/cni, and the built catena-cni (`npm run build`).
// Run: node --import tsx bench/cni.ts   (BENCH_CONTAINERS=200)
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { pino } from "pino";
import { startControlServer } from "../services/control/server.js";
import { deleteEventStream } from "../test/support/nats.js";

const run = promisify(execFile);
const REPO = fileURLToPath(new URL("..", import.meta.url)).replace(/\/dist\/$/, "/");
const CONTAINERS = Number(process.env.BENCH_CONTAINERS ?? 200);
const REFERENCE = process.env.CNI_REFERENCE_PATH ?? "/usr/lib/cni";

interface Setup {
  label: string;
  ifname: string;
  list: { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
  add: number[];
  del: number[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function execPlugin(
  path: string,
  env: Record<string, string>,
  stdin: string,
): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, [], { env, stdio: ["pipe", "pipe", "ignore"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout }));
    child.stdin.end(stdin);
  });
}

async function main(): Promise<void> {
  const tag = randomBytes(2).toString("hex");
  const built = join(REPO, "dist/services/cni/main.js");
  await access(built).catch(() => {
    throw new Error(`${built} is missing: run npm run build first`);
  });
  const probe = `catena-bench-probe-${tag}`;
  await run("ip", ["netns", "add", probe]).catch((err: unknown) => {
    throw new Error(`needs root and iproute2 (ip netns add failed: ${String(err)})`);
  });
  await run("ip", ["netns", "del", probe]);

  const work = await mkdtemp(join(tmpdir(), "catena-bench-cni-"));
  const binDir = join(work, "bin");
  await run("mkdir", ["-p", binDir]);
  await writeFile(join(binDir, "catena-cni"), `#!/bin/sh\nexec "${process.execPath}" "${built}" "$@"\n`);
  await chmod(join(binDir, "catena-cni"), 0o755);
  const root = `bench${tag}`;
  const control = await startControlServer({
    apiAddr: "127.0.0.1:0",
    xdsAddr: "127.0.0.1:0",
    dataDir: join(work, "control"),
    natsUrl: process.env.CATENA_NATS_URL ?? "nats://127.0.0.1:4222",
    natsRoot: root,
    embeddedNats: true,
    logger: pino({ level: "silent" }),
  });
  const server = control.apiUrl;
  const apply = await fetch(`${server}/v1/apply`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(
      ["bench-ipam", "bench-chain"].map((name, i) => ({
        apiVersion: "catena.dev/v1alpha1",
        kind: "Network",
        metadata: { name },
        // Addresses exist only inside this run's namespaces; the bridges carry frames, no address.
        spec: { cidr: `198.18.${80 + i}.0/24` },
      })),
    ),
  });
  if (!apply.ok) throw new Error(`apply failed: ${await apply.text()}`);

  const bridge = (i: number) => `cbb${i}-${tag}`;
  const bridgeConf = (i: number, ipam: Record<string, unknown>) => ({
    type: "bridge",
    bridge: bridge(i),
    isGateway: false,
    ipMasq: false,
    ipam,
  });
  const setups: Setup[] = [
    {
      label: "bridge + host-local (reference)",
      ifname: "eth0",
      list: {
        cniVersion: "1.0.0",
        name: "bench-hl",
        plugins: [
          bridgeConf(0, { type: "host-local", subnet: "198.18.79.0/24", dataDir: join(work, "host-local") }),
        ],
      },
      add: [],
      del: [],
    },
    {
      label: "bridge + catena-cni IPAM",
      ifname: "eth1",
      list: {
        cniVersion: "1.0.0",
        name: "bench-ipam",
        plugins: [bridgeConf(1, { type: "catena-cni", network: "bench-ipam", server })],
      },
      add: [],
      del: [],
    },
    {
      label: "bridge + catena-cni IPAM + chained",
      ifname: "eth2",
      list: {
        cniVersion: "1.0.0",
        name: "bench-chain",
        plugins: [
          bridgeConf(2, { type: "catena-cni", network: "bench-chain", server }),
          { type: "catena-cni", network: "bench-chain", server },
        ],
      },
      add: [],
      del: [],
    },
  ];

  const namespaces: string[] = [];
  const envFor = (command: string, containerId: string, netns: string, ifname: string) => ({
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: netns,
    CNI_IFNAME: ifname,
    CNI_PATH: `${binDir}:${REFERENCE}`,
    CATENA_CNI_STATE_DIR: join(work, "cni-state"),
  });
  /** A network list as libcni runs it; returns the elapsed milliseconds and the result for DEL. */
  const runList = async (
    setup: Setup,
    command: "ADD" | "DEL",
    containerId: string,
    netns: string,
    cached?: unknown,
  ) => {
    const plugins = command === "ADD" ? setup.list.plugins : [...setup.list.plugins].reverse();
    let prev: unknown = command === "DEL" ? cached : undefined;
    const t0 = performance.now();
    for (const plugin of plugins) {
      const conf = {
        ...plugin,
        name: setup.list.name,
        cniVersion: setup.list.cniVersion,
        ...(prev ? { prevResult: prev } : {}),
      };
      const type = plugin.type as string;
      const path = type === "catena-cni" ? join(binDir, type) : join(REFERENCE, type);
      const r = await execPlugin(
        path,
        envFor(command, containerId, netns, setup.ifname),
        JSON.stringify(conf),
      );
      if (r.code !== 0) throw new Error(`${setup.label}: ${type} ${command} failed: ${r.stdout}`);
      if (command === "ADD") prev = JSON.parse(r.stdout);
    }
    return { ms: performance.now() - t0, result: prev };
  };

  try {
    console.log(
      `CNI ADD/DEL latency over ${CONTAINERS} containers (network namespaces), node ${process.version}`,
    );
    for (let i = 0; i < CONTAINERS; i++) {
      const name = `cbench-${tag}-${i}`;
      await run("ip", ["netns", "add", name]);
      namespaces.push(name);
    }
    const results = new Map<string, unknown>();
    for (const [i, ns] of namespaces.entries()) {
      for (const setup of setups) {
        const id = `bench${tag}c${i}`;
        const r = await runList(setup, "ADD", id, `/var/run/netns/${ns}`);
        setup.add.push(r.ms);
        results.set(`${setup.label}/${i}`, r.result);
      }
    }
    for (const [i, ns] of namespaces.entries()) {
      for (const setup of setups) {
        const r = await runList(
          setup,
          "DEL",
          `bench${tag}c${i}`,
          `/var/run/netns/${ns}`,
          results.get(`${setup.label}/${i}`),
        );
        setup.del.push(r.ms);
      }
    }
    const cols = [
      "setup".padEnd(36),
      "ADD p50".padStart(9),
      "ADD p99".padStart(9),
      "DEL p50".padStart(9),
      "DEL p99".padStart(9),
    ];
    console.log(`${cols.join(" ")}   (ms)`);
    for (const s of setups) {
      const add = [...s.add].sort((a, b) => a - b);
      const del = [...s.del].sort((a, b) => a - b);
      console.log(
        [
          s.label.padEnd(36),
          percentile(add, 50).toFixed(1).padStart(9),
          percentile(add, 99).toFixed(1).padStart(9),
          percentile(del, 50).toFixed(1).padStart(9),
          percentile(del, 99).toFixed(1).padStart(9),
        ].join(" "),
      );
    }
    const ipamUsage = await (await fetch(`${server}/v1/ipam/networks/bench-ipam`)).json();
    console.log(`after DEL: bench-ipam has ${(ipamUsage as { allocated: number }).allocated} leases`);
  } finally {
    for (const ns of namespaces) await run("ip", ["netns", "del", ns]).catch(() => undefined);
    for (let i = 0; i < setups.length; i++)
      await run("ip", ["link", "del", bridge(i)]).catch(() => undefined);
    await control.close();
    await deleteEventStream(process.env.CATENA_NATS_URL ?? "nats://127.0.0.1:4222", root).catch(
      () => undefined,
    );
    await rm(work, { recursive: true, force: true });
  }
}

await main();
