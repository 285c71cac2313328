// envoy.extensions.filters.network.rbac.v3.RBAC, as protobufjs decodes it with keepCase (snake_case
// fields, oneofs as the present field), compiled to a FirewallPolicy. Supported: principals any,
// direct_remote_ip, remote_ip, source_ip, and or_ids/and_ids/not_id over them; permissions any,
// destination_port, destination_port_range ([start, end), as Int32Range), and or_rules/and_rules/
// not_rule over them. Anything else is reported with its field path, never silently ignored.
import { isObject } from "../sdk/proto-json.js";
import { ErrorList, type Validated } from "../sdk/validated.js";
import { ALL_IPV4, ALL_IPV6, type Cidr, complementCidrs, intersectCidrs, parseCidr } from "./cidr.js";
import type { FirewallAction, FirewallPolicy, FirewallRule, PortRange } from "./policy.js";

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** Which address the principals test: the socket peer, or the client a PROXY header names. */
export type RbacAddress = "direct" | "remote";

export interface RbacFirewall {
  policy: FirewallPolicy;
  /** "remote" unless the principals use direct_remote_ip only. */
  address: RbacAddress;
  /** LOG action: the rules are evaluated for reporting but every connection is allowed. */
  logOnly: boolean;
}

// Port sets as sorted disjoint inclusive ranges.
const ALL_PORTS: PortRange[] = [{ start: 0, end: 65535 }];

function normalizePorts(ranges: PortRange[]): PortRange[] {
  const sorted = ranges.filter((r) => r.start <= r.end).sort((a, b) => a.start - b.start);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

function intersectPorts(a: PortRange[], b: PortRange[]): PortRange[] {
  const out: PortRange[] = [];
  for (const x of a) {
    for (const y of b) {
      const start = Math.max(x.start, y.start);
      const end = Math.min(x.end, y.end);
      if (start <= end) out.push({ start, end });
    }
  }
  return normalizePorts(out);
}

function complementPorts(a: PortRange[]): PortRange[] {
  const out: PortRange[] = [];
  let next = 0;
  for (const r of normalizePorts(a)) {
    if (r.start > next) out.push({ start: next, end: r.start - 1 });
    next = r.end + 1;
  }
  if (next <= 65535) out.push({ start: next, end: 65535 });
  return out;
}

class RbacDecoder {
  readonly errors = new ErrorList();
  readonly addresses = new Set<RbacAddress>();

  oneKey(v: unknown, path: string): [string, unknown] | undefined {
    if (!isObject(v)) {
      this.errors.add(path, "must be an object");
      return undefined;
    }
    const keys = Object.keys(v).filter((k) => v[k] !== undefined && v[k] !== null);
    if (keys.length !== 1) {
      this.errors.add(path, `must set exactly one rule, found ${keys.length ? keys.join(", ") : "none"}`);
      return undefined;
    }
    const k = keys[0] as string;
    return [k, v[k]];
  }

  cidrRange(v: unknown, path: string): Cidr[] {
    if (!isObject(v) || typeof v.address_prefix !== "string") {
      this.errors.add(`${path}.address_prefix`, "must be set");
      return [];
    }
    const pl = isObject(v.prefix_len) ? v.prefix_len.value : v.prefix_len;
    const text = pl === undefined ? v.address_prefix : `${v.address_prefix}/${String(pl)}`;
    const c = parseCidr(text);
    if (!c) {
      this.errors.add(path, `${text} is not a CIDR range`);
      return [];
    }
    return [c];
  }

  principal(v: unknown, path: string): Cidr[] {
    const kv = this.oneKey(v, path);
    if (!kv) return [];
    const [k, x] = kv;
    const at = `${path}.${k}`;
    switch (k) {
      case "any":
        return x === true ? [ALL_IPV4, ALL_IPV6] : [];
      case "direct_remote_ip":
        this.addresses.add("direct");
        return this.cidrRange(x, at);
      case "remote_ip":
      case "source_ip":
        this.addresses.add("remote");
        return this.cidrRange(x, at);
      case "or_ids":
        return list(isObject(x) ? x.ids : undefined).flatMap((p, i) => this.principal(p, `${at}.ids[${i}]`));
      case "and_ids": {
        const ids = list(isObject(x) ? x.ids : undefined);
        if (ids.length === 0) this.errors.add(`${at}.ids`, "must not be empty");
        return ids.reduce<Cidr[]>(
          (acc, p, i) => intersectCidrs(acc, this.principal(p, `${at}.ids[${i}]`)),
          [ALL_IPV4, ALL_IPV6],
        );
      }
      case "not_id":
        return complementCidrs(this.principal(x, at));
      default:
        this.errors.add(at, "principal not supported by the Catena firewall (only addresses)");
        return [];
    }
  }

  permission(v: unknown, path: string): PortRange[] {
    const kv = this.oneKey(v, path);
    if (!kv) return [];
    const [k, x] = kv;
    const at = `${path}.${k}`;
    switch (k) {
      case "any":
        return x === true ? ALL_PORTS : [];
      case "destination_port": {
        if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x > 65535) {
          this.errors.add(at, "must be a port number");
          return [];
        }
        return [{ start: x, end: x }];
      }
      case "destination_port_range": {
        const start = isObject(x) ? x.start : undefined;
        const end = isObject(x) ? x.end : undefined;
        if (typeof start !== "number" || typeof end !== "number") {
          this.errors.add(at, "must have numeric start and end");
          return [];
        }
        // Int32Range is half-open; an empty range matches nothing, as in Envoy.
        return normalizePorts([{ start: Math.max(0, start), end: Math.min(65535, end - 1) }]);
      }
      case "or_rules":
        return normalizePorts(
          list(isObject(x) ? x.rules : undefined).flatMap((p, i) => this.permission(p, `${at}.rules[${i}]`)),
        );
      case "and_rules": {
        const rules = list(isObject(x) ? x.rules : undefined);
        if (rules.length === 0) this.errors.add(`${at}.rules`, "must not be empty");
        return rules.reduce<PortRange[]>(
          (acc, p, i) => intersectPorts(acc, this.permission(p, `${at}.rules[${i}]`)),
          ALL_PORTS,
        );
      }
      case "not_rule":
        return complementPorts(this.permission(x, at));
      default:
        this.errors.add(at, "permission not supported by the Catena firewall (only destination ports)");
        return [];
    }
  }
}

function isAll(c: readonly Cidr[]): boolean {
  return c.some((x) => x.family === 4 && x.prefix === 0) && c.some((x) => x.family === 6 && x.prefix === 0);
}

function actionOf(v: unknown): "ALLOW" | "DENY" | "LOG" | undefined {
  if (v === undefined || v === "ALLOW" || v === 0) return "ALLOW";
  if (v === "DENY" || v === 1) return "DENY";
  if (v === "LOG" || v === 2) return "LOG";
  return undefined;
}

/**
 * Compiles one RBAC filter config. Envoy keeps policies in a map ordered by name, so the policy a
 * decision reports is the first matching one by name. Absent `rules` enforces nothing (allow all);
 * `shadow_rules` are not enforced and are not compiled.
 */
export function decodeRbacConfig(raw: unknown): Validated<RbacFirewall> {
  const d = new RbacDecoder();
  const allowAll: RbacFirewall = {
    policy: { defaultAction: "allow", rules: [] },
    address: "remote",
    logOnly: false,
  };
  if (!isObject(raw)) {
    d.errors.add("", "RBAC config must be an object");
    return d.errors.result(allowAll);
  }
  if (raw.matcher !== undefined && raw.matcher !== null)
    d.errors.add("matcher", "the matcher API is not supported");
  const rules = raw.rules;
  if (rules === undefined || rules === null) return d.errors.result(allowAll);
  if (!isObject(rules)) {
    d.errors.add("rules", "must be an object");
    return d.errors.result(allowAll);
  }
  const action = actionOf(rules.action);
  if (!action) d.errors.add("rules.action", "must be ALLOW, DENY or LOG");
  const policies = isObject(rules.policies) ? rules.policies : {};
  const ruleAction: FirewallAction = action === "DENY" ? "deny" : "allow";
  const compiled: FirewallRule[] = [];
  for (const name of Object.keys(policies).sort()) {
    const p = policies[name];
    const at = `rules.policies.${name}`;
    if (!isObject(p)) {
      d.errors.add(at, "must be an object");
      continue;
    }
    const perms = list(p.permissions);
    const princs = list(p.principals);
    if (perms.length === 0) d.errors.add(`${at}.permissions`, "must not be empty");
    if (princs.length === 0) d.errors.add(`${at}.principals`, "must not be empty");
    if (p.condition !== undefined && p.condition !== null)
      d.errors.add(`${at}.condition`, "CEL conditions are not supported");
    const ports = normalizePorts(perms.flatMap((x, i) => d.permission(x, `${at}.permissions[${i}]`)));
    const sources = princs.flatMap((x, i) => d.principal(x, `${at}.principals[${i}]`));
    const rule: FirewallRule = { id: name, action: ruleAction };
    if (!(ports.length === 1 && ports[0]?.start === 0 && ports[0]?.end === 65535)) rule.ports = ports;
    if (!isAll(sources)) rule.sources = sources;
    compiled.push(rule);
  }
  if (d.addresses.size > 1) {
    d.errors.add("rules.policies", "principals mix direct_remote_ip with remote_ip/source_ip; use one");
  }
  const address: RbacAddress = d.addresses.has("remote") || d.addresses.size === 0 ? "remote" : "direct";
  return d.errors.result({
    policy: { defaultAction: action === "ALLOW" ? "deny" : "allow", rules: compiled },
    address,
    logOnly: action === "LOG",
  });
}
