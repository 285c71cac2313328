// What several control servers share besides the objects (`--store nats-kv`): one NATS connection
// and the buckets next to `<ROOT>_STATE`, one per kind of traffic so none of it crosses the state
// bucket's watch (which every server applies in order, intents and all):
//   <ROOT>_IPAM       address leases (ipam/kv-lease-store.ts)
//   <ROOT>_INSTANCES  connected function instances and control server heartbeats (registry/shared-instances.ts)
//   <ROOT>_ENDPOINTS  self-registered endpoints (registry/shared-registrations.ts)
//   <ROOT>_CA         the mesh CA's root, so every server signs with one (ca/shared-root.ts)
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { CatenaError, ErrorCode } from "../errors.js";
import { natsServers } from "../events/connect.js";
import type { StoreLogger } from "./embedded-store.js";
import { openBucket } from "./kv-cas.js";

export type SharedBucket = "IPAM" | "INSTANCES" | "ENDPOINTS" | "CA";

/** `<ROOT>_<WHAT>`, named like `<ROOT>_STATE` and the events stream. */
export function sharedBucketName(root: string, what: SharedBucket): string {
  return `${root.toUpperCase().replace(/[^A-Z0-9_-]/g, "_")}_${what}`;
}

export interface SharedConnection {
  nc: NatsConnection;
  jsm: JetStreamManager;
  root: string;
  /** Binds to (or creates) `<ROOT>_<what>`; once per bucket. */
  bucket(what: SharedBucket): Promise<KV>;
  close(): Promise<void>;
}

export async function connectShared(options: {
  servers: string | readonly string[];
  root: string;
  logger: StoreLogger;
  /** Replicas of buckets created here (default: 3 on a cluster, else 1). */
  replicas?: number;
}): Promise<SharedConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: natsServers(options.servers),
      name: "catena-shared",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
  } catch (err) {
    throw new CatenaError(
      ErrorCode.Unavailable,
      `shared state: cannot connect to NATS at ${String(options.servers)}`,
      [],
      { cause: err },
    );
  }
  const jsm = await jetstreamManager(nc);
  const opened = new Map<SharedBucket, Promise<KV>>();
  return {
    nc,
    jsm,
    root: options.root,
    bucket(what) {
      let kv = opened.get(what);
      if (!kv) {
        kv = openBucket(nc, sharedBucketName(options.root, what), {
          ...(options.replicas !== undefined && { replicas: options.replicas }),
          warn: (msg, fields) => options.logger.warn(msg, fields),
        });
        opened.set(what, kv);
      }
      return kv;
    },
    async close() {
      await nc.drain().catch(() => nc.close());
    },
  };
}
