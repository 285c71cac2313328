// Workloads join and leave networks at run time: every membership gets a lease (the fixed address
// the spec names, else one IPAM picks), written to `status.addresses` with an `Addressed` condition;
// a membership that goes away (spec change, Workload deleted) gives its address back. Events:
// `workload.<name>.joined` / `left` per network, besides IPAM's own `allocated` / `released`.
import type { Logger } from "pino";
import { isCatenaError } from "../errors.js";
import type { EventSink } from "../events/types.js";
import type { NetworkSpec, WorkloadSpec } from "../model/schemas.js";
import { setCondition } from "../status/conditions.js";
import type { StatusWriter } from "../status/status-writer.js";
import type { Store } from "../store/store.js";
import { type Ipam, workloadOwner } from "./ipam.js";
import { statusAddresses, type WorkloadAddress } from "./workload-address.js";

export interface WorkloadAddressesOptions {
  store: Store;
  ipam: Ipam;
  status: StatusWriter;
  events: EventSink;
  logger: Logger;
}

export interface WorkloadAddresses {
  /** Resolves when the reconciler has stopped. */
  done: Promise<void>;
  /** Resolves once every Workload known at start has been reconciled (tests, readiness). */
  caughtUp: Promise<void>;
  /** Resolves when every reconcile queued so far has finished. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export function startWorkloadAddresses(options: WorkloadAddressesOptions): WorkloadAddresses {
  const { store, logger } = options;
  const queues = new Map<string, Promise<void>>();
  /** Per Workload, the addresses last written: a deleted Workload's status is gone with it. */
  const memory = new Map<string, WorkloadAddress[]>();
  const pending = new Set<Promise<void>>();
  const enqueue = (name: string): Promise<void> => {
    const previous = queues.get(name) ?? Promise.resolve();
    const run = previous
      .then(() => reconcile(options, name, memory))
      .catch((err: unknown) => {
        logger.warn({ err, workload: name }, "workload addresses: reconcile failed");
      });
    queues.set(name, run);
    pending.add(run);
    void run.then(() => {
      pending.delete(run);
      if (queues.get(name) === run) queues.delete(name);
    });
    return run;
  };
  const watch = store.watch({ kinds: ["Workload", "Network"] });
  let caughtUpResolve!: () => void;
  const caughtUp = new Promise<void>((r) => {
    caughtUpResolve = r;
  });
  const done = (async () => {
    try {
      // Leases of Workloads deleted while the server was down, then every Workload as it is now.
      await sweep(options);
      const all = await store.list("Workload");
      await Promise.all(all.map((w) => enqueue(w.metadata.name)));
      caughtUpResolve();
      for await (const change of watch) {
        const { object } = change;
        if (object.kind === "Workload") {
          if (change.type !== "status") void enqueue(object.metadata.name);
          continue;
        }
        if (change.type === "status") continue;
        if (change.type === "deleted") {
          await options.ipam
            .purge(object.metadata.name, object.spec as NetworkSpec)
            .catch((err: unknown) => logger.warn({ err }, "workload addresses: purge failed"));
        }
        // A Network appearing, changing or going: its members may now get, keep or lose addresses.
        for (const w of await store.list("Workload")) {
          if ((w.spec as WorkloadSpec).networks.some((n) => n.name === object.metadata.name))
            void enqueue(w.metadata.name);
        }
      }
    } catch (err) {
      logger.error({ err }, "workload addresses: store watch ended");
    } finally {
      caughtUpResolve();
    }
  })();
  return {
    done,
    caughtUp,
    async idle() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    async close() {
      watch.close();
      await done;
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}

async function reconcile(
  options: WorkloadAddressesOptions,
  name: string,
  memory: Map<string, WorkloadAddress[]>,
): Promise<void> {
  const { store, ipam, status, events } = options;
  const owner = workloadOwner(name);
  const workload = await store.get("Workload", name);
  const memberships = workload ? (workload.spec as WorkloadSpec).networks : [];
  const addresses: WorkloadAddress[] = [];
  const problems: string[] = [];
  let problemReason = "Allocated";
  for (const m of memberships) {
    try {
      if (m.address !== undefined) {
        const allocator = await ipam.allocator(m.name);
        const holder = await allocator.holder(m.address);
        // The CNI plugin allocated it for this very Workload before registering it: that lease backs it.
        if (holder && holder.owner !== owner && holder.workload === name) {
          await ipam.release(m.name, owner); // an older lease of its own, if the address changed
          addresses.push({ network: m.name, address: m.address });
          continue;
        }
        const own = await allocator.lookup(owner);
        if (own && own.address !== m.address) await ipam.release(m.name, owner);
      }
      const assignment = await ipam.allocate(m.name, {
        owner,
        workload: name,
        ...(m.address !== undefined && { address: m.address }),
      });
      addresses.push({ network: m.name, address: assignment.address });
    } catch (err) {
      if (!isCatenaError(err)) throw err;
      problems.push(`${m.name}: ${err.message}`);
      problemReason =
        err.code === "CATENA_NOT_FOUND"
          ? "NetworkNotFound"
          : err.code === "CATENA_CONFLICT"
            ? "AddressConflict"
            : "Exhausted";
    }
  }
  // Networks it left (or all, when deleted): give those addresses back.
  const member = new Set(memberships.map((m) => m.name));
  for (const network of await store.list("Network")) {
    const net = network.metadata.name;
    if (member.has(net)) continue;
    await ipam.release(net, owner).catch((err: unknown) => {
      if (!isCatenaError(err, "CATENA_NOT_FOUND")) throw err;
    });
  }

  const before = memory.get(name) ?? (workload ? statusAddresses(workload) : []);
  if (workload) memory.set(name, addresses);
  else memory.delete(name);
  const key = (a: WorkloadAddress) => `${a.network} ${a.address}`;
  const had = new Set(before.map(key));
  const has = new Set(addresses.map(key));
  if (workload) {
    await status.update("Workload", name, (current) => {
      const condition =
        problems.length === 0
          ? {
              type: "Addressed",
              status: "True" as const,
              reason: "Allocated",
              message: `${addresses.length} address(es)`,
            }
          : {
              type: "Addressed",
              status: "False" as const,
              reason: problemReason,
              message: problems.join("; "),
            };
      return {
        ...current.status,
        addresses,
        conditions: setCondition(current.status?.conditions ?? [], condition, new Date()),
      };
    });
  }
  for (const a of addresses) {
    if (!had.has(key(a))) events.emit({ kind: "workload", name, verb: "joined", data: { ...a } });
  }
  for (const a of before) {
    if (!has.has(key(a))) events.emit({ kind: "workload", name, verb: "left", data: { ...a } });
  }
}

/** Releases `workload/*` leases whose Workload no longer exists. */
async function sweep(options: WorkloadAddressesOptions): Promise<void> {
  const { store, ipam } = options;
  const workloads = new Set((await store.list("Workload")).map((w) => w.metadata.name));
  for (const network of await store.list("Network")) {
    await ipam.releaseWhere(
      network.metadata.name,
      (lease) => lease.owner.startsWith("workload/") && !workloads.has(lease.owner.slice("workload/".length)),
    );
  }
}
