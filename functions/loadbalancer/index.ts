// Public surface of the load balancing building blocks.
export { CircuitBreaker, type CircuitBreakerThresholds } from "./circuit-breaker.js";
export { EdfScheduler } from "./edf-scheduler.js";
export { type Endpoint, endpointKey, type PickContext, type Picker, type RandomSource } from "./endpoint.js";
export { murmur3 } from "./hash.js";
export {
  ActiveHealthChecker,
  type HealthCheckOptions,
  type HealthProbe,
  type HealthState,
  tcpConnectProbe,
  tcpProbeFrom,
} from "./health-checker.js";
export { type LeastRequestOptions, LeastRequestPicker } from "./least-request.js";
export {
  hashSourceAddress,
  LB_POLICIES,
  type LbPolicy,
  LoadBalancer,
  type LoadBalancerOptions,
} from "./load-balancer.js";
export { isPrime, MAGLEV_DEFAULT_TABLE_SIZE, type MaglevOptions, MaglevPicker } from "./maglev.js";
export { type OutlierDetectionOptions, OutlierDetector } from "./outlier-detector.js";
export { RandomPicker } from "./random.js";
export {
  type AttemptOptions,
  type AttemptResult,
  attemptEndpoints,
  RetryBudget,
  type RetryBudgetOptions,
} from "./retry.js";
export { type RingHashOptions, RingHashPicker } from "./ring-hash.js";
export { RoundRobinPicker } from "./round-robin.js";
