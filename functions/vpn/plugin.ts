// The vpn function (DESIGN.md "VPN hops, tunnels and secrets"). A vpn hop has no listener filter: its
// tunnel is the host's, built from Envoy resources every host understands (tcp_proxy tunneling_config
// to a cluster with an UpstreamTlsContext on the initiating instance; a DownstreamTlsContext and an
// http_connection_manager terminating CONNECT on the peer), with certificates as SDS Secrets for the
// key each instance made itself. So this plugin claims no filter type and exists to name the function:
// `catena function vpn`, node metadata type `vpn` (the control server gives secrets to vpn instances
// only), and the event kind of `<root>.events.vpn.<instance>.connected|disconnected|refused`.
import { ACCEPT, defineFunction, type NetworkFilter } from "../sdk/define-function.js";
import { valid } from "../sdk/validated.js";

/** Never instantiated by the host (no config types). */
export const PASS_THROUGH: NetworkFilter = Object.freeze({ onConnection: () => ACCEPT });

export default defineFunction<Record<string, never>>({
  name: "vpn",
  configTypes: [],
  parseConfig: () => valid({}),
  createFilter: () => PASS_THROUGH,
});
