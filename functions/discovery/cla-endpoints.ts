// A service's ClusterLoadAssignment (Envoy JSON, as xds/ decodes it) as the endpoints DNS answers:
// the healthy ones, each with its weight and the Service port it serves (endpoint metadata
// `filter_metadata.catena.portName`, which the control server sets for discovery).
import { type ClusterLoadAssignmentJson, structToJson } from "../../xds/index.js";
import type { ZoneEndpoint } from "./zone.js";

/** Envoy's health statuses a load balancer routes to; UNKNOWN (absent) counts as healthy, as in Envoy. */
const ROUTABLE = new Set([undefined, "UNKNOWN", "HEALTHY", "DEGRADED"]);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

export function claEndpoints(cla: ClusterLoadAssignmentJson): ZoneEndpoint[] {
  const out: ZoneEndpoint[] = [];
  const localities = Array.isArray(cla.endpoints) ? cla.endpoints : [];
  for (const locality of localities) {
    if (!isObj(locality) || !Array.isArray(locality.lb_endpoints)) continue;
    for (const lb of locality.lb_endpoints) {
      if (!isObj(lb)) continue;
      const health = typeof lb.health_status === "string" ? lb.health_status : undefined;
      if (!ROUTABLE.has(health)) continue;
      const endpoint = isObj(lb.endpoint) ? lb.endpoint : undefined;
      const address = isObj(endpoint?.address) ? endpoint.address : undefined;
      const socket = isObj(address?.socket_address) ? address.socket_address : undefined;
      if (!socket || typeof socket.address !== "string") continue;
      const port = typeof socket.port_value === "number" ? socket.port_value : 0;
      const weightObj = isObj(lb.load_balancing_weight) ? lb.load_balancing_weight : undefined;
      const weight = typeof weightObj?.value === "number" ? weightObj.value : 1;
      const metadata =
        isObj(lb.metadata) && isObj(lb.metadata.filter_metadata) ? lb.metadata.filter_metadata : {};
      const catena = structToJson(metadata.catena);
      const portName = typeof catena.portName === "string" ? catena.portName : undefined;
      out.push({ address: socket.address, port, weight, portName });
    }
  }
  return out;
}
