// Where a Service's traffic goes: the ingress instances of the chain in front of it, or else its
// endpoints (static ones, the Workloads its selector picks at their address in its network, and the
// ones that registered themselves), each with the Service port it serves and its health.

import { workloadAddress } from "../ipam/workload-address.js";
import type { ServiceChainSpec, ServiceResource, ServiceSpec, WorkloadSpec } from "../model/index.js";
import type { StoredResource } from "../model/resource.js";
import type { InstanceRegistry } from "../registry/instances.js";
import { matchesSelector } from "../store/index.js";
import type { ModelState } from "./model-state.js";

export type EndpointSource = "static" | "workload" | "chain" | "registered";

export interface ServiceEndpoint {
  address: string;
  port: number;
  weight: number;
  region?: string;
  zone?: string;
  source: EndpointSource;
  /** The object behind the endpoint: a Workload's or a function instance's name, a registration's id. */
  owner?: string;
  /** The Service port it serves (SRV `_<portName>._tcp`); set for every endpoint of a Service. */
  portName?: string;
  /** false when active checks found it down (or have not passed yet); absent means healthy. */
  healthy?: boolean;
}

/** What the registry adds to a Service's own endpoints: self-registered ones, and active-check health. */
export interface EndpointRegistryView {
  registered(service: string): readonly ServiceEndpoint[];
  /** undefined when the endpoint is not checked (it counts as healthy). */
  healthy(service: string, endpoint: ServiceEndpoint): boolean | undefined;
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
  registry?: EndpointRegistryView,
): ServiceEndpoint[] {
  const chain = frontingChain(state, service.metadata.name);
  if (chain) {
    const chainSpec = chain.spec as ServiceChainSpec;
    const first = chainSpec.hops[0]?.function;
    if (!first) return [];
    const portName = portNameFor(service.spec as ServiceSpec, chainSpec.ingress.port);
    return instances
      .list(first)
      .filter((i) => i.address !== undefined)
      .map((i) => ({
        address: i.address as string,
        port: chainSpec.ingress.port,
        weight: 1,
        source: "chain" as const,
        owner: i.id,
        ...(portName ? { portName } : {}),
      }));
  }
  return backendEndpoints(service, state, registry);
}

/** The Service's own endpoints (static ones and selected Workloads), chain or not: a chain's last hop goes here. */
export function backendEndpoints(
  service: ServiceResource | StoredResource,
  state: ModelState,
  registry?: EndpointRegistryView,
): ServiceEndpoint[] {
  const spec = service.spec as ServiceSpec;
  const out: ServiceEndpoint[] = (spec.endpoints ?? []).map((e) => ({
    address: e.address,
    port: e.port,
    weight: e.weight ?? 1,
    ...(e.locality?.region ? { region: e.locality.region } : {}),
    ...(e.locality?.zone ? { zone: e.locality.zone } : {}),
    source: "static" as const,
    ...portNameField(spec, e.port),
  }));
  if (spec.selector && Object.keys(spec.selector).length > 0) {
    const firstPort = spec.ports[0];
    for (const workload of state.list("Workload")) {
      if (!matchesSelector(workload.metadata.labels, { equals: spec.selector })) continue;
      const wspec = workload.spec as WorkloadSpec;
      // The spec's fixed address, else the one IPAM allocated (status.addresses).
      const address = workloadAddress(workload, spec.network);
      if (!address || !firstPort) continue;
      // A workload port with the service port's name wins (Kubernetes' named targetPort).
      const named = wspec.ports?.find((p) => p.name === firstPort.name);
      out.push({
        address,
        port: named?.port ?? firstPort.targetPort ?? firstPort.port,
        weight: 1,
        source: "workload",
        owner: workload.metadata.name,
        portName: firstPort.name,
      });
    }
  }
  if (!registry) return out;
  const name = service.metadata.name;
  out.push(...registry.registered(name));
  for (let i = 0; i < out.length; i++) {
    const e = out[i] as ServiceEndpoint;
    const healthy = registry.healthy(name, e);
    if (healthy !== undefined) out[i] = { ...e, healthy };
  }
  return out;
}

/** The Service port an endpoint port serves: the one whose targetPort or port it is, else the first. */
export function portNameFor(spec: ServiceSpec, port: number): string | undefined {
  const ports = spec.ports ?? [];
  return (
    ports.find((p) => (p.targetPort ?? p.port) === port)?.name ??
    ports.find((p) => p.port === port)?.name ??
    ports[0]?.name
  );
}

function portNameField(spec: ServiceSpec, port: number): { portName?: string } {
  const portName = portNameFor(spec, port);
  return portName ? { portName } : {};
}
