// Several control servers on one NATS root (one `<ROOT>_STATE` bucket, one `<ROOT>_EVENTS` stream):
// the replicas the HA tests start, and small helpers they share.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../services/control/events/nats-server-process.js";
import { spawnCatena } from "../support/cli.js";
import { startTestControl, type TestControl } from "../support/control.js";
import { deleteEventStream, deleteStateBucket, SHARED_NATS_URL, uniqueRoot } from "../support/nats.js";

export interface Replicas {
  root: string;
  servers: TestControl[];
  /** Stops every replica still running, then removes the root's bucket and stream. */
  stop(): Promise<void>;
}

export async function startReplicas(
  count: number,
  options: { natsUrl?: string; root?: string } = {},
): Promise<Replicas> {
  const root = options.root ?? uniqueRoot();
  const natsUrl = options.natsUrl ?? SHARED_NATS_URL;
  const servers: TestControl[] = [];
  const stop = async () => {
    await Promise.allSettled(servers.map((s) => s.stop()));
    await deleteEventStream(natsUrl, root).catch(() => undefined);
    await deleteStateBucket(natsUrl, root).catch(() => undefined);
  };
  try {
    for (let i = 0; i < count; i++) {
      servers.push(await startTestControl({ root, natsUrl, store: "nats-kv", keepNatsState: true }));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { root, servers, stop };
}

export async function waitUntil<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const network = (name: string, cidr: string) => ({
  apiVersion: "catena.dev/v1alpha1",
  kind: "Network",
  metadata: { name },
  spec: { cidr },
});

export const service = (name: string, net: string, endpoints: { address: string; port: number }[]) => ({
  apiVersion: "catena.dev/v1alpha1",
  kind: "Service",
  metadata: { name },
  spec: { network: net, ports: [{ name: "http", port: 80 }], endpoints },
});

/** A control server as its own process (`catena control --store nats-kv`), so a test can SIGKILL it. */
export interface ReplicaProcess {
  url: string;
  xdsAddr: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function spawnReplica(root: string, natsUrl = SHARED_NATS_URL): Promise<ReplicaProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), "catena-ha-"));
  const apiPort = await freePort();
  const xdsPort = await freePort();
  const child = spawnCatena(
    [
      "control",
      "--store",
      "nats-kv",
      "--api-addr",
      `127.0.0.1:${apiPort}`,
      "--xds-addr",
      `127.0.0.1:${xdsPort}`,
      "--data-dir",
      dataDir,
    ],
    { CATENA_NATS_URL: natsUrl, CATENA_NATS_PREFIX: root },
  );
  let output = "";
  child.stdout?.on("data", (d: Buffer) => {
    output = (output + d.toString()).slice(-4000);
  });
  child.stderr?.on("data", (d: Buffer) => {
    output = (output + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    if (!gone) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${apiPort}`;
  try {
    await waitUntil(
      async () => {
        if (gone) throw new Error(`control server exited during startup: ${output}`);
        return (await fetch(`${url}/readyz`).catch(() => undefined))?.ok || undefined;
      },
      "the control server to be ready",
      30_000,
    );
  } catch (err) {
    await kill();
    throw err;
  }
  return { url, xdsAddr: `127.0.0.1:${xdsPort}`, kill };
}
