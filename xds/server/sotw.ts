// State-of-the-world discovery (StreamAggregatedResources and the per-type Stream* methods).
//
// Rules, from the xDS protocol:
// - A request whose response_nonce is not the last nonce sent for its type is stale: ignored whole.
// - A request with the current nonce ACKs that response, or NACKs it when error_detail is set.
// - A NACKed version is not sent again: only a different version is.
// - Listener and Cluster responses carry every subscribed resource (absence means deletion); other
//   types carry only what changed for the stream.
// - Empty resource_names on a type's first request is the legacy wildcard; "*" is the explicit one.
import { type Snapshot, type VersionedResource, versionOf } from "../cache/snapshot.js";
import { comparePushOrder, FULL_STATE_TYPES } from "../type-urls.js";
import { type DiscoveryRequest, decodeDiscoveryRequest, encodeDiscoveryResponse } from "../wire/discovery.js";
import {
  type RawCall,
  type StreamDeps,
  type StreamProtocol,
  StreamSession,
  safely,
} from "./stream-session.js";

interface TypeState {
  readonly typeUrl: string;
  readonly fullState: boolean;
  wildcard: boolean;
  legacyWildcard: boolean;
  names: Set<string>;
  /** version_info of the type's first request: what the client holds from an earlier stream. */
  clientVersion: string;
  /** Nonce and version of the last response sent; undefined until the first. */
  nonce: string | undefined;
  version: string | undefined;
  /** What the client holds, as far as this stream sent it. */
  sent: Map<string, VersionedResource>;
  /** The snapshot this type was last answered from: an ACK against the same one needs no answer. */
  answeredFor: Snapshot | undefined;
}

export class SotwStream implements StreamProtocol<DiscoveryRequest> {
  readonly messageName = "DiscoveryRequest";
  readonly #session: StreamSession;
  readonly #types = new Map<string, TypeState>();

  constructor(call: RawCall, deps: StreamDeps, fixedType?: string) {
    this.#session = new StreamSession(call, deps, "sotw", fixedType);
    this.#session.run(this);
  }

  decode(data: Uint8Array) {
    return decodeDiscoveryRequest(data);
  }

  onRequest(req: DiscoveryRequest, typeUrl: string): void {
    const { deps } = this.#session;
    let st = this.#types.get(typeUrl);
    if (!st) {
      st = {
        typeUrl,
        fullState: FULL_STATE_TYPES.has(typeUrl),
        wildcard: false,
        legacyWildcard: false,
        names: new Set(),
        clientVersion: req.versionInfo,
        nonce: undefined,
        version: undefined,
        sent: new Map(),
        answeredFor: undefined,
      };
      this.#types.set(typeUrl, st);
      this.#subscribe(st, req.resourceNames, true);
    } else {
      if (st.nonce !== undefined && req.responseNonce !== st.nonce) {
        deps.logger.debug("xds stale nonce ignored", {
          stream: this.#session.id,
          typeUrl,
          nonce: req.responseNonce,
          current: st.nonce,
        });
        return;
      }
      if (st.nonce !== undefined) this.#ackOrNack(st, req);
      const before = subscription(st);
      this.#subscribe(st, req.resourceNames, false);
      // An ACK with the same subscription against the snapshot already answered: nothing to do
      // (answering walks every resource of the type).
      if (subscription(st) === before && st.answeredFor === this.#session.snapshot) return;
    }
    this.#respond(st);
  }

  push(): void {
    const snapshot = this.#session.snapshot;
    if (!snapshot || this.#session.blocked || this.#session.done) return;
    const ordered = [...this.#types.values()].sort((a, b) => comparePushOrder(a.typeUrl, b.typeUrl));
    const removeLater: TypeState[] = [];
    for (const st of ordered) {
      if (!st.fullState || st.version === undefined) {
        // Within a push every type goes out even if the transport fills, to keep the order.
        this.#answer(st, snapshot);
        continue;
      }
      st.answeredFor = snapshot;
      const desired = this.#desired(st, snapshot);
      const version = this.#version(st, snapshot, desired);
      if (version === st.version) continue;
      const removed = [...st.sent.keys()].filter((name) => !desired.has(name));
      if (removed.length === 0) {
        this.#send(st, desired.values(), version, true);
        continue;
      }
      // Make before break: first what is new or changed, still holding what goes away; the
      // removal follows once every type's additions are out.
      const changed = [...desired.values()].some((r) => st.sent.get(r.name)?.version !== r.version);
      if (changed) {
        const union = new Map(desired);
        for (const name of removed) {
          const old = st.sent.get(name);
          if (old) union.set(name, old);
        }
        this.#send(st, union.values(), versionOf(union.values()), true);
      }
      removeLater.push(st);
    }
    for (const st of removeLater.reverse()) {
      const desired = this.#desired(st, snapshot);
      this.#send(st, desired.values(), this.#version(st, snapshot, desired), true);
    }
  }

  #ackOrNack(st: TypeState, req: DiscoveryRequest): void {
    const { deps, node, id } = this.#session;
    if (req.errorDetail) {
      const version = st.version ?? "";
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
    deps.status.acked(node.id, st.typeUrl, req.versionInfo);
    const event = { streamId: id, node, typeUrl: st.typeUrl, version: req.versionInfo };
    safely(deps.logger, "onAck", () => deps.callbacks.onAck?.(event));
  }

  #subscribe(st: TypeState, names: string[], first: boolean): void {
    if (names.length === 0 && (first || st.legacyWildcard)) {
      st.wildcard = true;
      st.legacyWildcard = true;
      return;
    }
    st.legacyWildcard = false;
    st.wildcard = names.includes("*");
    const next = new Set(names.filter((n) => n !== "*"));
    if (!st.wildcard) {
      // A name the client dropped is forgotten, so subscribing again sends it again.
      for (const name of st.sent.keys()) if (!next.has(name)) st.sent.delete(name);
    }
    st.names = next;
  }

  #desired(st: TypeState, snapshot: Snapshot): ReadonlyMap<string, VersionedResource> {
    const all = snapshot.resources(st.typeUrl);
    if (st.wildcard) return all;
    const out = new Map<string, VersionedResource>();
    for (const name of st.names) {
      const r = all.get(name);
      if (r) out.set(name, r);
    }
    return out;
  }

  #version(st: TypeState, snapshot: Snapshot, desired: ReadonlyMap<string, VersionedResource>): string {
    return st.wildcard ? snapshot.version(st.typeUrl) : versionOf(desired.values());
  }

  /** Answers a request for one type, unless the transport is full (the drain push covers it). */
  #respond(st: TypeState): void {
    const snapshot = this.#session.snapshot;
    if (!snapshot || this.#session.blocked || this.#session.done) return;
    this.#answer(st, snapshot);
  }

  /** Sends one type's first response, or what changed since the last. */
  #answer(st: TypeState, snapshot: Snapshot): void {
    st.answeredFor = snapshot;
    const desired = this.#desired(st, snapshot);
    const version = this.#version(st, snapshot, desired);
    if (st.version === undefined) {
      if (st.clientVersion !== "" && st.clientVersion === version) {
        // Reconnected client already holds exactly this: nothing to send until it changes.
        st.version = version;
        st.sent = new Map(desired);
        this.#session.deps.status.adopted(this.#session.node.id, st.typeUrl, version, desired.values());
        return;
      }
      // Named resources of partial types that do not exist yet are sent when they appear.
      if (!st.fullState && !st.wildcard && desired.size === 0) return;
      this.#send(st, desired.values(), version, true);
      return;
    }
    if (st.fullState) {
      if (version !== st.version) this.#send(st, desired.values(), version, true);
      return;
    }
    // Partial types compare per resource, not by version: a name dropped and subscribed again has
    // the same set version but must be sent again; a NACKed resource stays in `sent`, so it is not.
    for (const name of st.sent.keys()) if (!desired.has(name)) st.sent.delete(name);
    const changed = [...desired.values()].filter((r) => st.sent.get(r.name)?.version !== r.version);
    if (changed.length > 0) this.#send(st, changed, version, false);
  }

  #send(st: TypeState, resources: Iterable<VersionedResource>, version: string, replace: boolean): void {
    const { deps, node } = this.#session;
    const list = [...resources];
    const nonce = this.#session.nextNonce();
    this.#session.write(
      encodeDiscoveryResponse({
        versionInfo: version,
        typeUrl: st.typeUrl,
        nonce,
        resources: list,
        controlPlane: deps.controlPlaneId,
      }),
    );
    st.nonce = nonce;
    st.version = version;
    if (replace) st.sent = new Map(list.map((r) => [r.name, r]));
    else for (const r of list) st.sent.set(r.name, r);
    deps.status.sent(node.id, st.typeUrl, version, list, [], replace);
    deps.logger.debug("xds sent", {
      stream: this.#session.id,
      node: node.id,
      typeUrl: st.typeUrl,
      version,
      nonce,
      count: list.length,
    });
  }
}

/** What a type's subscription is, as a comparable string. */
function subscription(st: TypeState): string {
  return st.wildcard ? (st.legacyWildcard ? "*legacy" : "*") : [...st.names].join("\u0000");
}
