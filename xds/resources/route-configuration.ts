import { encodeResource, type Resource } from "../resource.js";
import { TYPE_URL } from "../type-urls.js";

export type RouteInput =
  | { prefix?: string; cluster: string }
  | { prefix?: string; weightedClusters: { name: string; weight: number }[] };

export interface VirtualHostInput {
  name: string;
  domains: string[];
  routes: RouteInput[];
}

export interface RouteConfigurationInput {
  name: string;
  virtualHosts: VirtualHostInput[];
}

function routeObject(r: RouteInput): Record<string, unknown> {
  const match = { prefix: r.prefix ?? "" };
  if ("cluster" in r) return { match, route: { cluster: r.cluster } };
  return {
    match,
    route: {
      weighted_clusters: {
        clusters: r.weightedClusters.map((c) => ({ name: c.name, weight: { value: c.weight } })),
      },
    },
  };
}

export function routeConfiguration(input: RouteConfigurationInput): Resource {
  return encodeResource(TYPE_URL.route, input.name, {
    name: input.name,
    virtual_hosts: input.virtualHosts.map((vh) => ({
      name: vh.name,
      domains: vh.domains,
      routes: vh.routes.map(routeObject),
    })),
  });
}
