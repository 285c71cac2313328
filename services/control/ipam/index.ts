// IPAM as the control server runs it: leases in the data directory, the Workload reconciler, and
// the service the API routes (api/ipam-routes.ts) call.
import { join } from "node:path";
import type { Logger } from "pino";
import type { EventSink } from "../events/types.js";
import type { StatusWriter } from "../status/status-writer.js";
import type { Store } from "../store/store.js";
import type { LeaseValue } from "./allocator.js";
import { FileLeaseStore } from "./file-lease-store.js";
import { Ipam } from "./ipam.js";
import type { LeaseStore } from "./lease-store.js";
import { startWorkloadAddresses, type WorkloadAddresses } from "./workload-addresses.js";

export type { Lease } from "./allocator.js";
export { type AddressAssignment, cniOwner, Ipam, type NetworkUsage, workloadOwner } from "./ipam.js";
export { workloadAddress, workloadAddresses } from "./workload-address.js";

export interface IpamServiceOptions {
  store: Store;
  status: StatusWriter;
  events: EventSink;
  logger: Logger;
  /** The control server's data directory; leases go to `<dataDir>/ipam`. */
  dataDir: string;
  /** Another lease store (a KV bucket shared by replicas); the data directory's otherwise. */
  leases?: LeaseStore<LeaseValue>;
}

export interface IpamService {
  ipam: Ipam;
  workloads: WorkloadAddresses;
  close(): Promise<void>;
}

export async function startIpamService(options: IpamServiceOptions): Promise<IpamService> {
  const file = options.leases
    ? undefined
    : await FileLeaseStore.open<LeaseValue>(join(options.dataDir, "ipam"));
  const leases = options.leases ?? (file as LeaseStore<LeaseValue>);
  const ipam = new Ipam({ store: options.store, leases, events: options.events, logger: options.logger });
  const workloads = startWorkloadAddresses({ ...options, ipam });
  let closing: Promise<void> | undefined;
  return {
    ipam,
    workloads,
    close() {
      closing ??= (async () => {
        await workloads.close();
        await file?.close();
      })();
      return closing;
    },
  };
}
