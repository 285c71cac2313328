// The operator's firewall hop config, as a manifest carries it:
//   {defaultAction: allow|deny, allow?: [{name?, from?: [{cidr, except?}], ports?: [8080, {port, endPort}]}], deny?: [...]}
// Decoding collects every problem with its field path and never throws.
import { isObject, type Json } from "../sdk/proto-json.js";
import { ErrorList, type Validated } from "../sdk/validated.js";
import { type Cidr, parseCidr, subtractCidrs } from "./cidr.js";
import type { FirewallAction, FirewallPolicy, FirewallRule, PortRange } from "./policy.js";

function checkKeys(o: Json, allowed: readonly string[], path: string, errors: ErrorList): void {
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) errors.add(path ? `${path}.${k}` : k, "unknown field");
}

function isPort(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 65535;
}

function decodeCidrText(v: unknown, path: string, errors: ErrorList): Cidr | undefined {
  const c = typeof v === "string" ? parseCidr(v) : undefined;
  if (!c) errors.add(path, `${JSON.stringify(v)} is not a CIDR block`);
  return c;
}

/** One `from` entry: {cidr, except?} or NetworkPolicy's {ipBlock: {cidr, except?}}. */
function decodePeer(v: unknown, path: string, errors: ErrorList): Cidr[] {
  if (!isObject(v)) {
    errors.add(path, "must be an object with cidr");
    return [];
  }
  let block = v;
  let blockPath = path;
  if ("ipBlock" in v) {
    checkKeys(v, ["ipBlock"], path, errors);
    if (!isObject(v.ipBlock)) {
      errors.add(`${path}.ipBlock`, "must be an object with cidr");
      return [];
    }
    block = v.ipBlock;
    blockPath = `${path}.ipBlock`;
  }
  checkKeys(block, ["cidr", "except"], blockPath, errors);
  const base = decodeCidrText(block.cidr, `${blockPath}.cidr`, errors);
  const except: Cidr[] = [];
  if (block.except !== undefined) {
    if (!Array.isArray(block.except)) errors.add(`${blockPath}.except`, "must be a list of CIDR blocks");
    else {
      block.except.forEach((e, i) => {
        const c = decodeCidrText(e, `${blockPath}.except[${i}]`, errors);
        if (c && base && (c.family !== base.family || c.prefix < base.prefix)) {
          errors.add(`${blockPath}.except[${i}]`, "must lie inside cidr");
        } else if (c) except.push(c);
      });
    }
  }
  return base ? subtractCidrs(base, except) : [];
}

function decodePorts(v: unknown, path: string, errors: ErrorList): PortRange[] {
  if (!Array.isArray(v)) {
    errors.add(path, "must be a list of ports or {port, endPort}");
    return [];
  }
  const out: PortRange[] = [];
  v.forEach((p, i) => {
    const at = `${path}[${i}]`;
    if (typeof p === "number") {
      if (isPort(p)) out.push({ start: p, end: p });
      else errors.add(at, "must be a port number 1-65535");
      return;
    }
    if (!isObject(p)) {
      errors.add(at, "must be a port number or {port, endPort}");
      return;
    }
    checkKeys(p, ["port", "endPort"], at, errors);
    if (!isPort(p.port)) {
      errors.add(`${at}.port`, "must be a port number 1-65535");
      return;
    }
    if (p.endPort === undefined) out.push({ start: p.port, end: p.port });
    else if (!isPort(p.endPort)) errors.add(`${at}.endPort`, "must be a port number 1-65535");
    else if (p.endPort < p.port) errors.add(`${at}.endPort`, "must not be below port");
    else out.push({ start: p.port, end: p.endPort });
  });
  return out;
}

function decodeRules(
  v: unknown,
  action: FirewallAction,
  errors: ErrorList,
  ids: Set<string>,
): FirewallRule[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    errors.add(action, "must be a list of rules");
    return [];
  }
  return v.flatMap((r, i): FirewallRule[] => {
    const at = `${action}[${i}]`;
    if (!isObject(r)) {
      errors.add(at, "must be an object");
      return [];
    }
    checkKeys(r, ["name", "from", "ports"], at, errors);
    if (r.name !== undefined && (typeof r.name !== "string" || r.name === "")) {
      errors.add(`${at}.name`, "must be a non-empty string");
    }
    const rule: FirewallRule = { id: typeof r.name === "string" && r.name !== "" ? r.name : at, action };
    if (ids.has(rule.id)) errors.add(`${at}.name`, `rule name ${JSON.stringify(rule.id)} is used twice`);
    ids.add(rule.id);
    if (r.from !== undefined) {
      if (!Array.isArray(r.from)) errors.add(`${at}.from`, "must be a list of {cidr}");
      else rule.sources = r.from.flatMap((p, j) => decodePeer(p, `${at}.from[${j}]`, errors));
    }
    if (r.ports !== undefined) rule.ports = decodePorts(r.ports, `${at}.ports`, errors);
    return [rule];
  });
}

/**
 * Decodes the operator vocabulary. Without defaultAction, a config with allow rules defaults to deny
 * (listing what is allowed implies the rest is not) and one without defaults to allow.
 */
export function decodeFirewallConfig(raw: unknown): Validated<FirewallPolicy> {
  const errors = new ErrorList();
  if (!isObject(raw)) {
    errors.add("", "firewall config must be an object");
    return errors.result({ defaultAction: "deny", rules: [] });
  }
  checkKeys(raw, ["defaultAction", "allow", "deny"], "", errors);
  const ids = new Set<string>();
  const allow = decodeRules(raw.allow, "allow", errors, ids);
  const deny = decodeRules(raw.deny, "deny", errors, ids);
  let defaultAction: FirewallAction = allow.length > 0 ? "deny" : "allow";
  if (raw.defaultAction !== undefined) {
    if (raw.defaultAction === "allow" || raw.defaultAction === "deny") defaultAction = raw.defaultAction;
    else errors.add("defaultAction", "must be allow or deny");
  }
  return errors.result({ defaultAction, rules: [...deny, ...allow] });
}
