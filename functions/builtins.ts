// The built-in functions, loaded on demand so `catena function TYPE` pays only for what it runs. Every
// host registers all of them: a fused listener carries the filters of every hop it runs, whatever the
// instance's own type. discovery is a built-in of the contract run by its own command, not a host.
import type { FunctionDefinition } from "./sdk/define-function.js";

export const BUILTIN_FUNCTION_NAMES = ["firewall", "qos", "loadbalancer", "vpn"] as const;

export async function loadBuiltinFunctions(): Promise<FunctionDefinition<unknown>[]> {
  const [fw, qos, lb, vpn] = await Promise.all([
    import("./firewall/plugin.js"),
    import("./qos/plugin.js"),
    import("./loadbalancer/plugin.js"),
    import("./vpn/plugin.js"),
  ]);
  return [fw.default, qos.default, lb.default, vpn.default] as FunctionDefinition<unknown>[];
}
