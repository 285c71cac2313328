// ADS client for function hosts and tests: one stream (Delta or SotW) to one of several servers,
// ACK/NACK per response, reconnect with jittered backoff to the next server, last accepted config
// kept while disconnected, and resubscription that tells the server what the client holds.
import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  type ClientDuplexStream,
  credentials,
  Metadata,
} from "@grpc/grpc-js";
import { contentVersion } from "../cache/snapshot.js";
import { XDS_ERR, XdsError } from "../errors.js";
import { type Logger, silentLogger } from "../logger.js";
import type { Node } from "../node.js";
import { encodeAny } from "../resource.js";
import { BUILTIN_RESOURCE_TYPES } from "../resource-types/builtin.js";
import type { ResourceType } from "../resource-types/resource-type.js";
import { comparePushOrder } from "../type-urls.js";
import { formatFieldErrors } from "../validated.js";
import {
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryResponse,
  encodeDeltaDiscoveryRequest,
  encodeDiscoveryRequest,
  type WireDecoded,
} from "../wire/discovery.js";
import { ADS_PATHS } from "../wire/services.js";
import { Backoff, type BackoffOptions, checkBackoffOptions, defaultBackoffOptions } from "./backoff.js";
import { type Accepted, TypeSubscription } from "./subscription.js";
import type { ResourceWatch } from "./watch-queue.js";

export type AdsMode = "delta" | "sotw";

export type ClientStateName = "connecting" | "connected" | "backoff" | "closed";

export interface ClientState {
  state: ClientStateName;
  /** The server address in use (or about to be). */
  server: string;
  /** Why the last stream ended, while in backoff. */
  error?: string;
}

export interface AdsClientOptions {
  /** host:port of each server; the client uses one and fails over to the next. */
  servers: string[];
  node: Node;
  mode: AdsMode;
  logger: Logger;
  backoff: BackoffOptions;
  /** Decoders by type URL; a watch given a ResourceType adds it. */
  types: ReadonlyMap<string, ResourceType<unknown>>;
  credentials: ChannelCredentials;
  /** grpc-js channel options; the defaults lift the 4 MiB receive limit and enable keepalive. */
  channelOptions: ChannelOptions;
  onStateChange?: (state: ClientState) => void;
}

export function defaultAdsClientOptions(): Omit<AdsClientOptions, "servers" | "node"> {
  return {
    mode: "delta",
    logger: silentLogger,
    backoff: defaultBackoffOptions(),
    types: BUILTIN_RESOURCE_TYPES,
    credentials: credentials.createInsecure(),
    channelOptions: {
      // A SotW response carries a type's full state: it can outgrow gRPC's 4 MiB default.
      "grpc.max_receive_message_length": -1,
      // Detects a server that vanished without closing the connection, so failover starts.
      "grpc.keepalive_time_ms": 30_000,
      "grpc.keepalive_timeout_ms": 10_000,
    },
  };
}

type Stream =
  | { mode: "delta"; call: ClientDuplexStream<DeltaDiscoveryRequest, WireDecoded<DeltaDiscoveryResponse>> }
  | { mode: "sotw"; call: ClientDuplexStream<DiscoveryRequest, WireDecoded<DiscoveryResponse>> };

/** NACK error_detail code: INVALID_ARGUMENT, as Envoy sends. */
const NACK_CODE = 3;

export class AdsClient {
  readonly #o: AdsClientOptions;
  readonly #subs = new Map<string, TypeSubscription<unknown>>();
  readonly #grpc = new Map<string, Client>();
  readonly #backoff: Backoff;
  #stream: Stream | undefined;
  #generation = 0;
  #nodeSent = false;
  #serverIndex = 0;
  #timer: NodeJS.Timeout | undefined;
  #state: ClientState;
  #closed = false;
  #resolveClosed: (err: Error | undefined) => void = () => {};
  /** Resolves when the client is closed: undefined after close(), the error after destroy(err). */
  readonly closed: Promise<Error | undefined>;

  constructor(options: Partial<AdsClientOptions> & { servers: string[]; node: Node }) {
    this.#o = { ...defaultAdsClientOptions(), ...options };
    if (this.#o.servers.length === 0)
      throw new XdsError(XDS_ERR.invalidOption, "servers must name at least one address");
    if (!this.#o.node.id) throw new XdsError(XDS_ERR.invalidOption, "node.id must be set");
    if (this.#o.mode !== "delta" && this.#o.mode !== "sotw") {
      throw new XdsError(
        XDS_ERR.invalidOption,
        `mode must be "delta" or "sotw", got ${String(this.#o.mode)}`,
      );
    }
    checkBackoffOptions(this.#o.backoff);
    this.#backoff = new Backoff(this.#o.backoff);
    this.#state = { state: "connecting", server: this.#server() };
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#connect();
  }

  get state(): ClientState {
    return this.#state;
  }

  /**
   * Watches resources of a type: "*" for all, or names. Names that do not exist yet are reported
   * when they appear. Passing a ResourceType (e.g. withValidation(clusterType, check)) sets how the
   * client decodes and validates that type; one type URL has one decoder per client.
   */
  watch<T>(type: ResourceType<T> | string, names: "*" | string[]): ResourceWatch<T> {
    if (this.#closed) throw new XdsError(XDS_ERR.closed, "AdsClient is closed");
    const sub = this.#subscription(type);
    const queue = sub.addWatch(names, () => this.#resubscribe(sub));
    this.#resubscribe(sub);
    return queue;
  }

  /**
   * Resolves once the first response of the type (watched first) was processed, from any server:
   * after that, an empty resources() means the server has none.
   */
  synced(type: ResourceType<unknown> | string): Promise<void> {
    const typeUrl = typeof type === "string" ? type : type.typeUrl;
    const sub = this.#subs.get(typeUrl);
    if (!sub) return Promise.reject(new XdsError(XDS_ERR.invalidOption, `${typeUrl} is not watched`));
    return sub.whenSynced();
  }

  /** The accepted resources of a type now (kept while disconnected). */
  resources<T>(type: ResourceType<T> | string): ReadonlyMap<string, Accepted<T>> {
    const typeUrl = typeof type === "string" ? type : type.typeUrl;
    const sub = this.#subs.get(typeUrl) as TypeSubscription<T> | undefined;
    return sub?.accepted ?? new Map();
  }

  /** Ends the stream and every watch. Idempotent. */
  async close(): Promise<void> {
    this.#shutdown(undefined);
    await this.closed;
  }

  /** Like close, but `closed` resolves to the error. */
  destroy(err?: Error): void {
    this.#shutdown(err);
  }

  #shutdown(err: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#generation++;
    this.#stream?.call.cancel();
    this.#stream = undefined;
    for (const sub of this.#subs.values()) sub.closeAll();
    for (const c of this.#grpc.values()) c.close();
    this.#grpc.clear();
    this.#setState({ state: "closed", server: this.#server() });
    this.#resolveClosed(err);
  }

  #subscription<T>(type: ResourceType<T> | string): TypeSubscription<T> {
    const typeUrl = typeof type === "string" ? type : type.typeUrl;
    const existing = this.#subs.get(typeUrl) as TypeSubscription<T> | undefined;
    if (existing) {
      if (typeof type !== "string" && existing.type !== type) {
        throw new XdsError(XDS_ERR.invalidOption, `${typeUrl} is already watched with another ResourceType`);
      }
      return existing;
    }
    const resolved =
      typeof type === "string" ? (this.#o.types.get(typeUrl) as ResourceType<T> | undefined) : type;
    if (!resolved) throw new XdsError(XDS_ERR.unknownType, `no ResourceType for ${typeUrl}`);
    const sub = new TypeSubscription<T>(resolved);
    this.#subs.set(typeUrl, sub as TypeSubscription<unknown>);
    return sub;
  }

  #server(): string {
    return this.#o.servers[this.#serverIndex % this.#o.servers.length] ?? "";
  }

  #setState(s: ClientState): void {
    this.#state = s;
    try {
      this.#o.onStateChange?.(s);
    } catch (err) {
      this.#o.logger.error("xds client: onStateChange threw", { error: String(err) });
    }
  }

  #grpcClient(address: string): Client {
    let c = this.#grpc.get(address);
    if (!c) {
      c = new Client(address, this.#o.credentials, this.#o.channelOptions);
      this.#grpc.set(address, c);
    }
    return c;
  }

  #connect(): void {
    if (this.#closed) return;
    const server = this.#server();
    const generation = ++this.#generation;
    this.#nodeSent = false;
    this.#setState({ state: "connecting", server });
    const client = this.#grpcClient(server);
    let ended = false;
    const onEnd = (why: string) => {
      if (ended || generation !== this.#generation) return;
      ended = true;
      this.#streamEnded(server, why);
    };
    const onUp = () => {
      if (generation !== this.#generation || this.#state.state === "connected") return;
      this.#backoff.reset();
      this.#setState({ state: "connected", server });
    };
    if (this.#o.mode === "delta") {
      const call = client.makeBidiStreamRequest(
        ADS_PATHS.delta,
        encodeDeltaDiscoveryRequest,
        decodeDeltaDiscoveryResponse,
        new Metadata(),
      );
      this.#stream = { mode: "delta", call };
      call.on("data", (d: WireDecoded<DeltaDiscoveryResponse>) => {
        if (generation !== this.#generation) return;
        onUp();
        if (d.ok) this.#onDelta(d.value);
        else this.#o.logger.warn("xds client: undecodable response", { server, error: d.error });
      });
      call.on("metadata", onUp);
      call.on("status", (s: { code: number; details: string }) => onEnd(`status ${s.code}: ${s.details}`));
      call.on("error", (e: Error) => onEnd(e.message));
    } else {
      const call = client.makeBidiStreamRequest(
        ADS_PATHS.sotw,
        encodeDiscoveryRequest,
        decodeDiscoveryResponse,
        new Metadata(),
      );
      this.#stream = { mode: "sotw", call };
      call.on("data", (d: WireDecoded<DiscoveryResponse>) => {
        if (generation !== this.#generation) return;
        onUp();
        if (d.ok) this.#onSotw(d.value);
        else this.#o.logger.warn("xds client: undecodable response", { server, error: d.error });
      });
      call.on("metadata", onUp);
      call.on("status", (s: { code: number; details: string }) => onEnd(`status ${s.code}: ${s.details}`));
      call.on("error", (e: Error) => onEnd(e.message));
    }
    for (const sub of [...this.#subs.values()].sort((a, b) => comparePushOrder(a.typeUrl, b.typeUrl))) {
      sub.nonce = "";
      sub.sotwTold = false;
      sub.toldWildcard = false;
      sub.toldNames = new Set();
      if (sub.watched) this.#resubscribe(sub, true);
    }
  }

  #streamEnded(server: string, why: string): void {
    this.#stream = undefined;
    if (this.#closed) return;
    if (this.#o.servers.length > 1) this.#serverIndex = (this.#serverIndex + 1) % this.#o.servers.length;
    const delay = this.#backoff.next();
    this.#o.logger.warn("xds client: stream ended", {
      server,
      error: why,
      retryInMs: delay,
      next: this.#server(),
    });
    this.#setState({ state: "backoff", server: this.#server(), error: why });
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#connect();
    }, delay);
  }

  #withNode<R extends { node?: Node }>(req: R): R {
    if (this.#nodeSent) return req;
    this.#nodeSent = true;
    return { ...req, node: this.#o.node };
  }

  /** Tells the server what the watches of a type want now (on connect: with what the client holds). */
  #resubscribe(sub: TypeSubscription<unknown>, reconnect = false): void {
    const stream = this.#stream;
    if (!stream || this.#closed) return;
    const wildcard = sub.wildcard;
    const names = sub.names();
    if (stream.mode === "delta") {
      const subscribe: string[] = [];
      const unsubscribe: string[] = [];
      if (wildcard && !sub.toldWildcard) subscribe.push("*");
      if (!wildcard && sub.toldWildcard) unsubscribe.push("*");
      for (const n of names) if (!sub.toldNames.has(n)) subscribe.push(n);
      for (const n of sub.toldNames) if (!names.has(n)) unsubscribe.push(n);
      if (subscribe.length === 0 && unsubscribe.length === 0) return;
      const initial: Record<string, string> = {};
      if (reconnect) for (const a of sub.accepted.values()) initial[a.name] = a.version;
      sub.toldWildcard = wildcard;
      sub.toldNames = new Set(names);
      stream.call.write(
        this.#withNode<DeltaDiscoveryRequest>({
          typeUrl: sub.typeUrl,
          resourceNamesSubscribe: subscribe,
          resourceNamesUnsubscribe: unsubscribe,
          initialResourceVersions: initial,
          responseNonce: "",
        }),
      );
      return;
    }
    // SotW always uses the explicit "*", so an empty list can only mean "nothing"; but on a type's
    // first request it would read as the legacy wildcard, so nothing is sent then.
    const resourceNames = wildcard ? ["*", ...names] : [...names];
    if (resourceNames.length === 0 && !sub.sotwTold) return;
    sub.sotwTold = true;
    stream.call.write(
      this.#withNode<DiscoveryRequest>({
        typeUrl: sub.typeUrl,
        versionInfo: sub.sotwVersion,
        resourceNames,
        responseNonce: sub.nonce,
      }),
    );
  }

  #onSotw(res: DiscoveryResponse): void {
    const stream = this.#stream;
    const sub = this.#subs.get(res.typeUrl);
    if (!sub || stream?.mode !== "sotw") {
      this.#o.logger.warn("xds client: response for a type not watched", { typeUrl: res.typeUrl });
      return;
    }
    const problems: string[] = [];
    const seen = new Set<string>();
    let unnamed = false;
    res.resources.forEach((any, i) => {
      if (any.typeUrl !== res.typeUrl) {
        problems.push(`resources[${i}]: type ${any.typeUrl} in a ${res.typeUrl} response`);
        unnamed = true;
        return;
      }
      const d = sub.type.decode(any.value);
      if (!d.ok) {
        if (d.name) {
          seen.add(d.name);
          sub.reject(d.name, d.errors);
        } else unnamed = true;
        problems.push(`${d.name ?? `resources[${i}]`}: ${formatFieldErrors(d.errors)}`);
        return;
      }
      seen.add(d.name);
      if (sub.interested(d.name))
        sub.accept(d.name, contentVersion(encodeAny(any.typeUrl, any.value)), d.value);
    });
    // Full-state types: what is not in the response is gone; unless a resource could not even be
    // named, since it may be one of them.
    if (sub.type.fullState && !unnamed) {
      for (const name of [...sub.accepted.keys()]) if (!seen.has(name)) sub.remove(name);
      if (!sub.wildcard) for (const name of sub.names()) if (!seen.has(name)) sub.remove(name);
    }
    sub.nonce = res.nonce;
    sub.markSynced();
    const nack = problems.length > 0;
    if (!nack) sub.sotwVersion = res.versionInfo;
    else this.#logNack(res.typeUrl, res.versionInfo, problems);
    const names = sub.names();
    stream.call.write({
      typeUrl: res.typeUrl,
      versionInfo: sub.sotwVersion,
      resourceNames: sub.wildcard ? ["*", ...names] : [...names],
      responseNonce: res.nonce,
      ...(nack ? { errorDetail: { code: NACK_CODE, message: problems.join("; ") } } : {}),
    });
  }

  #onDelta(res: DeltaDiscoveryResponse): void {
    const stream = this.#stream;
    const sub = this.#subs.get(res.typeUrl);
    if (!sub || stream?.mode !== "delta") {
      this.#o.logger.warn("xds client: response for a type not watched", { typeUrl: res.typeUrl });
      return;
    }
    const problems: string[] = [];
    for (const r of res.resources) {
      const any = r.resource;
      if (!any || any.typeUrl !== res.typeUrl) {
        const what = any ? `type ${any.typeUrl} in a ${res.typeUrl} response` : "no resource";
        problems.push(`${r.name}: ${what}`);
        sub.reject(r.name, [{ path: "resource", message: what }]);
        continue;
      }
      const d = sub.type.decode(any.value);
      if (!d.ok) {
        problems.push(`${r.name}: ${formatFieldErrors(d.errors)}`);
        sub.reject(r.name, d.errors);
        continue;
      }
      if (sub.interested(r.name)) sub.accept(r.name, r.version, d.value);
    }
    for (const name of res.removedResources) if (sub.interested(name)) sub.remove(name);
    sub.markSynced();
    const nack = problems.length > 0;
    if (nack) this.#logNack(res.typeUrl, res.systemVersionInfo, problems);
    stream.call.write({
      typeUrl: res.typeUrl,
      resourceNamesSubscribe: [],
      resourceNamesUnsubscribe: [],
      initialResourceVersions: {},
      responseNonce: res.nonce,
      ...(nack ? { errorDetail: { code: NACK_CODE, message: problems.join("; ") } } : {}),
    });
  }

  #logNack(typeUrl: string, version: string, problems: string[]): void {
    this.#o.logger.warn("xds client: NACK", { typeUrl, version, errors: problems.join("; ") });
  }
}
