// Where a Service's traffic goes: the ingress instances of the chain in front of it, or else its
// endpoints (static ones and the Workloads its selector picks, at their address in its network).
import type { ServiceChainSpec, ServiceResource, ServiceSpec, WorkloadSpec } from "../model/index.js";
import type { StoredResource } from "../model/resource.js";
import type { InstanceRegistry } from "../registry/instances.js";
import { matchesSelector } from "../store/index.js";
import type { ModelState } from "./model-state.js";

export type EndpointSource = "static" | "workload" | "chain";

export interface ServiceEndpoint {
  address: string;
  port: number;
  weight: number;
  region?: string;
  zone?: string;
  source: EndpointSource;
  /** The object behind the endpoint: a Workload's or a function instance's name. */
  owner?: string;
}

/** The chain fronting a service (validation allows at most one). */
export function frontingChain(state: ModelState, service: string): StoredResource | undefined {
  for (const chain of state.list("ServiceChain")) {
    if ((chain.spec as ServiceChainSpec).service === service) return chain;
  }
  return undefined;
}

export function serviceEndpoints(
  service: ServiceResource | StoredResource,
  state: ModelState,
  instances: InstanceRegistry,
): ServiceEndpoint[] {
  const chain = frontingChain(state, service.metadata.name);
  if (chain) {
    const chainSpec = chain.spec as ServiceChainSpec;
    const first = chainSpec.hops[0]?.function;
    if (!first) return [];
    return instances
      .list(first)
      .filter((i) => i.address !== undefined)
      .map((i) => ({
        address: i.address as string,
        port: chainSpec.ingress.port,
        weight: 1,
        source: "chain" as const,
        owner: i.id,
      }));
  }
  return backendEndpoints(service, state);
}

/** The Service's own endpoints (static ones and selected Workloads), chain or not: a chain's last hop goes here. */
export function backendEndpoints(
  service: ServiceResource | StoredResource,
  state: ModelState,
): ServiceEndpoint[] {
  const spec = service.spec as ServiceSpec;
  const out: ServiceEndpoint[] = (spec.endpoints ?? []).map((e) => ({
    address: e.address,
    port: e.port,
    weight: e.weight ?? 1,
    ...(e.locality?.region ? { region: e.locality.region } : {}),
    ...(e.locality?.zone ? { zone: e.locality.zone } : {}),
    source: "static" as const,
  }));
  if (spec.selector && Object.keys(spec.selector).length > 0) {
    const firstPort = spec.ports[0];
    for (const workload of state.list("Workload")) {
      if (!matchesSelector(workload.metadata.labels, { equals: spec.selector })) continue;
      const wspec = workload.spec as WorkloadSpec;
      const membership = wspec.networks.find((n) => n.name === spec.network);
      if (!membership?.address || !firstPort) continue;
      // A workload port with the service port's name wins (Kubernetes' named targetPort).
      const named = wspec.ports?.find((p) => p.name === firstPort.name);
      out.push({
        address: membership.address,
        port: named?.port ?? firstPort.targetPort ?? firstPort.port,
        weight: 1,
        source: "workload",
        owner: workload.metadata.name,
      });
    }
  }
  return out;
}
