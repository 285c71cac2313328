// NetworkPolicy in the Envoy dialect: the extra RBAC the firewall hop in front of a Service gets
// (the chain's first firewall hop; chain-resources.ts appends it after the hop's own filters, so a
// connection must pass both the operator's firewall config and the policies).
//
// Semantics (DESIGN.md "NetworkPolicy"):
// - A policy selects a Service when its subject selector matches the Service's selector (the labels
//   every Workload behind it carries), any Workload the Service selects in its network, or, for a
//   Service without selector, the Service's own labels. `{}` selects every Service.
// - policyTypes default to the directions the policy has rules for. A Service selected by a policy
//   with Ingress, or living in a `default-deny` Network, is isolated: only what some ingress rule
//   allows gets in (allows add up across policies), as one `action: ALLOW` filter.
// - Deny rules override allows: one `action: DENY` filter, first. A deny rule's `from` denies those
//   peers into the subject; its `to` denies the subject out to those peers (so, here, the subject's
//   Workloads into this Service when the Service matches `to`); `ports` narrow either.
// - Egress: a Workload selected by a policy with Egress may reach only what its egress rules allow;
//   at this firewall, a Workload whose egress rules do not allow this Service on the chain's port is
//   denied (DENY filter).
// - Peers: `selector` = the matching Workloads' addresses (spec or IPAM), `network` = the Network's
//   CIDR, `ipBlock` = the CIDR less `except`. Ports name the Workloads' port (the Service port's
//   targetPort) or the Service port; the firewall sees the chain's port, so a rule whose ports hold
//   it matches. The source tested is the original client (RBAC `remote_ip`, PROXY v2 aware).
import {
  FILTER_NAME,
  type Json,
  type NetworkFilter,
  networkFilter,
  TYPE_URL,
  typedConfig,
} from "../../../xds/index.js";
import { workloadAddresses } from "../ipam/workload-address.js";
import { type Cidr, cidrContains, formatCidr, parseCidr, parseIp } from "../model/ip.js";
import type { Kind, StoredResource } from "../model/resource.js";
import type { NetworkPolicySpec, NetworkSpec, ServiceSpec } from "../model/schemas.js";
import { matchesSelector } from "../store/index.js";

/** The model as policy compilation reads it (the compiler's ModelState has this shape). */
export interface PolicyModel {
  get(kind: Kind, name: string): StoredResource | undefined;
  list(kind: Kind): Iterable<StoredResource>;
}

export interface RbacPolicy {
  permissions: Json[];
  principals: Json[];
}

/** What a Service's firewall hop must add: JSON data, so the chain's fingerprint sees every change. */
export interface ServicePolicy {
  /** Policies that shaped it (and `network/<name>` for a default-deny Network), sorted. */
  sources: string[];
  /** One DENY filter's policies (none: no DENY filter). */
  deny: Record<string, RbacPolicy>;
  /** One ALLOW filter's policies when the Service is isolated (empty: nothing gets in). */
  allow?: Record<string, RbacPolicy>;
}

type Peer = NonNullable<NetworkPolicySpec["ingress"]>[number]["from"][number];
type PortRule = NonNullable<NonNullable<NetworkPolicySpec["ingress"]>[number]["ports"]>[number];

const ANY: Json = { any: true };

export function policyTypes(spec: NetworkPolicySpec): ("Ingress" | "Egress")[] {
  if (spec.policyTypes) return [...spec.policyTypes];
  return [...(spec.ingress ? (["Ingress"] as const) : []), ...(spec.egress ? (["Egress"] as const) : [])];
}

function sameLabels(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return matchesSelector(labels, { equals: selector });
}

/** Whether `selector` selects the Service (see the header for the rule). */
export function selectsService(
  selector: Record<string, string>,
  service: StoredResource,
  model: PolicyModel,
): boolean {
  if (Object.keys(selector).length === 0) return true;
  const spec = service.spec as ServiceSpec;
  if (!spec.selector || Object.keys(spec.selector).length === 0)
    return sameLabels(selector, service.metadata.labels);
  if (sameLabels(selector, spec.selector)) return true;
  for (const w of model.list("Workload")) {
    if (!sameLabels(spec.selector, w.metadata.labels)) continue;
    const member = (w.spec as { networks?: { name: string }[] }).networks?.some(
      (n) => n.name === spec.network,
    );
    if (member && sameLabels(selector, w.metadata.labels)) return true;
  }
  return false;
}

function cidrJson(c: Cidr): Json {
  const text = formatCidr(c);
  const slash = text.lastIndexOf("/");
  return { address_prefix: text.slice(0, slash), prefix_len: { value: c.prefix } };
}

function hostCidrJson(address: string): Json | undefined {
  const ip = parseIp(address);
  if (!ip) return undefined;
  const prefix = ip.family === 4 ? 32 : 128;
  return cidrJson({ family: ip.family, prefix, first: ip.value, last: ip.value });
}

/** The addresses of the Workloads a selector matches, as RBAC principals. */
function workloadPrincipals(selector: Record<string, string>, model: PolicyModel): Json[] {
  const out: Json[] = [];
  for (const w of model.list("Workload")) {
    if (!sameLabels(selector, w.metadata.labels)) continue;
    for (const a of workloadAddresses(w)) {
      const c = hostCidrJson(a.address);
      if (c) out.push({ remote_ip: c });
    }
  }
  return out;
}

function peerPrincipals(peer: Peer, model: PolicyModel): Json[] {
  if (peer.selector) return workloadPrincipals(peer.selector, model);
  if (peer.network) {
    const network = model.get("Network", peer.network);
    const parsed = network ? parseCidr((network.spec as NetworkSpec).cidr) : undefined;
    return parsed?.ok ? [{ remote_ip: cidrJson(parsed.value) }] : [];
  }
  if (peer.ipBlock) {
    const parsed = parseCidr(peer.ipBlock.cidr);
    if (!parsed.ok) return [];
    const block: Json = { remote_ip: cidrJson(parsed.value) };
    const except = (peer.ipBlock.except ?? []).flatMap((e) => {
      const p = parseCidr(e);
      return p.ok ? [{ remote_ip: cidrJson(p.value) } as Json] : [];
    });
    if (except.length === 0) return [block];
    const notId: Json = except.length === 1 ? (except[0] as Json) : { or_ids: { ids: except } };
    return [{ and_ids: { ids: [block, { not_id: notId }] } }];
  }
  return [];
}

/** Whether a `to` peer names this Service (by its Workloads, its Network, or its addresses). */
function peerMatchesService(
  peer: Peer,
  service: StoredResource,
  destinations: readonly string[],
  model: PolicyModel,
) {
  if (peer.selector) return selectsService(peer.selector, service, model);
  if (peer.network) return (service.spec as ServiceSpec).network === peer.network;
  if (peer.ipBlock) {
    const block = parseCidr(peer.ipBlock.cidr);
    if (!block.ok) return false;
    const except = (peer.ipBlock.except ?? []).flatMap((e) => {
      const p = parseCidr(e);
      return p.ok ? [p.value] : [];
    });
    return destinations.some((d) => {
      const ip = parseIp(d);
      return ip !== undefined && cidrContains(block.value, ip) && !except.some((e) => cidrContains(e, ip));
    });
  }
  return false;
}

interface PortContext {
  /** The chain's port: what the firewall sees as the destination port. */
  port: number;
  /** The Workloads' port behind it (the Service port's targetPort). */
  target: number;
}

function inRule(r: PortRule, port: number): boolean {
  return port >= r.port && port <= (r.endPort ?? r.port);
}

/** Whether the rule's ports hold the chain's port (directly, or through the target port). */
function coversPort(ports: readonly PortRule[] | undefined, ctx: PortContext): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((r) => inRule(r, ctx.port) || inRule(r, ctx.target));
}

/**
 * RBAC permissions for a rule's ports: as written when the chain's port is the Workloads' port (an
 * endPort becomes `destination_port_range`, whose end is exclusive), else the chain's port when the
 * rule covers its target. undefined: the rule can never match here.
 */
function portPermissions(ports: readonly PortRule[] | undefined, ctx: PortContext): Json[] | undefined {
  if (!ports || ports.length === 0) return [ANY];
  if (ctx.port === ctx.target) {
    return ports.map(
      (r): Json =>
        r.endPort === undefined || r.endPort === r.port
          ? { destination_port: r.port }
          : { destination_port_range: { start: r.port, end: r.endPort + 1 } },
    );
  }
  return coversPort(ports, ctx) ? [{ destination_port: ctx.port }] : undefined;
}

/**
 * The NetworkPolicy RBAC of the firewall in front of `service`, reached on the chain's `port` at
 * `destinations` (ingress instance and endpoint addresses); undefined when no policy concerns it.
 */
export function compileServicePolicy(
  service: StoredResource,
  port: number,
  destinations: readonly string[],
  model: PolicyModel,
): ServicePolicy | undefined {
  const spec = service.spec as ServiceSpec;
  const servicePort = spec.ports.find((p) => p.port === port);
  const ctx: PortContext = { port, target: servicePort?.targetPort ?? port };
  const sources = new Set<string>();
  const deny: Record<string, RbacPolicy> = {};
  let allow: Record<string, RbacPolicy> | undefined;

  const network = model.get("Network", spec.network);
  if ((network?.spec as NetworkSpec | undefined)?.isolation === "default-deny") {
    allow = {};
    sources.add(`network/${spec.network}`);
  }

  // Egress-isolated Workloads, with whether some rule lets them reach this Service.
  const egress = new Map<string, { allowed: boolean; addresses: string[] }>();
  const policies = [...model.list("NetworkPolicy")].sort((a, b) =>
    a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0,
  );
  for (const policy of policies) {
    const name = policy.metadata.name;
    const p = policy.spec as NetworkPolicySpec;
    const types = policyTypes(p);
    const subject = selectsService(p.subject.selector, service, model);

    if (subject && types.includes("Ingress")) {
      allow ??= {};
      sources.add(name);
      for (const [i, rule] of (p.ingress ?? []).entries()) {
        const permissions = portPermissions(rule.ports, ctx);
        const principals = rule.from.flatMap((peer) => peerPrincipals(peer, model));
        if (permissions && principals.length > 0) allow[`${name}/ingress-${i}`] = { permissions, principals };
      }
    }

    for (const [i, rule] of (p.deny ?? []).entries()) {
      const permissions = portPermissions(rule.ports, ctx);
      if (!permissions) continue;
      // Into the subject: from these peers, or from anyone when the rule names only ports.
      if (subject && (rule.from || !rule.to)) {
        const principals = rule.from ? rule.from.flatMap((peer) => peerPrincipals(peer, model)) : [ANY];
        if (principals.length > 0) {
          deny[`${name}/deny-${i}`] = { permissions, principals };
          sources.add(name);
        }
      }
      // Out of the subject to this Service.
      if (rule.to?.some((peer) => peerMatchesService(peer, service, destinations, model))) {
        const principals = workloadPrincipals(p.subject.selector, model);
        if (principals.length > 0) {
          deny[`${name}/deny-${i}-to`] = { permissions, principals };
          sources.add(name);
        }
      }
    }

    if (types.includes("Egress")) {
      const allows = (p.egress ?? []).some(
        (rule) =>
          coversPort(rule.ports, ctx) &&
          rule.to.some((peer) => peerMatchesService(peer, service, destinations, model)),
      );
      for (const w of model.list("Workload")) {
        if (!sameLabels(p.subject.selector, w.metadata.labels)) continue;
        const entry = egress.get(w.metadata.name) ?? {
          allowed: false,
          addresses: workloadAddresses(w).map((a) => a.address),
        };
        entry.allowed ||= allows;
        egress.set(w.metadata.name, entry);
        sources.add(name);
      }
    }
  }

  const denied = [...egress.entries()]
    .filter(([, e]) => !e.allowed)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .flatMap(([, e]) =>
      e.addresses.flatMap((a) => {
        const c = hostCidrJson(a);
        return c ? [{ remote_ip: c } as Json] : [];
      }),
    );
  if (denied.length > 0) deny["egress-not-allowed"] = { permissions: [ANY], principals: denied };

  if (!allow && Object.keys(deny).length === 0) return undefined;
  return { sources: [...sources].sort(), deny, ...(allow && { allow }) };
}

/** The filters for a firewall hop: DENY first (a match denies), then ALLOW when isolated (no match denies). */
export function policyFilters(policy: ServicePolicy, statPrefix: string): NetworkFilter[] {
  const filter = (action: "ALLOW" | "DENY", policies: Record<string, RbacPolicy>) =>
    networkFilter(
      FILTER_NAME.networkRbac,
      typedConfig(TYPE_URL.networkRbac, { stat_prefix: statPrefix, rules: { action, policies } }),
    );
  const out: NetworkFilter[] = [];
  if (Object.keys(policy.deny).length > 0) out.push(filter("DENY", policy.deny));
  if (policy.allow) out.push(filter("ALLOW", policy.allow));
  return out;
}
