// Several control servers on one NATS root (one `<ROOT>_STATE` bucket, one `<ROOT>_EVENTS` stream):
// the replicas the HA tests start, and small helpers they share.
import { startTestControl, type TestControl } from "../support/control.js";
import { deleteEventStream, deleteStateBucket, SHARED_NATS_URL, uniqueRoot } from "../support/nats.js";

export interface Replicas {
  root: string;
  servers: TestControl[];
  /** Stops every replica still running, then removes the root's bucket and stream. */
  stop(): Promise<void>;
}

export async function startReplicas(count: number, options: { natsUrl?: string } = {}): Promise<Replicas> {
  const root = uniqueRoot();
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
