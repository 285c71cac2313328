// A real function host for tests: the built-in functions, an admin port of its own on its address,
// and a quick xDS reconnect (tests kill control servers and expect prompt failover).
import { loadBuiltinFunctions } from "../../functions/builtins.js";
import type { FunctionDefinition } from "../../functions/sdk/define-function.js";
import { FunctionHost } from "../../functions/sdk/host.js";
import type { FunctionHostInit } from "../../functions/sdk/options.js";

let builtins: FunctionDefinition<unknown>[] | undefined;

export async function startTestHost(
  init: Omit<FunctionHostInit, "functions" | "address"> & {
    address: string;
    xdsServers: string[];
    /** Beside the built-ins (a third-party plugin). */
    plugins?: FunctionDefinition<unknown>[];
  },
): Promise<FunctionHost> {
  builtins ??= await loadBuiltinFunctions();
  const { plugins, ...rest } = init;
  return FunctionHost.start({
    adminAddr: `${init.address}:0`,
    xdsBackoff: { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0.1 },
    ...rest,
    functions: [...builtins, ...(plugins ?? [])],
  });
}
