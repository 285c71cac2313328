// catena function TYPE: run one function instance in the foreground until a signal (DESIGN.md
// "Contracts: Function instance"). Flags win over the CATENA_* variables an orchestrator sets.
import type { CliContext } from "../context.js";
import { usage } from "../exit.js";

export interface FunctionFlags {
  /** discovery only: where DNS answers, its zone, TTL (seconds) and upstream resolver. */
  dnsAddr?: string;
  zone?: string;
  ttl?: string;
  upstream?: string;
  dnsWorkers?: string;
  function?: string;
  nodeId?: string;
  xdsAddr?: string;
  address?: string;
  adminAddr?: string;
  plugin?: string;
}

export async function functionCommand(ctx: CliContext, typeArg: string | undefined, flags: FunctionFlags) {
  // Loaded here, not at the top: other commands should not pay for the data path's imports.
  const { readFunctionEnvironment } = await import("../../../functions/sdk/environment.js");
  const env = readFunctionEnvironment();
  const type = typeArg ?? env.type;
  const functionName = flags.function ?? env.functionName;
  const nodeId = flags.nodeId ?? env.nodeId;
  const missing = [
    !type && "TYPE (or CATENA_FUNCTION_TYPE)",
    !functionName && "--function (or CATENA_FUNCTION)",
    !nodeId && "--node-id (or CATENA_NODE_ID)",
  ].filter((m): m is string => typeof m === "string");
  if (missing.length > 0) throw usage(`catena function needs ${missing.join(", ")}`);
  if (type === "discovery") {
    const { discoveryCommand } = await import("./function-discovery.js");
    const { function: _, ...rest } = flags;
    const xdsAddr = flags.xdsAddr ?? env.xdsAddr;
    const address = flags.address ?? env.address;
    const adminAddr = flags.adminAddr ?? env.adminAddr;
    return discoveryCommand(ctx, {
      ...rest,
      functionName: functionName as string,
      nodeId: nodeId as string,
      xdsAddr,
      address,
      adminAddr,
    });
  }

  const [
    { loadBuiltinFunctions },
    { loadPlugin },
    { startFunctionHost },
    { NatsEventSink },
    { createLogger },
  ] = await Promise.all([
    import("../../../functions/builtins.js"),
    import("../../../functions/sdk/plugin-loader.js"),
    import("../../../functions/sdk/host.js"),
    import("../../../functions/sdk/events.js"),
    import("../../control/logger.js"),
  ]);
  const functions = await loadBuiltinFunctions();
  const pluginSpec = flags.plugin ?? env.plugin;
  if (pluginSpec) {
    try {
      functions.push(await loadPlugin(pluginSpec));
    } catch (err) {
      throw usage((err as Error).message);
    }
  }
  if (!functions.some((f) => f.name === type)) {
    throw usage(
      `unknown function type "${type}" (built-in: ${functions.map((f) => f.name).join(", ")}; a third-party type needs --plugin MODULE)`,
    );
  }
  const xdsAddr = flags.xdsAddr ?? env.xdsAddr;
  const pino = createLogger({ name: `catena-function-${type}` });
  const logger = {
    debug: (m: string, f?: Record<string, unknown>) => pino.debug(f ?? {}, m),
    info: (m: string, f?: Record<string, unknown>) => pino.info(f ?? {}, m),
    warn: (m: string, f?: Record<string, unknown>) => pino.warn(f ?? {}, m),
    error: (m: string, f?: Record<string, unknown>) => pino.error(f ?? {}, m),
  };
  const events = new NatsEventSink({
    url: env.natsUrl,
    root: env.natsRoot,
    source: `catena/function/${nodeId}`,
    name: `catena-function-${nodeId}`,
    logger,
  });
  const host = await startFunctionHost({
    type: type as string,
    functionName: functionName as string,
    nodeId: nodeId as string,
    xdsServers: xdsAddr ? xdsAddr.split(",").map((s) => s.trim()) : undefined,
    address: flags.address ?? env.address,
    adminAddr: flags.adminAddr ?? env.adminAddr,
    functions,
    logger,
    events,
  }).catch(async (err: unknown) => {
    await events.close();
    const code = (err as { code?: string }).code;
    if (code === "CATENA_SDK_INVALID_ARGUMENT" || code === "CATENA_SDK_UNKNOWN_FUNCTION")
      throw usage((err as Error).message);
    throw err;
  });
  ctx.io.err(`catena function ${type} ${nodeId}: admin http://${host.adminAddress}`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  logger.info("draining");
  await host.close();
}
