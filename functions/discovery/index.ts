// The discovery function: an authoritative DNS server for the mesh's services, fed over xDS.
export { claEndpoints } from "./cla-endpoints.js";
export { type Discovery, runDiscovery } from "./discovery.js";
export { DnsServer, type DnsServerOptions } from "./dns-server.js";
export {
  DISCOVERY_DEFAULTS,
  type DiscoveryInit,
  type DiscoveryOptions,
  defaultDiscoveryOptions,
  discoveryOptions,
} from "./options.js";
export { Responder, type ResponderStats, type Transport } from "./responder.js";
export { Upstream, type UpstreamOptions } from "./upstream.js";
export { RCODE, TYPE } from "./wire.js";
export { Zone, type ZoneEndpoint, type ZoneOptions } from "./zone.js";
