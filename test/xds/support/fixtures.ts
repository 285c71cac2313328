import type { Node } from "../../../xds/node.js";
import { decodeAny, type Resource } from "../../../xds/resource.js";
import { BUILTIN_RESOURCE_TYPES } from "../../../xds/resource-types/builtin.js";
import { apiListener } from "../../../xds/resources/api-listener.js";
import { edsCluster } from "../../../xds/resources/cluster.js";
import { clusterLoadAssignment } from "../../../xds/resources/cluster-load-assignment.js";
import { tcpProxyListener } from "../../../xds/resources/listener.js";
import { routeConfiguration } from "../../../xds/resources/route-configuration.js";
import type { AnyValue } from "../../../xds/wire/discovery.js";

export const node: Node = { id: "node-1", cluster: "fw", metadata: { type: "firewall" } };
export const node2: Node = { id: "node-2", cluster: "fw", metadata: { type: "firewall" } };

export const cluster = (name: string, timeoutMs = 5000): Resource =>
  edsCluster({ name, connectTimeoutMs: timeoutMs });
export const cla = (name: string, port = 80): Resource =>
  clusterLoadAssignment({ clusterName: name, endpoints: [{ address: "127.0.0.1", port }] });
export const listener = (name: string, clusterName: string, port = 9000): Resource =>
  tcpProxyListener({ name, address: "127.0.0.1", port, tcpProxy: { cluster: clusterName } });
export const apiL = (name: string, route: string): Resource => apiListener({ name, routeConfigName: route });
export const route = (name: string, clusterName: string): Resource =>
  routeConfiguration({
    name,
    virtualHosts: [{ name: "vh", domains: ["*"], routes: [{ cluster: clusterName }] }],
  });

/** Names of the resources in a SotW response, decoded with the built-in types. */
export function namesOf(resources: AnyValue[]): string[] {
  return resources.map((a) => {
    const t = BUILTIN_RESOURCE_TYPES.get(a.typeUrl);
    const d = t?.decode(a.value);
    if (!d?.ok) throw new Error(`undecodable ${a.typeUrl}`);
    return d.name;
  });
}

export function anyName(r: Resource): string {
  const a = decodeAny(r.any);
  if (!a) throw new Error("bad any");
  return namesOf([a])[0] ?? "";
}
