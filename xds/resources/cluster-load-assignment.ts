import { encodeResource, type Resource } from "../resource.js";
import { TYPE_URL } from "../type-urls.js";
import { type Json, jsonToStruct } from "../wire/struct.js";
import { socketAddress } from "./typed-config.js";

export type HealthStatus = "UNKNOWN" | "HEALTHY" | "UNHEALTHY" | "DRAINING" | "TIMEOUT" | "DEGRADED";

export interface EndpointInput {
  address: string;
  port: number;
  weight?: number;
  health?: HealthStatus;
  hostname?: string;
  /** filter_metadata entries, e.g. {"catena": {"portName": "http"}}. */
  metadata?: Record<string, { [key: string]: Json }>;
  /** Overrides the assignment's locality for this endpoint. */
  locality?: LocalityInput;
}

export interface LocalityInput {
  region?: string;
  zone?: string;
  subZone?: string;
}

export interface ClusterLoadAssignmentInput {
  clusterName: string;
  endpoints: EndpointInput[];
  /** Locality of endpoints that name none. */
  locality?: LocalityInput;
}

function endpointObject(e: EndpointInput): Record<string, unknown> {
  const out: Record<string, unknown> = {
    endpoint: { address: socketAddress(e.address, e.port), ...(e.hostname ? { hostname: e.hostname } : {}) },
    health_status: e.health ?? "HEALTHY",
  };
  if (e.weight !== undefined) out.load_balancing_weight = { value: e.weight };
  if (e.metadata) {
    const fm: Record<string, unknown> = {};
    for (const [ns, v] of Object.entries(e.metadata)) fm[ns] = jsonToStruct(v);
    out.metadata = { filter_metadata: fm };
  }
  return out;
}

/**
 * Endpoints are grouped by locality; a locality's weight is the sum of its endpoints' weights
 * (gRPC's xds_wrr_locality picks localities by that weight, then round-robins within one).
 */
export function clusterLoadAssignment(input: ClusterLoadAssignmentInput): Resource {
  const groups = new Map<string, { locality: LocalityInput; endpoints: EndpointInput[]; weight: number }>();
  for (const e of input.endpoints) {
    const loc = e.locality ?? input.locality ?? {};
    const key = `${loc.region ?? ""}\u0000${loc.zone ?? ""}\u0000${loc.subZone ?? ""}`;
    let group = groups.get(key);
    if (!group) {
      group = { locality: loc, endpoints: [], weight: 0 };
      groups.set(key, group);
    }
    group.endpoints.push(e);
    group.weight += e.weight ?? 1;
  }
  const endpoints = [...groups.values()].map((g) => ({
    locality: {
      region: g.locality.region ?? "",
      zone: g.locality.zone ?? "",
      sub_zone: g.locality.subZone ?? "",
    },
    // gRPC ignores localities without a weight.
    load_balancing_weight: { value: g.weight },
    lb_endpoints: g.endpoints.map(endpointObject),
  }));
  return encodeResource(TYPE_URL.endpoint, input.clusterName, { cluster_name: input.clusterName, endpoints });
}
