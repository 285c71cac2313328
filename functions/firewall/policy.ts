// The decoded firewall policy every config dialect compiles to, and the decision it yields.
import type { IpAddress } from "../sdk/ip-address.js";
import type { Cidr } from "./cidr.js";

export type FirewallAction = "allow" | "deny";

/** Destination ports start..end, both inclusive. */
export interface PortRange {
  start: number;
  end: number;
}

export interface FirewallRule {
  /** Reported in the decision; the config path ("allow[2]") or the RBAC policy name. */
  id: string;
  action: FirewallAction;
  /** Source blocks; undefined matches every source, [] matches none. */
  sources?: readonly Cidr[];
  /** Destination ports; undefined matches every port, [] matches none. */
  ports?: readonly PortRange[];
}

/**
 * A connection is denied by the first deny rule that matches, else allowed by the first allow rule
 * that matches, else gets defaultAction. Deny rules win over allow rules whatever their order, which
 * covers both Envoy RBAC actions (DENY: deny rules + default allow; ALLOW: allow rules + default deny)
 * and Catena's {defaultAction, allow, deny}.
 */
export interface FirewallPolicy {
  defaultAction: FirewallAction;
  rules: readonly FirewallRule[];
}

export interface Decision {
  readonly allowed: boolean;
  /** The rule that decided; absent when the default action did. */
  readonly rule?: string;
}

export interface FirewallDecider {
  /** Decides for a connection from source to destPort. An unparseable source matches only rules without sources. */
  decide(source: string | IpAddress, destPort: number): Decision;
}

/** Rules in evaluation order: deny rules, then allow rules, each in config order. */
export function evaluationOrder(policy: FirewallPolicy): FirewallRule[] {
  return [
    ...policy.rules.filter((r) => r.action === "deny"),
    ...policy.rules.filter((r) => r.action === "allow"),
  ];
}

/** One frozen Decision per rule plus the default, built once so decide() allocates nothing. */
export function decisionTable(ordered: readonly FirewallRule[], defaultAction: FirewallAction) {
  return {
    byRule: ordered.map((r) =>
      Object.freeze({ allowed: r.action === "allow", rule: r.id }),
    ) as readonly Decision[],
    fallback: Object.freeze({ allowed: defaultAction === "allow" }) as Decision,
  };
}
