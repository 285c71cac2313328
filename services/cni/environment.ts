// The plugin's own settings from the environment (read here only; CNI_* variables are skel.ts's).
import { hostname } from "node:os";

export interface PluginEnvironment {
  /** Pending deletes and other small state: CATENA_CNI_STATE_DIR, default /var/lib/catena-cni. */
  stateDir: string;
  /** This node's name in leases, for GC: CATENA_CNI_NODE, default the host name. */
  node: string;
  /** Per request to the control server: CATENA_CNI_TIMEOUT_MS, default 5000. */
  timeoutMs: number;
}

export function pluginEnvironment(getenv: (name: string) => string | undefined): PluginEnvironment {
  const timeout = Number(getenv("CATENA_CNI_TIMEOUT_MS"));
  return {
    stateDir: getenv("CATENA_CNI_STATE_DIR") || "/var/lib/catena-cni",
    node: getenv("CATENA_CNI_NODE") || hostname(),
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : 5000,
  };
}
