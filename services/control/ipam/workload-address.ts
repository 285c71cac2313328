// A Workload's address in a network, for readers of the model (service endpoints, policy): the fixed
// address its spec gives, else the one IPAM wrote into `status.addresses`.
import type { Resource } from "../model/resource.js";
import type { WorkloadSpec } from "../model/schemas.js";

export interface WorkloadAddress {
  network: string;
  address: string;
}

/** `status.addresses` as IPAM writes it; anything else there is ignored. */
export function statusAddresses(workload: Pick<Resource, "status">): WorkloadAddress[] {
  const raw = workload.status?.addresses;
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((a: unknown) => {
    const { network, address } = (a ?? {}) as { network?: unknown; address?: unknown };
    return typeof network === "string" && typeof address === "string" ? [{ network, address }] : [];
  });
}

export function workloadAddress(
  workload: Pick<Resource, "spec" | "status">,
  network: string,
): string | undefined {
  const spec = workload.spec as Partial<WorkloadSpec>;
  const membership = spec.networks?.find((n) => n.name === network);
  if (!membership) return undefined;
  return membership.address ?? statusAddresses(workload).find((a) => a.network === network)?.address;
}

/** Every address the Workload has, one per network it is a member of and addressed in. */
export function workloadAddresses(workload: Pick<Resource, "spec" | "status">): WorkloadAddress[] {
  const spec = workload.spec as Partial<WorkloadSpec>;
  return (spec.networks ?? []).flatMap((n) => {
    const address = workloadAddress(workload, n.name);
    return address ? [{ network: n.name, address }] : [];
  });
}
