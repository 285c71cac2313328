// Checks of one document that its schema cannot express: addresses parse, ranges are ordered,
// names are unique, sub-ranges lie inside their parent. Other objects are not consulted here
// (that is cross-checks.ts).
import {
  asArray,
  asRecord,
  checkCidr,
  checkIp,
  checkLabelKeys,
  checkPortRange,
  checkSubnets,
  checkUnique,
  checkUniquePorts,
  type Path,
  Problems,
} from "./field-checks.js";
import { checkHopConfig } from "./hop-configs.js";
import type { FieldError, Kind } from "./resource.js";

type SpecCheck = (problems: Problems, spec: Record<string, unknown>, path: Path) => void;

function checkPeers(problems: Problems, path: Path, peers: unknown): void {
  asArray(peers).forEach((peer, i) => {
    const p = asRecord(peer);
    checkLabelKeys(problems, [...path, i, "selector"], p?.selector);
    const block = asRecord(p?.ipBlock);
    if (!block) return;
    const cidr = checkCidr(problems, [...path, i, "ipBlock", "cidr"], block.cidr);
    checkSubnets(problems, [...path, i, "ipBlock", "except"], block.except, cidr);
  });
}

function checkPortRanges(problems: Problems, path: Path, ports: unknown): void {
  asArray(ports).forEach((port, i) => {
    checkPortRange(problems, [...path, i], port);
  });
}

const SPEC_CHECKS: Record<Kind, SpecCheck> = {
  Network(problems, spec, path) {
    const cidr = checkCidr(problems, [...path, "cidr"], spec.cidr);
    checkSubnets(problems, [...path, "exclude"], spec.exclude, cidr);
  },

  Workload(problems, spec, path) {
    checkUnique(problems, [...path, "networks"], spec.networks, "name", "network");
    asArray(spec.networks).forEach((n, i) => {
      checkIp(problems, [...path, "networks", i, "address"], asRecord(n)?.address);
    });
    checkUnique(problems, [...path, "ports"], spec.ports, "name", "port name");
    checkUniquePorts(problems, [...path, "ports"], spec.ports);
  },

  Service(problems, spec, path) {
    checkUnique(problems, [...path, "ports"], spec.ports, "name", "port name");
    checkUniquePorts(problems, [...path, "ports"], spec.ports);
    checkLabelKeys(problems, [...path, "selector"], spec.selector);
    asArray(spec.endpoints).forEach((e, i) => {
      const endpoint = asRecord(e);
      checkIp(problems, [...path, "endpoints", i, "address"], endpoint?.address);
      checkLabelKeys(problems, [...path, "endpoints", i, "labels"], endpoint?.labels);
    });
  },

  ServiceFunction(problems, spec, path) {
    // The type is known here, so built-in defaults are checked now; hops are checked in context.
    if (typeof spec.type === "string" && asRecord(spec.config)) {
      problems.list.push(...checkHopConfig(spec.type, spec.config, [...path, "config"], "defaults"));
    }
  },

  ServiceChain(problems, spec, path) {
    checkIp(problems, [...path, "ingress", "address"], asRecord(spec.ingress)?.address);
  },

  NetworkPolicy(problems, spec, path) {
    checkLabelKeys(problems, [...path, "subject", "selector"], asRecord(spec.subject)?.selector);
    asArray(spec.ingress).forEach((rule, i) => {
      checkPeers(problems, [...path, "ingress", i, "from"], asRecord(rule)?.from);
      checkPortRanges(problems, [...path, "ingress", i, "ports"], asRecord(rule)?.ports);
    });
    asArray(spec.egress).forEach((rule, i) => {
      checkPeers(problems, [...path, "egress", i, "to"], asRecord(rule)?.to);
      checkPortRanges(problems, [...path, "egress", i, "ports"], asRecord(rule)?.ports);
    });
    asArray(spec.deny).forEach((rule, i) => {
      checkPeers(problems, [...path, "deny", i, "from"], asRecord(rule)?.from);
      checkPeers(problems, [...path, "deny", i, "to"], asRecord(rule)?.to);
      checkPortRanges(problems, [...path, "deny", i, "ports"], asRecord(rule)?.ports);
    });
  },
};

/** Semantic problems of a kind's spec; values of the wrong type are left to the schema. */
export function checkSpec(kind: Kind, spec: unknown, path: Path = ["spec"]): FieldError[] {
  const record = asRecord(spec);
  if (!record) return [];
  const problems = new Problems();
  SPEC_CHECKS[kind](problems, record, path);
  return problems.list;
}
