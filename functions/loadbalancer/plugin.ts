// The load balancer function. A hop's balancing lives in its Cluster (lb_policy, health_checks,
// outlier_detection, circuit_breakers, connect retries: DESIGN.md "Hop resources"), and the host builds
// every cluster, for every function type, from the loadbalancer building blocks: a loadbalancer hop
// has no listener filter. So this plugin claims no filter type and exists to name the function:
// `catena function loadbalancer`, node metadata type and event kind `loadbalancer`.
import { ACCEPT, defineFunction, type NetworkFilter } from "../sdk/define-function.js";
import { valid } from "../sdk/validated.js";

/** Never instantiated by the host (no config types); kept for plugins that compose this function. */
export const PASS_THROUGH: NetworkFilter = Object.freeze({ onConnection: () => ACCEPT });

export default defineFunction<Record<string, never>>({
  name: "loadbalancer",
  configTypes: [],
  parseConfig: () => valid({}),
  createFilter: () => PASS_THROUGH,
});
