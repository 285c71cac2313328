// What the server knows of each node's config: per type, the version last sent, ACKed and NACKed,
// and per resource whether the node holds it. CSDS and `catena status` read it.
import type { Node } from "../node.js";
import type { RpcStatus } from "../wire/discovery.js";

export type ResourceSyncState = "sent" | "acked" | "nacked";

export interface ResourceStatus {
  version: string;
  state: ResourceSyncState;
}

export interface TypeStatus {
  typeUrl: string;
  sentVersion?: string;
  ackedVersion?: string;
  nackedVersion?: string;
  /** The last NACK's error_detail; cleared by the next ACK. */
  errorDetail?: RpcStatus;
  lastUpdated: Date;
  resources: ReadonlyMap<string, ResourceStatus>;
}

export interface NodeStatus {
  node: Node;
  /** Streams open now; 0 once the node disconnected. */
  streams: number;
  connectedAt: Date;
  types: ReadonlyMap<string, TypeStatus>;
}

export interface StatusReader {
  nodes(): NodeStatus[];
  node(id: string): NodeStatus | undefined;
}

interface MutableType {
  typeUrl: string;
  /** Names in state "sent": an ACK or NACK settles just these, not every resource the node holds. */
  inFlight: Set<string>;
  sentVersion?: string;
  ackedVersion?: string;
  nackedVersion?: string;
  errorDetail?: RpcStatus;
  lastUpdated: Date;
  resources: Map<string, ResourceStatus>;
}

interface MutableNode {
  node: Node;
  streams: number;
  connectedAt: Date;
  types: Map<string, MutableType>;
}

/** Disconnected nodes kept for status pages; the oldest are forgotten beyond this. */
const MAX_DISCONNECTED = 10_000;

export class StatusTable implements StatusReader {
  readonly #nodes = new Map<string, MutableNode>();

  nodes(): NodeStatus[] {
    return [...this.#nodes.values()];
  }

  node(id: string): NodeStatus | undefined {
    return this.#nodes.get(id);
  }

  streamOpened(node: Node): void {
    const n = this.#nodes.get(node.id);
    if (n) {
      n.node = node;
      n.streams++;
      n.connectedAt = new Date();
      // Re-insert so iteration order is least recently connected first.
      this.#nodes.delete(node.id);
      this.#nodes.set(node.id, n);
      return;
    }
    this.#nodes.set(node.id, { node, streams: 1, connectedAt: new Date(), types: new Map() });
  }

  streamClosed(nodeId: string): void {
    const n = this.#nodes.get(nodeId);
    if (n) n.streams = Math.max(0, n.streams - 1);
    this.#prune();
  }

  /**
   * A response went out. `replace` (SotW full state) means the listed resources are all the node
   * holds now; otherwise they are added to what it holds and `removed` are dropped.
   */
  sent(
    nodeId: string,
    typeUrl: string,
    version: string,
    upserted: Iterable<{ name: string; version: string }>,
    removed: Iterable<string>,
    replace: boolean,
  ): void {
    const t = this.#type(nodeId, typeUrl);
    if (!t) return;
    t.sentVersion = version;
    t.lastUpdated = new Date();
    if (replace) {
      t.resources.clear();
      t.inFlight.clear();
    }
    for (const r of upserted) {
      t.resources.set(r.name, { version: r.version, state: "sent" });
      t.inFlight.add(r.name);
    }
    for (const name of removed) {
      t.resources.delete(name);
      t.inFlight.delete(name);
    }
  }

  /** The client holds these already (SotW reconnect with a current version_info, Delta initial versions). */
  adopted(
    nodeId: string,
    typeUrl: string,
    version: string,
    resources: Iterable<{ name: string; version: string }>,
  ): void {
    const t = this.#type(nodeId, typeUrl);
    if (!t) return;
    t.sentVersion = version;
    t.ackedVersion = version;
    t.lastUpdated = new Date();
    for (const r of resources) {
      t.resources.set(r.name, { version: r.version, state: "acked" });
      t.inFlight.delete(r.name);
    }
  }

  acked(nodeId: string, typeUrl: string, version: string): void {
    const t = this.#type(nodeId, typeUrl);
    if (!t) return;
    t.ackedVersion = version;
    t.errorDetail = undefined;
    t.lastUpdated = new Date();
    this.#settle(t, "acked");
  }

  nacked(nodeId: string, typeUrl: string, version: string, errorDetail: RpcStatus): void {
    const t = this.#type(nodeId, typeUrl);
    if (!t) return;
    t.nackedVersion = version;
    t.errorDetail = errorDetail;
    t.lastUpdated = new Date();
    this.#settle(t, "nacked");
  }

  #settle(t: MutableType, state: ResourceSyncState): void {
    for (const name of t.inFlight) {
      const r = t.resources.get(name);
      if (r?.state === "sent") r.state = state;
    }
    t.inFlight.clear();
  }

  #type(nodeId: string, typeUrl: string): MutableType | undefined {
    const n = this.#nodes.get(nodeId);
    if (!n) return undefined;
    let t = n.types.get(typeUrl);
    if (!t) {
      t = { typeUrl, inFlight: new Set(), lastUpdated: new Date(), resources: new Map() };
      n.types.set(typeUrl, t);
    }
    return t;
  }

  #prune(): void {
    if (this.#nodes.size <= MAX_DISCONNECTED) return;
    for (const [id, n] of this.#nodes) {
      if (this.#nodes.size <= MAX_DISCONNECTED) break;
      if (n.streams === 0) this.#nodes.delete(id);
    }
  }
}
