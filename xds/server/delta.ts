// Incremental discovery (DeltaAggregatedResources and the per-type Delta* methods).
//
// Rules, from the xDS protocol:
// - The server tracks what the client holds per resource; it sends only resources whose version
//   differs, and names the ones that went away in removed_resources.
// - initial_resource_versions on a type's first request (a reconnect) is what the client holds:
//   only the differences are sent.
// - A subscribed name that does not exist is reported once in removed_resources, and sent when it
//   appears.
// - ACK and NACK refer to the response by nonce; subscription changes count whatever the nonce.
// - A NACKed resource version is not sent again; a newer version is.
import { type Snapshot, type VersionedResource, versionOf } from "../cache/snapshot.js";
import { comparePushOrder } from "../type-urls.js";
import {
  type DeltaDiscoveryRequest,
  decodeDeltaDiscoveryRequest,
  encodeDeltaDiscoveryResponse,
} from "../wire/discovery.js";
import {
  type RawCall,
  type StreamDeps,
  type StreamProtocol,
  StreamSession,
  safely,
} from "./stream-session.js";

/** Responses awaiting ACK per type; older ones are forgotten (their ACK then only logs). */
const MAX_PENDING = 64;

interface TypeState {
  readonly typeUrl: string;
  wildcard: boolean;
  names: Set<string>;
  /** Per name, the version the client holds, or null once told the name does not exist. */
  known: Map<string, string | null>;
  /** nonce → system version of responses not yet ACKed or NACKed. */
  pending: Map<string, string>;
  answered: boolean;
  /** The snapshot this type was last planned against: a pure ACK against the same one needs no plan. */
  plannedFor: Snapshot | undefined;
}

interface Plan {
  st: TypeState;
  version: string;
  upserts: VersionedResource[];
  removed: string[];
}

export class DeltaStream implements StreamProtocol<DeltaDiscoveryRequest> {
  readonly messageName = "DeltaDiscoveryRequest";
  readonly #session: StreamSession;
  readonly #types = new Map<string, TypeState>();

  constructor(call: RawCall, deps: StreamDeps, fixedType?: string) {
    this.#session = new StreamSession(call, deps, "delta", fixedType);
    this.#session.run(this);
  }

  decode(data: Uint8Array) {
    return decodeDeltaDiscoveryRequest(data);
  }

  onRequest(req: DeltaDiscoveryRequest, typeUrl: string): void {
    let st = this.#types.get(typeUrl);
    if (!st) {
      st = {
        typeUrl,
        wildcard: false,
        names: new Set(),
        known: new Map(),
        pending: new Map(),
        answered: false,
        plannedFor: undefined,
      };
      this.#types.set(typeUrl, st);
      const initial = Object.entries(req.initialResourceVersions);
      for (const [name, version] of initial) st.known.set(name, version);
      if (initial.length > 0) {
        const held = initial.map(([name, version]) => ({ name, version }));
        this.#session.deps.status.adopted(this.#session.node.id, typeUrl, versionOf(held), held);
      }
      // Legacy wildcard: a first request that names nothing.
      if (req.resourceNamesSubscribe.length === 0) st.wildcard = true;
    }
    if (req.responseNonce) this.#ackOrNack(st, req);
    for (const name of req.resourceNamesSubscribe) {
      if (name === "*") st.wildcard = true;
      else st.names.add(name);
    }
    for (const name of req.resourceNamesUnsubscribe) {
      if (name === "*") {
        st.wildcard = false;
        for (const held of st.known.keys()) if (!st.names.has(held)) st.known.delete(held);
      } else {
        st.names.delete(name);
        // Forget it: if a wildcard still covers it, the client needs it sent again.
        st.known.delete(name);
      }
    }
    const snapshot = this.#session.snapshot;
    if (!snapshot || this.#session.blocked) return;
    // A pure ACK: nothing can have changed since the last plan (a plan walks every resource).
    const pureAck = req.resourceNamesSubscribe.length === 0 && req.resourceNamesUnsubscribe.length === 0;
    if (pureAck && st.plannedFor === snapshot) return;
    const plan = this.#plan(st, snapshot);
    if (plan.upserts.length > 0 || plan.removed.length > 0 || (!st.answered && st.wildcard)) {
      this.#send(plan, plan.upserts, plan.removed);
    }
  }

  push(): void {
    const snapshot = this.#session.snapshot;
    if (!snapshot || this.#session.blocked || this.#session.done) return;
    const plans = [...this.#types.values()]
      .sort((a, b) => comparePushOrder(a.typeUrl, b.typeUrl))
      .map((st) => this.#plan(st, snapshot));
    // Make before break: additions and updates in push order, then removals in reverse.
    for (const p of plans) {
      if (p.upserts.length > 0 || (!p.st.answered && p.st.wildcard && p.removed.length === 0)) {
        this.#send(p, p.upserts, []);
      }
    }
    for (const p of plans.reverse()) if (p.removed.length > 0) this.#send(p, [], p.removed);
  }

  #ackOrNack(st: TypeState, req: DeltaDiscoveryRequest): void {
    const { deps, node, id } = this.#session;
    const version = st.pending.get(req.responseNonce);
    if (version === undefined) {
      deps.logger.debug("xds delta ack for unknown nonce", {
        stream: id,
        typeUrl: st.typeUrl,
        nonce: req.responseNonce,
      });
      return;
    }
    st.pending.delete(req.responseNonce);
    if (req.errorDetail) {
      deps.status.nacked(node.id, st.typeUrl, version, req.errorDetail);
      deps.logger.warn("xds NACK", {
        stream: id,
        node: node.id,
        typeUrl: st.typeUrl,
        version,
        error: req.errorDetail.message,
      });
      const event = { streamId: id, node, typeUrl: st.typeUrl, version, errorDetail: req.errorDetail };
      safely(deps.logger, "onNack", () => deps.callbacks.onNack?.(event));
      return;
    }
    deps.status.acked(node.id, st.typeUrl, version);
    const event = { streamId: id, node, typeUrl: st.typeUrl, version };
    safely(deps.logger, "onAck", () => deps.callbacks.onAck?.(event));
  }

  #plan(st: TypeState, snapshot: Snapshot): Plan {
    const all = snapshot.resources(st.typeUrl);
    const upserts: VersionedResource[] = [];
    const removed: string[] = [];
    const consider = (r: VersionedResource): void => {
      if (st.known.get(r.name) !== r.version) upserts.push(r);
    };
    if (st.wildcard) for (const r of all.values()) consider(r);
    else {
      for (const name of st.names) {
        const r = all.get(name);
        if (r) consider(r);
        else if (!st.known.has(name)) removed.push(name);
      }
    }
    for (const [name, version] of st.known) {
      if (all.has(name) && (st.wildcard || st.names.has(name))) continue;
      if (!st.wildcard && !st.names.has(name)) st.known.delete(name);
      else if (version !== null) removed.push(name);
    }
    const desired = st.wildcard ? all.values() : [...st.names].flatMap((n) => all.get(n) ?? []);
    const version = st.wildcard ? snapshot.version(st.typeUrl) : versionOf(desired);
    st.plannedFor = snapshot;
    return { st, version, upserts, removed };
  }

  #send(plan: Plan, upserts: VersionedResource[], removed: string[]): void {
    const { deps, node } = this.#session;
    const { st, version } = plan;
    const nonce = this.#session.nextNonce();
    this.#session.write(
      encodeDeltaDiscoveryResponse({
        systemVersionInfo: version,
        typeUrl: st.typeUrl,
        nonce,
        resources: upserts,
        removedResources: removed,
        controlPlane: deps.controlPlaneId,
      }),
    );
    st.answered = true;
    for (const r of upserts) st.known.set(r.name, r.version);
    for (const name of removed) {
      if (st.names.has(name)) st.known.set(name, null);
      else st.known.delete(name);
    }
    st.pending.set(nonce, version);
    if (st.pending.size > MAX_PENDING) {
      const oldest = st.pending.keys().next().value;
      if (oldest !== undefined) st.pending.delete(oldest);
    }
    deps.status.sent(node.id, st.typeUrl, version, upserts, removed, false);
    deps.logger.debug("xds delta sent", {
      stream: this.#session.id,
      node: node.id,
      typeUrl: st.typeUrl,
      version,
      nonce,
      upserts: upserts.length,
      removed: removed.length,
    });
  }
}
