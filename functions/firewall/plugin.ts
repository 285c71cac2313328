// The firewall function: Envoy's network RBAC filter on a hop. The compiler emits up to two of them
// per hop (DESIGN.md "Hop resources"): first `action: DENY` (a matching policy denies), then, for
// defaultAction deny, `action: ALLOW` (no matching policy denies); each filter decides on its own and
// the chain runs them in order. Principals test the original client (the PROXY v2 source) unless a
// policy uses direct_remote_ip; permissions test the destination port. A denied connection is closed
// with nothing sent, counted, and reported as a rate-limited `dev.catena.firewall.denied` event.
import {
  ACCEPT,
  type Connection,
  type Deny,
  defineFunction,
  deny,
  type HostHelper,
  type MetricCounter,
  type NetworkFilter,
  type Verdict,
} from "../sdk/define-function.js";
import { EventRateLimiter } from "../sdk/events.js";
import type { Validated } from "../sdk/validated.js";
import { FirewallIndex } from "./firewall-index.js";
import { decodeRbacConfig, type RbacFirewall } from "./rbac-config.js";

export const RBAC_TYPE_URL = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC";

/** Denied events per second per filter; the rest are counted in the next event's `suppressed`. */
const EVENTS_PER_SECOND = 10;

export class RbacFilter implements NetworkFilter {
  readonly #index: FirewallIndex;
  readonly #direct: boolean;
  readonly #logOnly: boolean;
  readonly #helper: HostHelper;
  readonly #denied: MetricCounter;
  readonly #events = new EventRateLimiter({ perSecond: EVENTS_PER_SECOND });
  /** One Deny per rule, built on first use, so denying allocates nothing after that. */
  readonly #verdicts = new Map<string, Deny>();

  constructor(config: RbacFirewall, helper: HostHelper) {
    this.#index = new FirewallIndex(config.policy);
    this.#direct = config.address === "direct";
    this.#logOnly = config.logOnly;
    this.#helper = helper;
    this.#denied = helper.metrics.counter("denied", "Connections the firewall denied");
  }

  onConnection(conn: Connection): Verdict {
    const who = this.#direct ? conn.peer : conn.source;
    const d = this.#index.decide(who.address, conn.destination.port);
    if (d.allowed) return ACCEPT;
    const rule = d.rule ?? "default";
    if (!this.#logOnly) this.#denied.add();
    if (this.#events.admit()) {
      this.#helper.emit({
        verb: "denied",
        data: {
          chain: conn.chain,
          hop: this.#helper.scope.hop ?? conn.hop,
          listener: conn.listener,
          source: who.address,
          sourcePort: who.port,
          destinationPort: conn.destination.port,
          rule,
          enforced: !this.#logOnly,
          suppressed: this.#events.takeSuppressed(),
        },
      });
    }
    if (this.#logOnly) return ACCEPT;
    let v = this.#verdicts.get(rule);
    if (!v) {
      v = deny(`firewall:${rule}`);
      this.#verdicts.set(rule, v);
    }
    return v;
  }
}

export function parseFirewallConfig(raw: unknown, _typeUrl: string): Validated<RbacFirewall> {
  return decodeRbacConfig(raw);
}

export default defineFunction<RbacFirewall>({
  name: "firewall",
  configTypes: [RBAC_TYPE_URL],
  parseConfig: parseFirewallConfig,
  createFilter: (config, helper) => new RbacFilter(config, helper),
});
