// The shape every Catena object shares, independent of its kind's spec.
export const API_VERSION = "catena.dev/v1alpha1";

export const KINDS = [
  "Network",
  "Workload",
  "Service",
  "ServiceFunction",
  "ServiceChain",
  "NetworkPolicy",
] as const;
export type Kind = (typeof KINDS)[number];

/** Plural, lower-case names as they appear in API paths (`/v1/servicechains`). */
export const KIND_PLURALS: Readonly<Record<Kind, string>> = {
  Network: "networks",
  Workload: "workloads",
  Service: "services",
  ServiceFunction: "servicefunctions",
  ServiceChain: "servicechains",
  NetworkPolicy: "networkpolicies",
};

/** Short names, as kubectl has them (`svc`, `sc`). */
const KIND_SHORT_NAMES: Readonly<Record<Kind, string>> = {
  Network: "net",
  Workload: "wl",
  Service: "svc",
  ServiceFunction: "sf",
  ServiceChain: "sc",
  NetworkPolicy: "netpol",
};

const KIND_BY_ALIAS = new Map<string, Kind>();
for (const kind of KINDS) {
  KIND_BY_ALIAS.set(kind.toLowerCase(), kind);
  KIND_BY_ALIAS.set(KIND_PLURALS[kind], kind);
  KIND_BY_ALIAS.set(KIND_SHORT_NAMES[kind], kind);
}

/** Resolves a kind as a user may type it: any case, singular, plural or short (`ServiceChains`, `sc`). */
export function resolveKind(text: string): Kind | undefined {
  return KIND_BY_ALIAS.get(text.toLowerCase());
}

export type Labels = Record<string, string>;

export interface ObjectMeta {
  name: string;
  labels?: Labels;
  annotations?: Record<string, string>;
  /** Server-written: the store revision of the last write; echoed back for optimistic concurrency. */
  resourceVersion?: string;
  /** Server-written: bumps when the spec (not status, not labels) changes. */
  generation?: number;
  uid?: string;
  creationTimestamp?: string;
}

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export interface ResourceStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  [field: string]: unknown;
}

export interface Resource<S = Record<string, unknown>> {
  apiVersion: string;
  kind: Kind;
  metadata: ObjectMeta;
  spec: S;
  status?: ResourceStatus;
}

/** A resource as the store holds it: every server-written field present. */
export interface StoredResource<S = Record<string, unknown>> extends Resource<S> {
  metadata: ObjectMeta & {
    resourceVersion: string;
    generation: number;
    uid: string;
    creationTimestamp: string;
  };
}

export function objectKey(kind: Kind, name: string): string {
  return `${kind}/${name}`;
}

/** One problem with one field; `path` is `spec.hops[1].function` style. */
export interface FieldError {
  path: string;
  message: string;
}

/** Decoding and validation never throw: they return every problem at once. */
export type Validated<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };
