// The vpn function: a name for the host's tunnel machinery (functions/sdk tunnel-client, tunnel-server,
// tls-config, secrets).
export { default, PASS_THROUGH } from "./plugin.js";
