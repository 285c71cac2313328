// Status of what runs on the data path: a ServiceChain's ingress and its Programmed and Ready
// conditions (every hop has instances, every instance ACKed the chain's resources), and a
// ServiceFunction's Ready (replicas connected) and Programmed (no instance holds a NACK). It reads
// what the compiler compiled and what the ADS server's status table says each node ACKed.
import type { Logger } from "pino";
import type { StatusReader } from "../../../xds/index.js";
import type { ChainProgress } from "../compiler/compiler.js";
import type { ServiceFunctionSpec } from "../model/index.js";
import type { Condition, Kind, ResourceStatus, StoredResource } from "../model/resource.js";
import type { FunctionInstance } from "../registry/instances.js";
import { type ConditionUpdate, setCondition } from "./conditions.js";
import type { StatusWriter } from "./status-writer.js";

/** Conditions to set, and status fields to set (a value) or remove (undefined). */
export interface DesiredStatus {
  conditions: ConditionUpdate[];
  fields: Record<string, unknown>;
}

export interface IngressAddress {
  address: string;
  port: number;
}

function shortType(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf(".") + 1);
}

function andMore(items: readonly string[]): string {
  return items.length > 1 ? `${items[0]} (and ${items.length - 1} more)` : (items[0] ?? "");
}

/** Whether every instance of every hop holds the chain's resources at the compiled versions. */
export function chainProgrammed(chain: ChainProgress, reader: StatusReader): ConditionUpdate {
  const type = "Programmed";
  if (chain.problem) return { type, status: "False", ...chain.problem };
  if (chain.expected.size === 0) {
    return {
      type,
      status: "False",
      reason: "NoInstances",
      message: "no instance runs a hop of this chain yet",
    };
  }
  const nacked: string[] = [];
  const pending: string[] = [];
  for (const [id, resources] of chain.expected) {
    const node = reader.node(id);
    let waiting = false;
    for (const r of resources) {
      const t = node?.types.get(r.typeUrl);
      const held = t?.resources.get(r.name);
      if (held?.version !== r.version) waiting = true;
      else if (held.state === "nacked") {
        const why = t?.errorDetail?.message ?? "rejected";
        nacked.push(`${id} rejected ${shortType(r.typeUrl)} ${r.name}: ${why}`);
      } else if (held.state !== "acked") waiting = true;
    }
    if (waiting) pending.push(id);
  }
  if (nacked.length > 0) return { type, status: "False", reason: "Nacked", message: andMore(nacked) };
  if (pending.length > 0) {
    return {
      type,
      status: "Unknown",
      reason: "AwaitingAck",
      message: `waiting for ${pending.join(", ")} to ACK this chain's resources`,
    };
  }
  return {
    type,
    status: "True",
    reason: "Acked",
    message: `every instance of every hop ACKed this chain's resources (${chain.expected.size} instance(s))`,
  };
}

export function chainStatus(chain: ChainProgress, reader: StatusReader): DesiredStatus {
  const programmed = chainProgrammed(chain, reader);
  const ingresses: IngressAddress[] = chain.ingress.map((i) => ({ address: i.address, port: chain.port }));
  let ready: ConditionUpdate;
  const empty = chain.stages.find((s) => s.instances.length === 0);
  if (chain.problem) ready = { type: "Ready", status: "False", ...chain.problem };
  else if (empty) {
    const fused = empty.hops.length > 1 ? ", fused" : "";
    ready = {
      type: "Ready",
      status: "False",
      reason: "NoInstances",
      message: empty.withheld
        ? `hop ${empty.hops[0]} (${empty.function}) waits: ${empty.withheld}`
        : `hop ${empty.hops[0]} (${empty.function}${fused}) has no connected instance with an address`,
    };
  } else if (programmed.status !== "True") ready = { ...programmed, type: "Ready" };
  else {
    ready = {
      type: "Ready",
      status: "True",
      reason: "Ready",
      message: `clients connect to ${ingresses.map((i) => `${i.address}:${i.port}`).join(", ")}`,
    };
  }
  return {
    conditions: [programmed, ready],
    fields: {
      ingress: ingresses[0],
      ingresses: ingresses.length > 0 ? ingresses : undefined,
    },
  };
}

export function functionStatus(
  fn: StoredResource,
  instances: readonly FunctionInstance[],
  reader: StatusReader,
): DesiredStatus {
  const replicas = (fn.spec as ServiceFunctionSpec).replicas ?? 1;
  const n = instances.length;
  const counted = `${n} of ${replicas} instance(s) connected`;
  let ready: ConditionUpdate;
  if (n >= replicas && n > 0)
    ready = { type: "Ready", status: "True", reason: "InstancesConnected", message: counted };
  else if (replicas === 0)
    ready = { type: "Ready", status: "True", reason: "NoReplicas", message: "replicas is 0" };
  else if (n === 0) ready = { type: "Ready", status: "False", reason: "NoInstances", message: counted };
  else ready = { type: "Ready", status: "False", reason: "MissingInstances", message: counted };

  const nacked: string[] = [];
  let pending = 0;
  for (const inst of instances) {
    const node = reader.node(inst.id);
    if (!node || node.streams === 0) continue;
    for (const t of node.types.values()) {
      if (t.nackedVersion !== undefined && t.nackedVersion === t.sentVersion && t.errorDetail) {
        nacked.push(
          `${inst.id} rejected ${shortType(t.typeUrl)} version ${t.nackedVersion}: ${t.errorDetail.message}`,
        );
      } else if (t.sentVersion !== undefined && t.sentVersion !== t.ackedVersion) pending++;
    }
  }
  // Programmed speaks only on evidence (a NACK held, or everything ACKed); while responses are in
  // flight or no instance is connected it keeps its last verdict, and Ready tells the rest.
  if (nacked.length > 0) {
    const programmed: ConditionUpdate = {
      type: "Programmed",
      status: "False",
      reason: "Nacked",
      message: andMore(nacked),
    };
    return { conditions: [programmed, ready], fields: {} };
  }
  if (n > 0 && pending === 0) {
    const programmed: ConditionUpdate = {
      type: "Programmed",
      status: "True",
      reason: "Acked",
      message: "every connected instance ACKed",
    };
    return { conditions: [programmed, ready], fields: {} };
  }
  return { conditions: [ready], fields: {} };
}

/** Whether `status` already says what `desired` says (lastTransitionTime aside). */
export function statusSays(status: ResourceStatus | undefined, desired: DesiredStatus): boolean {
  const conditions: readonly Condition[] = status?.conditions ?? [];
  for (const want of desired.conditions) {
    const have = conditions.find((c) => c.type === want.type);
    if (!have || have.status !== want.status || have.reason !== want.reason || have.message !== want.message)
      return false;
  }
  for (const [field, value] of Object.entries(desired.fields)) {
    if (JSON.stringify(status?.[field]) !== JSON.stringify(value)) return false;
  }
  return true;
}

export function applyDesired(
  status: ResourceStatus | undefined,
  desired: DesiredStatus,
  now: Date,
): ResourceStatus {
  let conditions = status?.conditions ?? [];
  for (const u of desired.conditions) conditions = setCondition(conditions, u, now);
  const next: ResourceStatus = { ...status, conditions };
  for (const [field, value] of Object.entries(desired.fields)) {
    if (value === undefined) delete next[field];
    else next[field] = value;
  }
  return next;
}

export interface DataPathStatusOptions {
  writer: StatusWriter;
  /** The ADS server's per-node versions: what was sent, ACKed, NACKed. */
  reader: StatusReader;
  chains: () => readonly ChainProgress[];
  /** The stored object as the compiler last saw it (to skip writes that change nothing). */
  current: (kind: Kind, name: string) => StoredResource | undefined;
  functions: () => Iterable<StoredResource>;
  instances: (fn: string) => FunctionInstance[];
  logger: Logger;
  /** Coalescing window: one ACK per type and instance arrives in a burst. */
  delayMs?: number;
}

export class DataPathStatus {
  readonly #o: DataPathStatusOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(options: DataPathStatusOptions) {
    this.#o = options;
  }

  /** Recomputes every chain's and function's status soon; calls within the window add up. */
  schedule(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#start();
    }, this.#o.delayMs ?? 10);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #start(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#reconcile()
      .catch((err: unknown) => this.#o.logger.warn({ err }, "data path status failed"))
      .finally(() => {
        this.#running = undefined;
        if (this.#again && !this.#closed) {
          this.#again = false;
          this.schedule();
        }
      });
  }

  async #reconcile(): Promise<void> {
    const { reader } = this.#o;
    for (const chain of this.#o.chains()) {
      await this.#write("ServiceChain", chain.name, chainStatus(chain, reader));
    }
    for (const fn of [...this.#o.functions()]) {
      const name = fn.metadata.name;
      await this.#write("ServiceFunction", name, functionStatus(fn, this.#o.instances(name), reader));
    }
  }

  async #write(kind: Kind, name: string, desired: DesiredStatus): Promise<void> {
    if (this.#closed) return;
    if (statusSays(this.#o.current(kind, name)?.status, desired)) return;
    try {
      await this.#o.writer.update(kind, name, (object) =>
        statusSays(object.status, desired)
          ? (object.status ?? {})
          : applyDesired(object.status, desired, new Date()),
      );
    } catch (err) {
      this.#o.logger.warn({ err, kind, name }, "status update failed");
    }
  }
}
