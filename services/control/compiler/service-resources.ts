// The xDS resources of one Service, named after it: a ClusterLoadAssignment (EDS) for every
// consumer, and for proxyless gRPC clients dialing `xds:///<service>` a Listener (api_listener),
// RouteConfiguration and Cluster (EDS over ADS).
import {
  apiListener,
  clusterLoadAssignment,
  edsCluster,
  type Resource,
  routeConfiguration,
} from "../../../xds/index.js";
import type { ServiceEndpoint } from "./service-endpoints.js";

/**
 * `previous`: what the service compiled to last time. Only the assignment depends on the endpoints;
 * the other three are reused, since re-encoding them dominated the cost of endpoint churn.
 */
export function serviceResources(
  name: string,
  endpoints: readonly ServiceEndpoint[],
  previous?: readonly Resource[],
): Resource[] {
  const cla = clusterLoadAssignment({
    clusterName: name,
    endpoints: endpoints.map((e) => ({
      address: e.address,
      port: e.port,
      weight: e.weight,
      health: e.healthy === false ? "UNHEALTHY" : "HEALTHY",
      // Discovery answers SRV `_<portName>._tcp.<service>` from this.
      ...(e.portName ? { metadata: { catena: { portName: e.portName } } } : {}),
      // One sub-zone per endpoint: gRPC weighs localities, not endpoints, under round robin, so
      // this is how endpoint weights reach proxyless clients; region and zone keep their meaning.
      locality: {
        ...(e.region ? { region: e.region } : {}),
        ...(e.zone ? { zone: e.zone } : {}),
        subZone: `${e.address}:${e.port}`,
      },
    })),
  });
  if (previous?.length === 4) return [cla, ...previous.slice(1)];
  return [
    cla,
    edsCluster({ name }),
    routeConfiguration({ name, virtualHosts: [{ name, domains: ["*"], routes: [{ cluster: name }] }] }),
    apiListener({ name, routeConfigName: name }),
  ];
}
