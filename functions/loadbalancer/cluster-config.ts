// Load balancer config in its two dialects, decoded without throwing, every problem with its path:
//  - the operator's hop config: {policy, panicThresholdPercent?, healthCheck?: {intervalMs, timeoutMs,
//    unhealthyThreshold, healthyThreshold}, outlierDetection?: {...}, maxConnections?, connectAttempts?}
//  - Envoy's Cluster (lb_policy and its *_lb_config, common_lb_config.healthy_panic_threshold,
//    health_checks with a tcp_health_check, outlier_detection, circuit_breakers) and
//    ClusterLoadAssignment, as protobufjs decodes them with keepCase.
import { durationMs, isObject, type Json, wrappedValue as wrapped } from "../sdk/proto-json.js";
import { ErrorList, type Validated } from "../sdk/validated.js";
import type { CircuitBreakerThresholds } from "./circuit-breaker.js";
import type { Endpoint } from "./endpoint.js";
import type { HealthCheckOptions } from "./health-checker.js";
import { LB_POLICIES, type LbPolicy, type LoadBalancerOptions } from "./load-balancer.js";
import { isPrime } from "./maglev.js";
import type { OutlierDetectionOptions } from "./outlier-detector.js";

export type HealthCheckConfig = Omit<HealthCheckOptions, "onTransition" | "probe">;
export type OutlierConfig = Omit<OutlierDetectionOptions, "clock" | "onTransition">;

export interface ClusterConfig {
  lb: LoadBalancerOptions;
  healthCheck?: HealthCheckConfig;
  outlierDetection?: OutlierConfig;
  circuitBreaker?: CircuitBreakerThresholds;
  /** Total connect attempts per connection (first try included); default 1. */
  connectAttempts?: number;
}

function checkKeys(o: Json, allowed: readonly string[], path: string, errors: ErrorList): void {
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) errors.add(path ? `${path}.${k}` : k, "unknown field");
}

function positiveInt(v: unknown, path: string, errors: ErrorList): number | undefined {
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    errors.add(path, "must be a positive integer");
    return undefined;
  }
  return v;
}

function percent(v: unknown, path: string, errors: ErrorList): number | undefined {
  if (typeof v !== "number" || !(v >= 0 && v <= 100)) {
    errors.add(path, "must be a percentage 0-100");
    return undefined;
  }
  return v;
}

/** The operator's load balancer hop config. */
export function decodeLoadBalancerConfig(raw: unknown): Validated<ClusterConfig> {
  const errors = new ErrorList();
  const out: ClusterConfig = { lb: { policy: "round_robin" } };
  if (!isObject(raw)) {
    errors.add("", "load balancer config must be an object");
    return errors.result(out);
  }
  checkKeys(
    raw,
    [
      "policy",
      "panicThresholdPercent",
      "healthCheck",
      "outlierDetection",
      "maxConnections",
      "connectAttempts",
    ],
    "",
    errors,
  );
  if (raw.policy !== undefined) {
    if (typeof raw.policy === "string" && (LB_POLICIES as readonly string[]).includes(raw.policy)) {
      out.lb.policy = raw.policy as LbPolicy;
    } else errors.add("policy", `must be one of ${LB_POLICIES.join(", ")}`);
  }
  if (raw.panicThresholdPercent !== undefined) {
    const p = percent(raw.panicThresholdPercent, "panicThresholdPercent", errors);
    if (p !== undefined) out.lb.panicThresholdPercent = p;
  }
  const hc = raw.healthCheck;
  if (hc !== undefined) {
    if (!isObject(hc)) errors.add("healthCheck", "must be an object");
    else {
      checkKeys(
        hc,
        ["intervalMs", "timeoutMs", "unhealthyThreshold", "healthyThreshold", "intervalJitterMs"],
        "healthCheck",
        errors,
      );
      const intervalMs = positiveInt(hc.intervalMs, "healthCheck.intervalMs", errors);
      const timeoutMs = positiveInt(hc.timeoutMs ?? 1000, "healthCheck.timeoutMs", errors);
      const unhealthyThreshold = positiveInt(
        hc.unhealthyThreshold ?? 3,
        "healthCheck.unhealthyThreshold",
        errors,
      );
      const healthyThreshold = positiveInt(hc.healthyThreshold ?? 1, "healthCheck.healthyThreshold", errors);
      if (intervalMs && timeoutMs && unhealthyThreshold && healthyThreshold) {
        out.healthCheck = { intervalMs, timeoutMs, unhealthyThreshold, healthyThreshold };
        if (typeof hc.intervalJitterMs === "number") out.healthCheck.intervalJitterMs = hc.intervalJitterMs;
      }
    }
  }
  const od = raw.outlierDetection;
  if (od !== undefined) {
    if (!isObject(od)) errors.add("outlierDetection", "must be an object");
    else {
      checkKeys(
        od,
        ["consecutiveFailures", "baseEjectionMs", "maxEjectionMs", "maxEjectionPercent", "backoff"],
        "outlierDetection",
        errors,
      );
      const o: OutlierConfig = {};
      if (od.consecutiveFailures !== undefined)
        o.consecutiveFailures = positiveInt(
          od.consecutiveFailures,
          "outlierDetection.consecutiveFailures",
          errors,
        );
      if (od.baseEjectionMs !== undefined)
        o.baseEjectionMs = positiveInt(od.baseEjectionMs, "outlierDetection.baseEjectionMs", errors);
      if (od.maxEjectionMs !== undefined)
        o.maxEjectionMs = positiveInt(od.maxEjectionMs, "outlierDetection.maxEjectionMs", errors);
      if (od.maxEjectionPercent !== undefined)
        o.maxEjectionPercent = percent(od.maxEjectionPercent, "outlierDetection.maxEjectionPercent", errors);
      if (od.backoff !== undefined) {
        if (od.backoff === "exponential" || od.backoff === "linear") o.backoff = od.backoff;
        else errors.add("outlierDetection.backoff", "must be exponential or linear");
      }
      out.outlierDetection = o;
    }
  }
  if (raw.maxConnections !== undefined) {
    const m = positiveInt(raw.maxConnections, "maxConnections", errors);
    if (m) out.circuitBreaker = { maxConnections: m };
  }
  if (raw.connectAttempts !== undefined) {
    const a = positiveInt(raw.connectAttempts, "connectAttempts", errors);
    if (a) out.connectAttempts = a;
  }
  return errors.result(out);
}

const ENVOY_LB: Record<string, LbPolicy> = {
  ROUND_ROBIN: "round_robin",
  "0": "round_robin",
  LEAST_REQUEST: "least_request",
  "1": "least_request",
  RING_HASH: "ring_hash",
  "2": "ring_hash",
  RANDOM: "random",
  "3": "random",
  MAGLEV: "maglev",
  "5": "maglev",
};

function present(o: Json, k: string): boolean {
  return o[k] !== undefined && o[k] !== null;
}

/** envoy.config.cluster.v3.Cluster: the parts a TCP load balancer uses. */
export function decodeEnvoyCluster(raw: unknown): Validated<ClusterConfig> {
  const errors = new ErrorList();
  const out: ClusterConfig = { lb: { policy: "round_robin" } };
  if (!isObject(raw)) {
    errors.add("", "Cluster must be an object");
    return errors.result(out);
  }
  const lbp = raw.lb_policy === undefined || raw.lb_policy === null ? "ROUND_ROBIN" : String(raw.lb_policy);
  const policy = ENVOY_LB[lbp];
  if (!policy)
    errors.add(
      "lb_policy",
      `${lbp} is not supported (ROUND_ROBIN, LEAST_REQUEST, RING_HASH, RANDOM, MAGLEV)`,
    );
  else out.lb.policy = policy;

  const common = isObject(raw.common_lb_config) ? raw.common_lb_config : undefined;
  if (common && present(common, "healthy_panic_threshold")) {
    const p = percent(
      wrapped(common.healthy_panic_threshold),
      "common_lb_config.healthy_panic_threshold",
      errors,
    );
    if (p !== undefined) out.lb.panicThresholdPercent = p;
  }
  const ring = isObject(raw.ring_hash_lb_config) ? raw.ring_hash_lb_config : undefined;
  if (ring) {
    out.lb.ringHash = {};
    if (present(ring, "minimum_ring_size"))
      out.lb.ringHash.minRingSize = positiveInt(
        wrapped(ring.minimum_ring_size),
        "ring_hash_lb_config.minimum_ring_size",
        errors,
      );
    if (present(ring, "maximum_ring_size"))
      out.lb.ringHash.maxRingSize = positiveInt(
        wrapped(ring.maximum_ring_size),
        "ring_hash_lb_config.maximum_ring_size",
        errors,
      );
  }
  const maglev = isObject(raw.maglev_lb_config) ? raw.maglev_lb_config : undefined;
  if (maglev && present(maglev, "table_size")) {
    const t = positiveInt(wrapped(maglev.table_size), "maglev_lb_config.table_size", errors);
    if (t !== undefined && !isPrime(t)) errors.add("maglev_lb_config.table_size", "must be prime");
    else if (t !== undefined) out.lb.maglev = { tableSize: t };
  }
  const lr = isObject(raw.least_request_lb_config) ? raw.least_request_lb_config : undefined;
  if (lr) {
    out.lb.leastRequest = {};
    if (present(lr, "choice_count"))
      out.lb.leastRequest.choiceCount = positiveInt(
        wrapped(lr.choice_count),
        "least_request_lb_config.choice_count",
        errors,
      );
    const bias = isObject(lr.active_request_bias) ? lr.active_request_bias.default_value : undefined;
    if (typeof bias === "number") out.lb.leastRequest.activeRequestBias = bias;
  }

  const checks = Array.isArray(raw.health_checks) ? raw.health_checks : [];
  if (checks.length > 1) errors.add("health_checks", "at most one health check is supported");
  const hc = checks[0];
  if (isObject(hc)) {
    const at = "health_checks[0]";
    if (!present(hc, "tcp_health_check")) errors.add(at, "only tcp_health_check is supported");
    else {
      const t = isObject(hc.tcp_health_check) ? hc.tcp_health_check : {};
      if (present(t, "send") || (Array.isArray(t.receive) && t.receive.length > 0)) {
        errors.add(`${at}.tcp_health_check`, "send/receive payloads are not supported (connect-only check)");
      }
    }
    const interval = durationMs(hc.interval);
    const timeout = durationMs(hc.timeout);
    if (!interval || interval <= 0) errors.add(`${at}.interval`, "must be a positive duration");
    if (!timeout || timeout <= 0) errors.add(`${at}.timeout`, "must be a positive duration");
    const unhealthy = positiveInt(wrapped(hc.unhealthy_threshold), `${at}.unhealthy_threshold`, errors);
    const healthy = positiveInt(wrapped(hc.healthy_threshold), `${at}.healthy_threshold`, errors);
    if (interval && timeout && unhealthy && healthy) {
      out.healthCheck = {
        intervalMs: interval,
        timeoutMs: timeout,
        unhealthyThreshold: unhealthy,
        healthyThreshold: healthy,
      };
      const jitter = durationMs(hc.interval_jitter);
      if (jitter) out.healthCheck.intervalJitterMs = jitter;
    }
  }

  const od = isObject(raw.outlier_detection) ? raw.outlier_detection : undefined;
  if (od) {
    // Connect failures are local-origin errors; unless split out, Envoy counts them as 5xx.
    const split = od.split_external_local_origin_errors === true;
    const key = split ? "consecutive_local_origin_failure" : "consecutive_5xx";
    const o: OutlierConfig = { backoff: "linear" };
    if (present(od, key))
      o.consecutiveFailures = positiveInt(wrapped(od[key]), `outlier_detection.${key}`, errors);
    if (present(od, "base_ejection_time")) o.baseEjectionMs = durationMs(od.base_ejection_time);
    if (present(od, "max_ejection_time")) o.maxEjectionMs = durationMs(od.max_ejection_time);
    if (present(od, "max_ejection_percent"))
      o.maxEjectionPercent = percent(
        wrapped(od.max_ejection_percent),
        "outlier_detection.max_ejection_percent",
        errors,
      );
    out.outlierDetection = o;
  }

  const cb = isObject(raw.circuit_breakers) ? raw.circuit_breakers : undefined;
  const thresholds = cb && Array.isArray(cb.thresholds) ? cb.thresholds.filter(isObject) : [];
  const def = thresholds.find(
    (t) => t.priority === undefined || t.priority === "DEFAULT" || t.priority === 0,
  );
  if (def) {
    out.circuitBreaker = {};
    if (present(def, "max_connections"))
      out.circuitBreaker.maxConnections = positiveInt(
        wrapped(def.max_connections),
        "circuit_breakers.thresholds.max_connections",
        errors,
      );
    if (present(def, "max_retries")) {
      const r = wrapped(def.max_retries);
      if (typeof r === "number" && r >= 0) out.circuitBreaker.maxRetries = r;
      else errors.add("circuit_breakers.thresholds.max_retries", "must be a number >= 0");
    }
  }
  return errors.result(out);
}

const UNHEALTHY = new Set(["UNHEALTHY", "DRAINING", "TIMEOUT", "2", "3", "4"]);

/**
 * envoy.config.endpoint.v3.ClusterLoadAssignment to endpoints. Only priority 0 is supported: a
 * failover priority is refused rather than silently balanced into the primary set.
 */
export function decodeClusterLoadAssignment(raw: unknown): Validated<Endpoint[]> {
  const errors = new ErrorList();
  const out: Endpoint[] = [];
  const groups = isObject(raw) && Array.isArray(raw.endpoints) ? raw.endpoints : [];
  groups.forEach((g, i) => {
    const at = `endpoints[${i}]`;
    if (!isObject(g)) {
      errors.add(at, "must be an object");
      return;
    }
    if (g.priority !== undefined && g.priority !== 0)
      errors.add(`${at}.priority`, "only priority 0 is supported");
    const lbs = Array.isArray(g.lb_endpoints) ? g.lb_endpoints : [];
    lbs.forEach((lb, j) => {
      const p = `${at}.lb_endpoints[${j}]`;
      const ep = isObject(lb) && isObject(lb.endpoint) ? lb.endpoint : undefined;
      const sa =
        ep && isObject(ep.address) && isObject(ep.address.socket_address)
          ? ep.address.socket_address
          : undefined;
      if (!isObject(lb) || !sa || typeof sa.address !== "string") {
        errors.add(`${p}.endpoint.address.socket_address`, "must have an address");
        return;
      }
      const port = Number(sa.port_value);
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        errors.add(`${p}.endpoint.address.socket_address.port_value`, "must be a port 1-65535");
        return;
      }
      const w = present(lb, "load_balancing_weight") ? wrapped(lb.load_balancing_weight) : 1;
      const weight = typeof w === "number" && w >= 1 ? w : 1;
      const healthy = !UNHEALTHY.has(String(lb.health_status ?? "UNKNOWN"));
      out.push({ address: sa.address, port, weight, healthy });
    });
  });
  return errors.result(out);
}
