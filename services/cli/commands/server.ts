// catena control and catena up: run the control server in the foreground until a signal.
import { DEFAULTS, readEnvironment } from "../../control/environment.js";
import type { CliContext } from "../context.js";

export interface ServerFlags {
  apiAddr: string;
  xdsAddr: string;
  dataDir?: string;
  store?: "embedded" | "nats-kv";
}

export async function controlCommand(
  ctx: CliContext,
  flags: ServerFlags,
  mode: "control" | "up",
): Promise<void> {
  // Loaded here, not at the top: `catena get` and friends should not pay for the server's imports.
  const { createLogger } = await import("../../control/logger.js");
  const { startControlServer } = await import("../../control/server.js");
  const env = readEnvironment();
  const logger = createLogger({ name: "catena-control" });
  const started = Date.now();
  const server = await startControlServer({
    apiAddr: flags.apiAddr,
    xdsAddr: flags.xdsAddr,
    dataDir: flags.dataDir ?? env.dataDir,
    natsUrl: env.natsUrl,
    natsRoot: env.natsRoot,
    embeddedNats: mode === "up",
    ...(flags.store && { store: flags.store }),
    logger,
  });
  if (mode === "up") {
    ctx.io.err(
      [
        `Catena is up (${Date.now() - started} ms).`,
        `  API:     ${server.apiUrl}`,
        `  events:  ${server.eventsDescription}`,
        "Try:",
        `  catena apply -f deploy/examples/edge-chain/chain.yaml${server.apiUrl === DEFAULTS.server ? "" : ` --server ${server.apiUrl}`}`,
        "  catena get servicechains",
        "  catena events --follow",
        "Ctrl-C stops everything.",
      ].join("\n"),
    );
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  logger.info("shutting down");
  await server.close();
}
