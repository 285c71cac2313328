// What several control servers share besides the objects (`--store nats-kv`), over one NATS
// connection (store/kv-shared.ts): IPAM leases in `<ROOT>_IPAM`. The embedded store shares nothing
// and needs none of this.
import type { Logger } from "pino";
import type { LeaseValue } from "../ipam/allocator.js";
import { kvLeaseStore } from "../ipam/kv-lease-store.js";
import type { LeaseStore } from "../ipam/lease-store.js";
import { KvCas } from "../store/kv-cas.js";
import { connectShared } from "../store/kv-shared.js";

export interface SharedState {
  leases: LeaseStore<LeaseValue>;
  close(): Promise<void>;
}

export async function openSharedState(options: {
  servers: string;
  root: string;
  logger: Logger;
}): Promise<SharedState> {
  const { logger } = options;
  const connection = await connectShared({
    servers: options.servers,
    root: options.root,
    logger: { warn: (msg, fields) => logger.warn(fields ?? {}, msg) },
  });
  try {
    const leases = kvLeaseStore(new KvCas<LeaseValue>(await connection.bucket("IPAM")));
    return {
      leases,
      close: () => connection.close(),
    };
  } catch (err) {
    await connection.close();
    throw err;
  }
}
