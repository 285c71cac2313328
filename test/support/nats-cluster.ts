// A three-node NATS cluster with JetStream on loopback, for tests that kill and restart nodes. It
// runs the shipped configs (deploy/nats/cluster/n1..n3.conf) with free ports and temporary store
// directories substituted, so the tests also prove those files.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import {
  findExecutable,
  freePort,
  type NatsServerProcess,
  startNatsServerProcess,
} from "../../services/control/events/nats-server-process.js";

const CONFIG_DIR = fileURLToPath(new URL("../../deploy/nats/cluster/", import.meta.url));
/** The ports the shipped configs use: clients, routes, monitoring, per node. */
const SHIPPED_PORTS = [
  [14222, 16222, 18222],
  [14223, 16223, 18223],
  [14224, 16224, 18224],
] as const;

export interface ClusterNode {
  name: string;
  url: string;
  port: number;
  running: boolean;
}

export interface TestNatsCluster {
  nodes: ClusterNode[];
  /** Every node's URL, comma-separated: what CATENA_NATS_URL gets. */
  url: string;
  /** SIGKILL (a crash) by default; SIGTERM is a clean shutdown. */
  stop(index: number, signal?: NodeJS.Signals): Promise<void>;
  start(index: number): Promise<void>;
  /** Resolves once JetStream answers through the running nodes (a meta leader is elected). */
  ready(timeoutMs?: number): Promise<void>;
  dispose(): Promise<void>;
}

export async function startNatsCluster(): Promise<TestNatsCluster> {
  const binary = findExecutable("nats-server", process.env.PATH ?? "") ?? "/usr/sbin/nats-server";
  const dir = await mkdtemp(join(tmpdir(), "catena-nats-cluster-"));
  const ports = new Map<number, number>();
  for (const row of SHIPPED_PORTS) for (const p of row) ports.set(p, await freePort());
  const configs: string[] = [];
  for (let i = 0; i < 3; i++) {
    const shipped = await readFile(join(CONFIG_DIR, `n${i + 1}.conf`), "utf8");
    const text = shipped
      .replace(/\b1[468]22[234]\b/g, (p) => String(ports.get(Number(p)) ?? p))
      .replace(/"\.\/data\/(n\d)"/, (_, n: string) => JSON.stringify(join(dir, n)));
    const path = join(dir, `n${i + 1}.conf`);
    await writeFile(path, text);
    configs.push(path);
  }
  const procs: (NatsServerProcess | undefined)[] = [undefined, undefined, undefined];
  const nodes: ClusterNode[] = SHIPPED_PORTS.map((row, i) => {
    const port = ports.get(row[0]) as number;
    return { name: `n${i + 1}`, url: `nats://127.0.0.1:${port}`, port, running: false };
  });
  const start = async (i: number) => {
    const node = nodes[i] as ClusterNode;
    procs[i] = await startNatsServerProcess({
      binary,
      host: "127.0.0.1",
      port: node.port,
      jetstream: false, // the config file turns it on, with its store directory
      readyTimeoutMs: 10_000,
      args: ["-c", configs[i] as string],
    });
    node.running = true;
  };
  const stop = async (i: number, signal: NodeJS.Signals = "SIGKILL") => {
    const p = procs[i];
    procs[i] = undefined;
    (nodes[i] as ClusterNode).running = false;
    await p?.stop(signal);
  };
  const cluster: TestNatsCluster = {
    nodes,
    url: nodes.map((n) => n.url).join(","),
    stop,
    start,
    async ready(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      const servers = nodes.filter((n) => n.running).map((n) => n.url);
      for (;;) {
        try {
          const nc = await connect({ servers, timeout: 1000 });
          try {
            const jsm = await jetstreamManager(nc, { timeout: 2000 });
            await jsm.getAccountInfo();
            // Every running node is a JetStream peer: a stream with a replica on each can be placed.
            const name = `READY_PROBE_${Date.now()}`;
            await jsm.streams.add({
              name,
              subjects: [`ready-probe.${Date.now()}`],
              num_replicas: servers.length,
              storage: StorageType.Memory,
            });
            await jsm.streams.delete(name);
            return;
          } finally {
            await nc.close();
          }
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`NATS cluster not ready: ${String(err)}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    },
    async dispose() {
      await Promise.all([0, 1, 2].map((i) => stop(i, "SIGTERM")));
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all([0, 1, 2].map(start));
    await cluster.ready();
  } catch (err) {
    await cluster.dispose();
    throw err;
  }
  return cluster;
}
