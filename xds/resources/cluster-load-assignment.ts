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
}

export interface LocalityInput {
  region?: string;
  zone?: string;
  subZone?: string;
}

export interface ClusterLoadAssignmentInput {
  clusterName: string;
  endpoints: EndpointInput[];
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

export function clusterLoadAssignment(input: ClusterLoadAssignmentInput): Resource {
  const loc = input.locality ?? {};
  const endpoints =
    input.endpoints.length === 0
      ? []
      : [
          {
            locality: { region: loc.region ?? "", zone: loc.zone ?? "", sub_zone: loc.subZone ?? "" },
            // gRPC ignores localities without a weight.
            load_balancing_weight: { value: 1 },
            lb_endpoints: input.endpoints.map(endpointObject),
          },
        ];
  return encodeResource(TYPE_URL.endpoint, input.clusterName, { cluster_name: input.clusterName, endpoints });
}
