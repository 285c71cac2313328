// A hop's upstream: an Envoy Cluster and its ClusterLoadAssignment made into a balancer that hands out
// connected sockets. lb_policy, health_checks (TCP), outlier_detection (consecutive connect failures),
// circuit_breakers and connect retries come from the Cluster via the loadbalancer building blocks; the
// upstream PROXY v2 transport socket says whether a header goes out first. Updates keep what they can
// (health state, ejections, open connections): a change here never drops an established connection.
import type { ClientHttp2Stream } from "node:http2";
import { isIP, type Socket } from "node:net";
import type { Logger } from "../../xds/logger.js";
import { structToJson } from "../../xds/wire/struct.js";
import { CircuitBreaker } from "../loadbalancer/circuit-breaker.js";
import {
  type ClusterConfig,
  decodeClusterLoadAssignment,
  decodeEnvoyCluster,
} from "../loadbalancer/cluster-config.js";
import { type Endpoint, endpointKey } from "../loadbalancer/endpoint.js";
import { murmur3 } from "../loadbalancer/hash.js";
import { ActiveHealthChecker, tcpProbeFrom } from "../loadbalancer/health-checker.js";
import { hashSourceAddress, LoadBalancer } from "../loadbalancer/load-balancer.js";
import { OutlierDetector } from "../loadbalancer/outlier-detector.js";
import { attemptEndpoints, RetryBudget } from "../loadbalancer/retry.js";
import { compileHttpProtocolOptions } from "./connect-config.js";
import { SDK_ERROR, SdkError } from "./errors.js";
import type { Lease } from "./lease-counter.js";
import { HOST_FILTER_NAME, HOST_TYPE_URL, typedConfigOf } from "./listener-config.js";
import type { EndpointHealthSample } from "./metrics.js";
import { durationMs, isObject, present } from "./proto-json.js";
import type { TlsMaterials } from "./secrets.js";
import { connectUpstream } from "./tcp-relay.js";
import {
  compileUpstreamTlsContext,
  TLS_TRANSPORT_SOCKET,
  TLS_TYPE_URL,
  type TlsContextPlan,
} from "./tls-config.js";
import {
  DEFAULT_TUNNEL_OPTIONS,
  type TunnelEventSink,
  type TunnelOptions,
  TunnelPool,
  type TunnelRequest,
} from "./tunnel-client.js";
import { ErrorList, type Validated } from "./validated.js";

export interface ClusterPlan {
  name: string;
  /** The ClusterLoadAssignment to follow (EDS); undefined for a STATIC cluster. */
  edsName: string | undefined;
  staticEndpoints: Endpoint[] | undefined;
  connectTimeoutMs: number;
  /** Send a PROXY v2 header before any byte (envoy.transport_sockets.upstream_proxy_protocol). */
  proxyProtocol: boolean;
  config: ClusterConfig;
  /** Total connect attempts per connection (1 + metadata catena.connectRetries). */
  connectAttempts: number;
  /** transport_socket envoy.transport_sockets.tls (UpstreamTlsContext): the cluster carries VPN tunnels. */
  tls: TlsContextPlan | undefined;
  /** typed_extension_protocol_options: HttpProtocolOptions with explicit HTTP/2. */
  http2: boolean;
  /**
   * metadata catena {chain, hop}: the TLVs of the PROXY header sent through this cluster when no
   * listener says (a tunnel's exit, where the stream arrives over HTTP/2).
   */
  chain: string | undefined;
  hop: number | undefined;
}

/** envoy.config.cluster.v3.Cluster (Envoy JSON form) → ClusterPlan; every problem with its path. */
export function compileCluster(json: unknown): Validated<ClusterPlan> {
  const errors = new ErrorList();
  const c = isObject(json) ? json : {};
  const name = typeof c.name === "string" ? c.name : "";
  const decoded = decodeEnvoyCluster(c);
  if (!decoded.ok) for (const e of decoded.errors) errors.add(e.path, e.message);
  const plan: ClusterPlan = {
    name,
    edsName: undefined,
    staticEndpoints: undefined,
    connectTimeoutMs: 5000,
    proxyProtocol: false,
    config: decoded.ok ? decoded.value : { lb: { policy: "round_robin" } },
    connectAttempts: decoded.ok ? (decoded.value.connectAttempts ?? 1) : 1,
    tls: undefined,
    http2: false,
    chain: undefined,
    hop: undefined,
  };
  // DiscoveryType STATIC is the enum's zero value: absent in the JSON form.
  const type = c.type === undefined || c.type === null ? "STATIC" : String(c.type);
  if (present(c, "cluster_type")) errors.add("cluster_type", "custom cluster types are not supported");
  else if (type === "EDS") {
    const eds = isObject(c.eds_cluster_config) ? c.eds_cluster_config : {};
    plan.edsName = typeof eds.service_name === "string" && eds.service_name ? eds.service_name : name;
  } else if (type === "STATIC") {
    const la = decodeClusterLoadAssignment(c.load_assignment);
    if (!la.ok) for (const e of la.errors) errors.add(`load_assignment.${e.path}`, e.message);
    else plan.staticEndpoints = la.value;
  } else errors.add("type", `${type} is not supported (EDS or STATIC)`);

  if (present(c, "connect_timeout")) {
    const ms = durationMs(c.connect_timeout);
    if (ms === undefined || ms <= 0) errors.add("connect_timeout", "must be a positive duration");
    else plan.connectTimeoutMs = ms;
  }
  if (present(c, "transport_socket_matches")) errors.add("transport_socket_matches", "not supported");
  if (isObject(c.transport_socket)) {
    const ts = c.transport_socket;
    const tc = typedConfigOf(ts.typed_config);
    const kind = tc?.typeUrl ?? (typeof ts.name === "string" ? ts.name : "");
    if (kind === HOST_TYPE_URL.upstreamProxyProtocol || kind === HOST_FILTER_NAME.upstreamProxyProtocol) {
      const cfg = tc && isObject(tc.raw) && isObject(tc.raw.config) ? tc.raw.config : {};
      // Version V1 is the enum's zero value: an absent version means V1.
      if (cfg.version !== "V2" && cfg.version !== 1)
        errors.add("transport_socket.typed_config.config.version", "only V2 is supported");
      const inner =
        tc && isObject(tc.raw) && isObject(tc.raw.transport_socket) ? tc.raw.transport_socket : undefined;
      const innerKind = inner ? (typedConfigOf(inner.typed_config)?.typeUrl ?? inner.name) : undefined;
      if (inner && innerKind !== HOST_TYPE_URL.rawBuffer && innerKind !== HOST_FILTER_NAME.rawBuffer)
        errors.add(
          "transport_socket.typed_config.transport_socket",
          "only raw_buffer is supported underneath",
        );
      plan.proxyProtocol = true;
    } else if (
      kind === TLS_TYPE_URL.upstreamTlsContext ||
      (tc === undefined && ts.name === TLS_TRANSPORT_SOCKET)
    ) {
      const t = compileUpstreamTlsContext(tc?.raw, "transport_socket.typed_config");
      if (!t.ok) for (const e of t.errors) errors.add(e.path, e.message);
      else plan.tls = t.value;
    } else if (kind !== HOST_TYPE_URL.rawBuffer && kind !== HOST_FILTER_NAME.rawBuffer) {
      errors.add(
        "transport_socket",
        `${kind || "this transport socket"} is not supported (upstream_proxy_protocol, tls)`,
      );
    }
  }
  if (present(c, "typed_extension_protocol_options")) {
    const h = compileHttpProtocolOptions(
      c.typed_extension_protocol_options,
      "typed_extension_protocol_options",
    );
    if (!h.ok) for (const e of h.errors) errors.add(e.path, e.message);
    else plan.http2 = h.value.http2;
  }
  // A tunnel cluster speaks HTTP/2 over TLS, and only that.
  if (plan.tls && !plan.http2)
    errors.add(
      "typed_extension_protocol_options",
      "a TLS cluster carries HTTP/2 CONNECT tunnels: HttpProtocolOptions{explicit_http_config: {http2_protocol_options: {}}} must be set",
    );
  if (plan.http2 && !plan.tls)
    errors.add("transport_socket", "HTTP/2 upstreams need the tls transport socket (tunnels only)");
  const md = isObject(c.metadata) && isObject(c.metadata.filter_metadata) ? c.metadata.filter_metadata : {};
  const catena = isObject(md.catena) ? structToJson(md.catena) : {};
  if (catena.connectRetries !== undefined) {
    const r = catena.connectRetries;
    if (typeof r !== "number" || !Number.isInteger(r) || r < 0)
      errors.add("metadata.filter_metadata.catena.connectRetries", "must be an integer >= 0");
    else plan.connectAttempts = 1 + r;
  }
  if (typeof catena.chain === "string" && catena.chain !== "") plan.chain = catena.chain;
  if (catena.hop !== undefined) {
    const h = catena.hop;
    if (typeof h !== "number" || !Number.isInteger(h) || h < 0 || h > 0xffff)
      errors.add("metadata.filter_metadata.catena.hop", "must be an integer 0-65535");
    else plan.hop = h;
  }
  return errors.result(plan);
}

/** ClusterLoadAssignment → endpoints; field errors otherwise. */
export function compileAssignment(json: unknown): Validated<Endpoint[]> {
  return decodeClusterLoadAssignment(json);
}

export interface UpstreamDeps {
  /** Source address for upstream connections (the instance's own). */
  localAddress: string | undefined;
  logger: Logger;
  /** Our certificate and the roots, for clusters with an UpstreamTlsContext. */
  materials?: TlsMaterials;
  tunnelOptions?: TunnelOptions;
  /** vpn connected/disconnected/refused events. */
  tunnelEvents?: TunnelEventSink;
  /** An endpoint became (un)available; for events and logs. */
  onHealthChange?: (cluster: string, endpoint: string, healthy: boolean) => void;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const HASH_POLICIES = new Set(["ring_hash", "maglev"]);

export class UpstreamCluster {
  readonly name: string;
  #plan: ClusterPlan;
  #endpoints: readonly Endpoint[] = [];
  #lb: LoadBalancer;
  #health: ActiveHealthChecker | undefined;
  #outlier: OutlierDetector | undefined;
  readonly #breaker: CircuitBreaker;
  readonly #budget = new RetryBudget();
  readonly #deps: UpstreamDeps;
  #pool: TunnelPool | undefined;
  #closed = false;

  constructor(plan: ClusterPlan, deps: UpstreamDeps) {
    this.name = plan.name;
    this.#plan = plan;
    this.#deps = deps;
    this.#lb = new LoadBalancer(plan.config.lb);
    this.#breaker = new CircuitBreaker(plan.config.circuitBreaker);
    this.#outlier = this.#makeOutlier();
    this.#health = this.#makeHealth();
    this.#pool = this.#makePool();
    if (plan.staticEndpoints) this.setEndpoints(plan.staticEndpoints);
  }

  /** Whether connections through this cluster are HTTP/2 CONNECT tunnels (UpstreamTlsContext). */
  get tunnels(): boolean {
    return this.#plan.tls !== undefined;
  }

  /** The tunnel pool (TLS clusters only): sessions opened and open now. */
  get tunnelPool(): TunnelPool | undefined {
    return this.#pool;
  }

  #makePool(): TunnelPool | undefined {
    const tls = this.#plan.tls;
    const materials = this.#deps.materials;
    if (!tls || !materials) return undefined;
    return new TunnelPool(tls, {
      cluster: this.name,
      localAddress: this.#deps.localAddress,
      materials,
      options: this.#deps.tunnelOptions ?? DEFAULT_TUNNEL_OPTIONS,
      events: this.#deps.tunnelEvents ?? (() => {}),
      logger: this.#deps.logger,
    });
  }

  get plan(): ClusterPlan {
    return this.#plan;
  }

  get proxyProtocol(): boolean {
    return this.#plan.proxyProtocol;
  }

  /** A new version of the Cluster: rebuilds only the parts whose config changed. */
  update(plan: ClusterPlan): void {
    const old = this.#plan;
    this.#plan = plan;
    this.#breaker.update(plan.config.circuitBreaker ?? {});
    if (!same(old.config.lb, plan.config.lb)) {
      this.#lb = new LoadBalancer(plan.config.lb);
      this.#lb.setEndpoints(this.#endpoints);
      // Carry the verdicts over so a policy change does not send traffic to known-bad endpoints.
      for (const e of this.#endpoints) {
        const k = endpointKey(e);
        if (this.#health && this.#health.health(k) === "unhealthy") this.#lb.setActiveHealth(k, false);
        if (this.#outlier?.isEjected(k)) this.#lb.setEjected(k, true);
      }
    }
    if (!same(old.config.outlierDetection, plan.config.outlierDetection)) {
      this.#outlier?.close();
      for (const e of this.#endpoints) this.#lb.setEjected(endpointKey(e), false);
      this.#outlier = this.#makeOutlier();
      this.#outlier?.setEndpoints(this.#endpoints.map(endpointKey));
    }
    if (!same(old.config.healthCheck, plan.config.healthCheck)) {
      void this.#health?.close();
      for (const e of this.#endpoints) this.#lb.setActiveHealth(endpointKey(e), true);
      this.#health = this.#makeHealth();
      this.#startChecks(this.#endpoints, this.#endpoints);
    }
    if (!same(old.tls, plan.tls)) {
      if (this.#pool && plan.tls) this.#pool.setPlan(plan.tls);
      else {
        this.#pool?.close();
        this.#pool = this.#makePool();
      }
    }
    if (plan.staticEndpoints && !same(old.staticEndpoints, plan.staticEndpoints))
      this.setEndpoints(plan.staticEndpoints);
  }

  /** The endpoint list (an EDS update); health and ejections of endpoints that stay are kept. */
  setEndpoints(endpoints: readonly Endpoint[]): void {
    if (this.#closed) return;
    const before = new Set(this.#endpoints.map(endpointKey));
    const added = endpoints.filter((e) => !before.has(endpointKey(e)));
    this.#endpoints = endpoints;
    this.#lb.setEndpoints(endpoints);
    this.#outlier?.setEndpoints(endpoints.map(endpointKey));
    this.#pool?.retainEndpoints(new Set(endpoints.map(endpointKey)));
    this.#startChecks(endpoints, added);
  }

  #startChecks(all: readonly Endpoint[], added: readonly Endpoint[]): void {
    if (!this.#health) return;
    // Envoy: an endpoint under active checking is unhealthy until its first check passes.
    for (const e of added) this.#lb.setActiveHealth(endpointKey(e), false);
    this.#health.setEndpoints(all);
  }

  #makeHealth(): ActiveHealthChecker | undefined {
    const hc = this.#plan.config.healthCheck;
    if (!hc) return undefined;
    const checker: ActiveHealthChecker = new ActiveHealthChecker({
      ...hc,
      probe: tcpProbeFrom(this.#deps.localAddress),
      onTransition: (e, healthy) => {
        if (this.#health !== checker) return;
        this.#lb.setActiveHealth(endpointKey(e), healthy);
        this.#deps.onHealthChange?.(this.name, endpointKey(e), healthy);
      },
    });
    return checker;
  }

  #makeOutlier(): OutlierDetector | undefined {
    const od = this.#plan.config.outlierDetection;
    if (!od) return undefined;
    const detector: OutlierDetector = new OutlierDetector({
      ...od,
      onTransition: (key, ejected) => {
        if (this.#outlier !== detector) return;
        this.#lb.setEjected(key, ejected);
        this.#deps.onHealthChange?.(this.name, key, !ejected);
      },
    });
    return detector;
  }

  /**
   * A connected socket to an endpoint: picked by the policy (hashing hashKey, else the client's
   * address, for ring_hash and maglev), retried on other endpoints up to the attempts allowed.
   */
  connect(sourceAddress: string, hashKey: string | undefined, maxAttempts?: number): Promise<Socket> {
    if (this.#plan.tls)
      return Promise.reject(
        new SdkError(SDK_ERROR.upstreamUnavailable, `${this.name}: a TLS cluster carries tunnels only`),
      );
    return this.#establish(sourceAddress, hashKey, maxAttempts, (e) => this.#dial(e));
  }

  /**
   * An HTTP/2 CONNECT stream through a tunnel to an endpoint, picked and retried as connect() does;
   * resolves once the peer answered 200.
   */
  tunnel(
    sourceAddress: string,
    hashKey: string | undefined,
    maxAttempts: number | undefined,
    request: TunnelRequest,
  ): Promise<ClientHttp2Stream> {
    const pool = this.#pool;
    if (!pool)
      return Promise.reject(
        new SdkError(
          SDK_ERROR.upstreamUnavailable,
          `${this.name}: not a tunnel cluster (no UpstreamTlsContext)`,
        ),
      );
    return this.#establish(sourceAddress, hashKey, maxAttempts, (e) =>
      pool.open(e, request, this.#plan.connectTimeoutMs).then(
        (s) => {
          this.#outlier?.reportSuccess(endpointKey(e));
          return s;
        },
        (err: unknown) => {
          this.#outlier?.reportFailure(endpointKey(e));
          throw err;
        },
      ),
    );
  }

  #establish<T extends Socket | ClientHttp2Stream>(
    sourceAddress: string,
    hashKey: string | undefined,
    maxAttempts: number | undefined,
    dial: (e: Endpoint) => Promise<T>,
  ): Promise<T> {
    if (this.#closed) return Promise.reject(new SdkError(SDK_ERROR.closed, `cluster ${this.name} is closed`));
    const lease = this.#breaker.tryConnection();
    if (!lease)
      return Promise.reject(
        new SdkError(SDK_ERROR.upstreamUnavailable, `${this.name}: circuit breaker open`),
      );
    const hash =
      hashKey !== undefined
        ? murmur3(hashKey, 0)
        : HASH_POLICIES.has(this.#plan.config.lb.policy)
          ? hashSourceAddress(sourceAddress)
          : undefined;
    const attempts = maxAttempts ?? this.#plan.connectAttempts;
    if (attempts <= 1) {
      const e = this.#lb.pick(hash === undefined ? undefined : { hash });
      if (!e) {
        lease.release();
        return Promise.reject(
          new SdkError(SDK_ERROR.upstreamUnavailable, `${this.name}: no endpoint available`),
        );
      }
      return dial(e).then(
        (s) => this.#opened(e, s, lease),
        (err: unknown) => {
          lease.release();
          throw err;
        },
      );
    }
    return attemptEndpoints({
      maxAttempts: attempts,
      pick: ({ attempt, exclude }) => this.#lb.pick({ hash, attempt, exclude }),
      attempt: (e) => dial(e),
      budget: this.#budget,
      retryGate: () => this.#breaker.tryRetry(),
    }).then((r) => {
      if (r.ok) return this.#opened(r.endpoint, r.value, lease);
      lease.release();
      const last = r.failures[r.failures.length - 1]?.error;
      throw new SdkError(
        SDK_ERROR.upstreamUnavailable,
        `${this.name}: ${r.reason}${last instanceof Error ? `: ${last.message}` : ""}`,
        { cause: last },
      );
    });
  }

  #dial(e: Endpoint): Promise<Socket> {
    const local = this.#deps.localAddress;
    const sameFamily = local !== undefined && isIP(local) === isIP(e.address);
    return connectUpstream({
      host: e.address,
      port: e.port,
      localAddress: sameFamily ? local : undefined,
      timeoutMs: this.#plan.connectTimeoutMs,
    }).then(
      (s) => {
        this.#outlier?.reportSuccess(endpointKey(e));
        s.setNoDelay(true);
        return s;
      },
      (err: unknown) => {
        this.#outlier?.reportFailure(endpointKey(e));
        throw err;
      },
    );
  }

  #opened<T extends Socket | ClientHttp2Stream>(e: Endpoint, s: T, lease: Lease): T {
    const lb = this.#lb;
    lb.connectionOpened(e);
    s.once("close", () => {
      lb.connectionClosed(e);
      lease.release();
    });
    return s;
  }

  endpointHealth(): EndpointHealthSample[] {
    return this.#endpoints.map((e) => {
      const k = endpointKey(e);
      return { cluster: this.name, endpoint: k, healthy: this.#lb.isAvailable(k) };
    });
  }

  /** Stops health checks and ejection timers; open connections are left to their relays. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#outlier?.close();
    this.#pool?.close();
    await this.#health?.close();
  }
}

/** Clusters and assignments by name; assignments may arrive before or after their cluster. */
export class ClusterManager {
  readonly #clusters = new Map<string, UpstreamCluster>();
  readonly #assignments = new Map<string, readonly Endpoint[]>();
  readonly #deps: UpstreamDeps;

  constructor(deps: UpstreamDeps) {
    this.#deps = deps;
  }

  get(name: string): UpstreamCluster | undefined {
    return this.#clusters.get(name);
  }

  get size(): number {
    return this.#clusters.size;
  }

  applyCluster(plan: ClusterPlan): void {
    const existing = this.#clusters.get(plan.name);
    if (existing) existing.update(plan);
    else this.#clusters.set(plan.name, new UpstreamCluster(plan, this.#deps));
    const c = this.#clusters.get(plan.name) as UpstreamCluster;
    if (plan.edsName !== undefined) c.setEndpoints(this.#assignments.get(plan.edsName) ?? []);
  }

  removeCluster(name: string): void {
    const c = this.#clusters.get(name);
    if (!c) return;
    this.#clusters.delete(name);
    void c.close();
  }

  applyAssignment(name: string, endpoints: readonly Endpoint[]): void {
    this.#assignments.set(name, endpoints);
    for (const c of this.#clusters.values()) if (c.plan.edsName === name) c.setEndpoints(endpoints);
  }

  removeAssignment(name: string): void {
    this.#assignments.delete(name);
    for (const c of this.#clusters.values()) if (c.plan.edsName === name) c.setEndpoints([]);
  }

  endpointHealth(): EndpointHealthSample[] {
    return [...this.#clusters.values()].flatMap((c) => c.endpointHealth());
  }

  async close(): Promise<void> {
    const all = [...this.#clusters.values()];
    this.#clusters.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}
