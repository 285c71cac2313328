// What the plugin reads from the network configuration and CNI_ARGS, validated before any side
// effect (every problem reported at once). Two roles (DESIGN.md "Contracts: CNI"):
//   IPAM:    {"type": "bridge", ..., "ipam": {"type": "catena-cni", "network": "edge", ...}}
//   chained: {"type": "catena-cni", "network": "edge", ..., "prevResult": {...}} after `bridge`
import { createHash } from "node:crypto";
import { PluginError, PluginErrorCode } from "./errors.js";
import type { CniResult, Route } from "./version.js";

export const PLUGIN_TYPE = "catena-cni";
export const DEFAULT_SERVER = "http://127.0.0.1:7070";

export interface PluginConfig {
  role: "ipam" | "chained";
  /** The CNI network's name (`name`), used for state keys. */
  cniNetwork: string;
  /** The Catena Network's name. */
  network: string;
  server: string;
  labels: Record<string, string>;
  /** IPAM role: routes handed back with the address. */
  routes: Route[];
  prevResult?: CniResult;
  runtimeConfig: Record<string, unknown>;
  /** GC: `cni.dev/valid-attachments`. */
  validAttachments: { containerId: string; ifname: string }[];
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function labelsAt(v: unknown, path: string, problems: string[]): Record<string, string> {
  if (v === undefined) return {};
  if (!isRecord(v)) {
    problems.push(`${path} must be an object of label keys to values`);
    return {};
  }
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(v)) {
    if (!LABEL_KEY.test(k)) problems.push(`${path}: ${JSON.stringify(k)} is not a label key`);
    else if (typeof value !== "string" || value.length > 63 || !LABEL_VALUE.test(value))
      problems.push(
        `${path}.${k} must be a label value (63 characters or fewer: letters, digits, '-', '_', '.')`,
      );
    else out[k] = value;
  }
  return out;
}

export function parsePluginConfig(config: Record<string, unknown>): PluginConfig {
  const problems: string[] = [];
  const chained = config.type === PLUGIN_TYPE;
  const ipamSection = config.ipam;
  const own: Record<string, unknown> = chained ? config : isRecord(ipamSection) ? ipamSection : {};
  const at = chained ? "" : "ipam.";
  if (!chained && own.type !== PLUGIN_TYPE) {
    problems.push(`neither "type" nor "ipam.type" is "${PLUGIN_TYPE}"`);
  }
  const network = own.network;
  if (typeof network !== "string" || !DNS_LABEL.test(network)) {
    problems.push(`${at}network must name a Catena Network (a DNS label), got ${JSON.stringify(network)}`);
  }
  const server = own.server ?? DEFAULT_SERVER;
  let serverUrl = DEFAULT_SERVER;
  if (typeof server !== "string") problems.push(`${at}server must be a URL`);
  else {
    try {
      const u = new URL(server);
      if (u.protocol !== "http:" && u.protocol !== "https:") problems.push(`${at}server must be http(s)`);
      serverUrl = server.replace(/\/+$/, "");
    } catch {
      problems.push(`${at}server ${JSON.stringify(server)} is not a URL`);
    }
  }
  const labels = labelsAt(own.labels, `${at}labels`, problems);
  const routes: Route[] = [];
  if (own.routes !== undefined) {
    if (!Array.isArray(own.routes)) problems.push(`${at}routes must be a list`);
    else
      own.routes.forEach((r: unknown, i: number) => {
        if (!isRecord(r) || typeof r.dst !== "string" || (r.gw !== undefined && typeof r.gw !== "string"))
          problems.push(`${at}routes[${i}] must be {dst, gw?}`);
        else routes.push({ dst: r.dst, ...(typeof r.gw === "string" && { gw: r.gw }) });
      });
  }
  const name = config.name;
  if (typeof name !== "string" || name === "") problems.push(`name must be the network configuration's name`);
  let prevResult: CniResult | undefined;
  if (config.prevResult !== undefined) {
    if (!isRecord(config.prevResult)) problems.push("prevResult must be an object");
    else prevResult = config.prevResult as CniResult;
  }
  const runtimeConfig = isRecord(config.runtimeConfig) ? config.runtimeConfig : {};
  const validAttachments: PluginConfig["validAttachments"] = [];
  const valid = config["cni.dev/valid-attachments"];
  if (valid !== undefined) {
    if (!Array.isArray(valid)) problems.push("cni.dev/valid-attachments must be a list");
    else
      valid.forEach((v: unknown, i: number) => {
        if (!isRecord(v) || typeof v.containerID !== "string" || typeof v.ifname !== "string")
          problems.push(`cni.dev/valid-attachments[${i}] must be {containerID, ifname}`);
        else validAttachments.push({ containerId: v.containerID, ifname: v.ifname });
      });
  }
  if (problems.length > 0) {
    throw new PluginError(
      PluginErrorCode.InvalidConfig,
      "invalid network configuration",
      problems.join("; "),
    );
  }
  return {
    role: chained ? "chained" : "ipam",
    cniNetwork: name as string,
    network: network as string,
    server: serverUrl,
    labels,
    routes,
    ...(prevResult && { prevResult }),
    runtimeConfig,
    validAttachments,
  };
}

/** CNI_ARGS, `K=V;K2=V2`; a pair without `=` is a bad environment. */
export function parseCniArgs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  if (text === "") return out;
  for (const pair of text.split(";")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0)
      throw new PluginError(
        PluginErrorCode.InvalidEnvironment,
        `CNI_ARGS: invalid pair ${JSON.stringify(pair)}`,
      );
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

/**
 * Labels from CNI_ARGS `CATENA_LABELS=app:web,tier:front` (not `=`: the reference plugins parse
 * CNI_ARGS too and refuse a second `=` in a pair).
 */
export function labelsFromArgs(args: Map<string, string>): Record<string, string> {
  const raw = args.get("CATENA_LABELS");
  if (!raw) return {};
  const problems: string[] = [];
  const pairs: Record<string, string> = {};
  for (const item of raw.split(",")) {
    const eq = item.lastIndexOf(":");
    if (eq <= 0) problems.push(`CATENA_LABELS: ${JSON.stringify(item)} is not key:value`);
    else pairs[item.slice(0, eq)] = item.slice(eq + 1);
  }
  const labels = labelsAt(pairs, "CATENA_LABELS", problems);
  if (problems.length > 0) throw new PluginError(PluginErrorCode.InvalidEnvironment, problems.join("; "));
  return labels;
}

function dnsLabel(text: string): string {
  const cleaned = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "");
  if (cleaned.length <= 63 && cleaned !== "") return cleaned;
  // Too long (or nothing left): keep a readable head and make it unique with a hash of the whole.
  const hash = createHash("sha256").update(text).digest("hex").slice(0, 8);
  return `${cleaned.slice(0, 54).replace(/-+$/, "")}-${hash}`.replace(/^-/, "w");
}

/** DESIGN.md: `<namespace>-<pod>` from CNI_ARGS when present, else `ctr-` and 12 characters of the id. */
export function workloadName(containerId: string, args: Map<string, string>): string {
  const ns = args.get("K8S_POD_NAMESPACE");
  const pod = args.get("K8S_POD_NAME");
  if (ns && pod) return dnsLabel(`${ns}-${pod}`);
  return dnsLabel(`ctr-${containerId.slice(0, 12)}`);
}
