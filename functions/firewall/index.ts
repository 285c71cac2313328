// Public surface of the firewall building blocks.
export { decodeFirewallConfig } from "./catena-config.js";
export { type Cidr, formatCidr, parseCidr, subtractCidrs } from "./cidr.js";
export { FirewallIndex } from "./firewall-index.js";
export { LinearFirewall } from "./linear-firewall.js";
export type {
  Decision,
  FirewallAction,
  FirewallDecider,
  FirewallPolicy,
  FirewallRule,
  PortRange,
} from "./policy.js";
export { decodeRbacConfig, type RbacAddress, type RbacFirewall } from "./rbac-config.js";
