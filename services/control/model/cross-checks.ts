// Checks across objects: references resolve, addresses fit their networks, networks do not
// overlap, and nothing is deleted while others still use it. The objects of a request override
// and extend the store's state, so one apply can create a chain and the functions it names.
import type { ErrorDetail } from "../errors.js";
import { asArray, asRecord, type Path } from "./field-checks.js";
import { formatFieldPath } from "./field-path.js";
import { checkHopConfig, effectiveHopConfig } from "./hop-configs.js";
import {
  type Cidr,
  cidrContains,
  cidrsOverlap,
  formatCidr,
  formatIp,
  type IpAddress,
  parseCidr,
  parseIp,
} from "./ip.js";
import { type Kind, objectKey, type Resource } from "./resource.js";

export type ResourceLookup = (kind: Kind, name: string) => Resource | undefined;
export type ResourceList = (kind: Kind) => readonly Resource[];

export interface BatchEntry {
  /** The document's index in the request. */
  index: number;
  resource: Resource;
}

export interface DeleteEntry {
  index: number;
  kind: Kind;
  name: string;
}

/** A name one object uses to refer to another, and where. */
export interface Reference {
  kind: Kind;
  name: string;
  path: string;
}

/** Lookup and list over an array of objects, e.g. a snapshot of the store. */
export function indexResources(resources: readonly Resource[]): { get: ResourceLookup; list: ResourceList } {
  const byKey = new Map(resources.map((r) => [objectKey(r.kind, r.metadata.name), r]));
  return {
    get: (kind, name) => byKey.get(objectKey(kind, name)),
    list: (kind) => resources.filter((r) => r.kind === kind),
  };
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function specOf(resource: Resource | undefined): Record<string, unknown> {
  return asRecord(resource?.spec) ?? {};
}

/**
 * Every reference an object makes. A vpn hop's `peer` counts only when the hop's function is of
 * type vpn, which `get` tells (a third-party config may have a `peer` of its own).
 */
export function referencesOf(resource: Resource, get: ResourceLookup): Reference[] {
  const spec = specOf(resource);
  const refs: Reference[] = [];
  const add = (kind: Kind, name: unknown, path: Path) => {
    if (typeof name === "string") refs.push({ kind, name, path: formatFieldPath(path) });
  };
  switch (resource.kind) {
    case "Network":
      break;
    case "Workload":
      asArray(spec.networks).forEach((n, i) => {
        add("Network", asRecord(n)?.name, ["spec", "networks", i, "name"]);
      });
      break;
    case "Service":
      add("Network", spec.network, ["spec", "network"]);
      break;
    case "ServiceFunction":
      if (spec.type === "vpn")
        add("ServiceFunction", asRecord(spec.config)?.peer, ["spec", "config", "peer"]);
      break;
    case "ServiceChain":
      add("Service", spec.service, ["spec", "service"]);
      asArray(spec.hops).forEach((h, i) => {
        const hop = asRecord(h);
        const name = str(hop?.function);
        add("ServiceFunction", name, ["spec", "hops", i, "function"]);
        const fn = name === undefined ? undefined : get("ServiceFunction", name);
        if (specOf(fn).type === "vpn") {
          const peer = effectiveHopConfig(specOf(fn).config, hop?.config).peer;
          add("ServiceFunction", peer, ["spec", "hops", i, "config", "peer"]);
        }
      });
      break;
    case "NetworkPolicy":
      for (const [section, sides] of [
        ["ingress", ["from"]],
        ["egress", ["to"]],
        ["deny", ["from", "to"]],
      ] as const) {
        asArray(spec[section]).forEach((rule, i) => {
          for (const side of sides) {
            asArray(asRecord(rule)?.[side]).forEach((peer, j) => {
              add("Network", asRecord(peer)?.network, ["spec", section, i, side, j, "network"]);
            });
          }
        });
      }
      break;
  }
  return refs;
}

interface Claim {
  network: string;
  address: IpAddress;
  owner: Resource;
  path: Path;
}

/**
 * Checks a request's objects against each other and the store. `lookup` sees the store;
 * `list` (optional) enumerates it, which the checks across all objects of a kind need (network
 * overlap, address conflicts, one chain per service); without it they cover the request only.
 */
export function checkReferences(
  batch: readonly BatchEntry[],
  lookup: ResourceLookup,
  list?: ResourceList,
): ErrorDetail[] {
  const errors: ErrorDetail[] = [];
  const inBatch = new Map<string, BatchEntry>();
  const report = (entry: BatchEntry, path: Path, message: string) => {
    const { kind, metadata } = entry.resource;
    errors.push({ document: entry.index, kind, name: metadata.name, path: formatFieldPath(path), message });
  };

  for (const entry of batch) {
    const key = objectKey(entry.resource.kind, entry.resource.metadata.name);
    if (inBatch.has(key))
      report(entry, ["metadata", "name"], `${key} is also defined by an earlier document`);
    else inBatch.set(key, entry);
  }
  const get: ResourceLookup = (kind, name) =>
    inBatch.get(objectKey(kind, name))?.resource ?? lookup(kind, name);
  // Every object of a kind, store and request merged; computed once per kind and call.
  const allByKind = new Map<Kind, Resource[]>();
  const all = (kind: Kind): Resource[] => {
    let found = allByKind.get(kind);
    if (!found) {
      const byName = new Map<string, Resource>();
      for (const r of list?.(kind) ?? []) byName.set(r.metadata.name, r);
      for (const { resource } of inBatch.values())
        if (resource.kind === kind) byName.set(resource.metadata.name, resource);
      found = [...byName.values()];
      allByKind.set(kind, found);
    }
    return found;
  };
  // Checks across pairs report on the request's object, and once per pair within the request.
  const position = new Map(batch.map((e, i) => [e, i]));
  const order = (r: Resource) => {
    const e = inBatch.get(objectKey(r.kind, r.metadata.name));
    return e && e.resource === r ? (position.get(e) ?? -1) : -1;
  };
  const reportsAgainst = (entry: BatchEntry, other: Resource) => order(other) < (position.get(entry) ?? -1);

  // Parsed once per call: the overlap check compares each new Network with all of them.
  let parsedNetworks: { network: Resource; cidr: Cidr; order: number }[] | undefined;
  const networkCidrs = () => {
    parsedNetworks ??= all("Network").flatMap((network) => {
      const parsed = parseCidr(String(specOf(network).cidr));
      return parsed.ok ? [{ network, cidr: parsed.value, order: order(network) }] : [];
    });
    return parsedNetworks;
  };

  const networkCidr = (name: unknown): { network: Resource; cidr: Cidr | undefined } | undefined => {
    const network = typeof name === "string" ? get("Network", name) : undefined;
    if (!network) return undefined;
    const parsed = parseCidr(String(specOf(network).cidr));
    return { network, cidr: parsed.ok ? parsed.value : undefined };
  };

  /** Why an address cannot be used in a network, or undefined when it can. */
  const addressProblem = (address: IpAddress, networkName: string): string | undefined => {
    const found = networkCidr(networkName);
    if (!found?.cidr) return undefined;
    const { cidr } = found;
    const ip = formatIp(address);
    if (!cidrContains(cidr, address)) return `${ip} is not in Network "${networkName}" (${formatCidr(cidr)})`;
    for (const text of asArray(specOf(found.network).exclude)) {
      const excluded = parseCidr(String(text));
      if (excluded.ok && cidrContains(excluded.value, address)) {
        return `${ip} is in a range Network "${networkName}" excludes (${formatCidr(excluded.value)})`;
      }
    }
    if (cidr.family === 4 && cidr.prefix <= 30) {
      if (address.value === cidr.first) return `${ip} is the network address of Network "${networkName}"`;
      if (address.value === cidr.last) return `${ip} is the broadcast address of Network "${networkName}"`;
    }
    return undefined;
  };

  // Static addresses claimed in each network: workloads' and chain ingresses'.
  const claims: Claim[] = [];
  for (const w of all("Workload")) {
    asArray(specOf(w).networks).forEach((n, i) => {
      const network = str(asRecord(n)?.name);
      const address = parseIp(String(asRecord(n)?.address));
      if (network && address)
        claims.push({ network, address, owner: w, path: ["spec", "networks", i, "address"] });
    });
  }
  for (const c of all("ServiceChain")) {
    const service = str(specOf(c).service);
    const network = str(specOf(service === undefined ? undefined : get("Service", service)).network);
    const address = parseIp(String(asRecord(specOf(c).ingress)?.address));
    if (network && address) claims.push({ network, address, owner: c, path: ["spec", "ingress", "address"] });
  }
  const checkClaims = (entry: BatchEntry) => {
    for (const claim of claims.filter((c) => c.owner === entry.resource)) {
      const problem = addressProblem(claim.address, claim.network);
      if (problem) {
        report(entry, claim.path, problem);
        continue;
      }
      const rival = claims.find(
        (c) =>
          c.owner !== entry.resource &&
          c.network === claim.network &&
          c.address.value === claim.address.value &&
          c.address.family === claim.address.family &&
          reportsAgainst(entry, c.owner),
      );
      if (rival) {
        report(
          entry,
          claim.path,
          `${formatIp(claim.address)} is already used by ${rival.owner.kind}/${rival.owner.metadata.name}`,
        );
      }
    }
  };

  for (const entry of inBatch.values()) {
    const { resource } = entry;
    const spec = specOf(resource);

    for (const ref of referencesOf(resource, get)) {
      const target = get(ref.kind, ref.name);
      const { path } = ref;
      if (!target) {
        errors.push({
          document: entry.index,
          kind: resource.kind,
          name: resource.metadata.name,
          path,
          message: `${ref.kind} "${ref.name}" does not exist`,
        });
      } else if (ref.path.endsWith(".peer")) {
        // A tunnel ends at another vpn function.
        const type = specOf(target).type;
        const self = resource.kind === "ServiceFunction" ? resource.metadata.name : undefined;
        const message =
          type !== "vpn"
            ? `ServiceFunction "${ref.name}" has type ${String(type)}, not vpn`
            : ref.name === self
              ? "must name another vpn ServiceFunction, not this one"
              : undefined;
        if (message) {
          errors.push({
            document: entry.index,
            kind: resource.kind,
            name: resource.metadata.name,
            path,
            message,
          });
        }
      }
    }

    switch (resource.kind) {
      case "Network": {
        const parsed = parseCidr(String(spec.cidr));
        if (!parsed.ok) break;
        const mine = position.get(entry) ?? -1;
        for (const { network: other, cidr: theirs, order: theirOrder } of networkCidrs()) {
          if (theirOrder >= mine || other.metadata.name === resource.metadata.name) continue;
          if (cidrsOverlap(parsed.value, theirs)) {
            report(
              entry,
              ["spec", "cidr"],
              `${formatCidr(parsed.value)} overlaps Network "${other.metadata.name}" (${formatCidr(theirs)})`,
            );
          }
        }
        // A changed CIDR must still hold the static addresses of objects this request leaves alone.
        for (const claim of claims) {
          if (claim.network !== resource.metadata.name || order(claim.owner) >= 0) continue;
          const problem = addressProblem(claim.address, claim.network);
          if (problem) {
            report(entry, ["spec", "cidr"], `${claim.owner.kind}/${claim.owner.metadata.name}: ${problem}`);
          }
        }
        break;
      }
      case "Workload":
        checkClaims(entry);
        break;
      case "ServiceChain": {
        checkClaims(entry);
        const service = str(spec.service);
        for (const other of all("ServiceChain")) {
          if (other.metadata.name === resource.metadata.name || !reportsAgainst(entry, other)) continue;
          if (service !== undefined && specOf(other).service === service) {
            report(
              entry,
              ["spec", "service"],
              `Service "${service}" is already fronted by ServiceChain/${other.metadata.name}`,
            );
          }
        }
        asArray(spec.hops).forEach((h, i) => {
          const hop = asRecord(h);
          const name = str(hop?.function);
          const fn = name === undefined ? undefined : get("ServiceFunction", name);
          const type = str(specOf(fn).type);
          if (!fn || type === undefined) return;
          const config = effectiveHopConfig(specOf(fn).config, hop?.config);
          for (const e of checkHopConfig(type, config, ["spec", "hops", i, "config"], "complete")) {
            errors.push({ document: entry.index, kind: resource.kind, name: resource.metadata.name, ...e });
          }
        });
        break;
      }
      default:
        break;
    }
  }
  return errors;
}

/**
 * Refuses to delete objects that others still use. `remaining` is every object that exists after
 * the request (the store minus the deletions); users deleted in the same request do not count.
 */
export function checkDeletes(deletes: readonly DeleteEntry[], remaining: readonly Resource[]): ErrorDetail[] {
  const deleting = new Set(deletes.map((d) => objectKey(d.kind, d.name)));
  const left = remaining.filter((r) => !deleting.has(objectKey(r.kind, r.metadata.name)));
  const { get } = indexResources(left);
  const usedBy = new Map<string, Set<string>>();
  for (const r of left) {
    for (const ref of referencesOf(r, get)) {
      const key = objectKey(ref.kind, ref.name);
      if (!usedBy.has(key)) usedBy.set(key, new Set());
      usedBy.get(key)!.add(objectKey(r.kind, r.metadata.name));
    }
  }
  const errors: ErrorDetail[] = [];
  for (const d of deletes) {
    const users = usedBy.get(objectKey(d.kind, d.name));
    if (!users || users.size === 0) continue;
    errors.push({
      document: d.index,
      kind: d.kind,
      name: d.name,
      path: "",
      message: `${d.kind} "${d.name}" is used by ${[...users].sort().join(", ")}`,
    });
  }
  return errors;
}
