// How the CLI prints objects: tables for people, YAML or JSON for scripts.
import Table from "cli-table3";
import { stringify } from "yaml";
import type { Kind, StoredResource } from "../control/model/resource.js";
import { findCondition } from "../control/status/conditions.js";

export const OUTPUT_FORMATS = ["table", "yaml", "json"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

type Column = [header: string, value: (o: StoredResource) => string];

const spec = (o: StoredResource) => o.spec as Record<string, unknown>;
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Per kind, the columns that tell objects apart at a glance (after NAME). */
const COLUMNS: Record<Kind, Column[]> = {
  Network: [
    ["CIDR", (o) => String(spec(o).cidr ?? "")],
    ["ISOLATION", (o) => String(spec(o).isolation ?? "open")],
  ],
  Workload: [
    ["KIND", (o) => String(spec(o).kind ?? "")],
    [
      "NETWORKS",
      (o) =>
        list(spec(o).networks)
          .map((n) => (n as { name: string }).name)
          .join(","),
    ],
  ],
  Service: [
    ["NETWORK", (o) => String(spec(o).network ?? "")],
    [
      "PORTS",
      (o) =>
        list(spec(o).ports)
          .map((p) => `${(p as { name: string }).name}:${(p as { port: number }).port}`)
          .join(","),
    ],
    ["ENDPOINTS", (o) => String(list(spec(o).endpoints).length)],
  ],
  ServiceFunction: [
    ["TYPE", (o) => String(spec(o).type ?? "")],
    ["REPLICAS", (o) => String(spec(o).replicas ?? 1)],
  ],
  ServiceChain: [
    ["SERVICE", (o) => String(spec(o).service ?? "")],
    [
      "HOPS",
      (o) =>
        list(spec(o).hops)
          .map((h) => (h as { function: string }).function)
          .join(" > "),
    ],
    ["PLACEMENT", (o) => String(spec(o).placement ?? "separate")],
  ],
  NetworkPolicy: [["POLICY TYPES", (o) => list(spec(o).policyTypes).join(",") || "Ingress"]],
};

export function renderObjects(kind: Kind, objects: readonly StoredResource[], format: OutputFormat): string {
  switch (format) {
    case "json":
      return JSON.stringify({ items: objects }, null, 2);
    case "yaml":
      return stringify({ items: objects });
    case "table":
      return renderTable(kind, objects);
  }
}

export function renderObject(object: StoredResource, format: OutputFormat): string {
  switch (format) {
    case "json":
      return JSON.stringify(object, null, 2);
    case "yaml":
      return stringify(object);
    case "table":
      return renderTable(object.kind, [object]);
  }
}

function renderTable(kind: Kind, objects: readonly StoredResource[]): string {
  if (objects.length === 0) return `No ${kind} objects.`;
  const columns = COLUMNS[kind];
  const table = new Table({
    head: ["NAME", ...columns.map(([h]) => h), "READY", "AGE"],
    chars: BARE,
    style: { head: [], border: [], "padding-left": 0, "padding-right": 3 },
  });
  for (const o of objects) {
    const ready = findCondition(o.status?.conditions, "Ready");
    table.push([
      o.metadata.name,
      ...columns.map(([, value]) => value(o)),
      ready ? (ready.status === "True" ? "True" : `${ready.status} (${ready.reason})`) : "Unknown",
      age(o.metadata.creationTimestamp),
    ]);
  }
  return table.toString();
}

export function age(since: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** kubectl-like borderless table. */
export const BARE = {
  top: "",
  "top-mid": "",
  "top-left": "",
  "top-right": "",
  bottom: "",
  "bottom-mid": "",
  "bottom-left": "",
  "bottom-right": "",
  left: "",
  "left-mid": "",
  mid: "",
  "mid-mid": "",
  right: "",
  "right-mid": "",
  middle: "",
};
