// What several control servers share besides the objects (`--store nats-kv`), over one NATS
// connection (store/kv-shared.ts): IPAM leases in `<ROOT>_IPAM`, connected function instances in
// `<ROOT>_INSTANCES`, self-registered endpoints in `<ROOT>_ENDPOINTS`. The embedded store shares
// nothing and needs none of this.
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import type { LeaseValue } from "../ipam/allocator.js";
import { kvLeaseStore } from "../ipam/kv-lease-store.js";
import type { LeaseStore } from "../ipam/lease-store.js";
import { KvCas } from "../store/kv-cas.js";
import { connectShared, sharedBucketName } from "../store/kv-shared.js";
import { SharedInstances } from "./shared-instances.js";
import { SharedRegistrations } from "./shared-registrations.js";

export interface SharedState {
  leases: LeaseStore<LeaseValue>;
  instances: SharedInstances;
  registrations: SharedRegistrations;
  /** Where the mesh CA's root is shared (ca/shared-root.ts). */
  caBucket: KV;
  close(): Promise<void>;
}

export async function openSharedState(options: {
  servers: string;
  root: string;
  logger: Logger;
  /** Instance sharing: heartbeat period and how long a silent server counts as alive (ms). */
  instanceRenewMs?: number;
  instanceTtlMs?: number;
}): Promise<SharedState> {
  const { logger } = options;
  const storeLogger = { warn: (msg: string, fields?: object) => logger.warn(fields ?? {}, msg) };
  const connection = await connectShared({
    servers: options.servers,
    root: options.root,
    logger: storeLogger,
  });
  try {
    const leases = kvLeaseStore(new KvCas<LeaseValue>(await connection.bucket("IPAM")));
    const instances = new SharedInstances({
      nc: connection.nc,
      jsm: connection.jsm,
      kv: await connection.bucket("INSTANCES"),
      bucket: sharedBucketName(options.root, "INSTANCES"),
      logger: storeLogger,
      ...(options.instanceRenewMs !== undefined && { renewMs: options.instanceRenewMs }),
      ...(options.instanceTtlMs !== undefined && { ttlMs: options.instanceTtlMs }),
    });
    await instances.start();
    const registrations = new SharedRegistrations({
      nc: connection.nc,
      jsm: connection.jsm,
      kv: await connection.bucket("ENDPOINTS"),
      bucket: sharedBucketName(options.root, "ENDPOINTS"),
      logger: storeLogger,
    });
    await registrations.start();
    logger.info(
      { server: instances.serverId, boundMs: instances.boundMs },
      "sharing function instances with the other control servers",
    );
    const caBucket = await connection.bucket("CA");
    return {
      leases,
      instances,
      registrations,
      caBucket,
      async close() {
        await registrations.close();
        await instances.close();
        await connection.close();
      },
    };
  } catch (err) {
    await connection.close();
    throw err;
  }
}
