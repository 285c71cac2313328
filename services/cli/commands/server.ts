// catena control: run the control server in the foreground until a signal (`catena up`, the whole
// mesh, is up.ts and shares these flags).

import { parseCertLifetime } from "../../control/ca/cert-window.js";
import { readEnvironment } from "../../control/environment.js";
import type { ControlServerOptions } from "../../control/server.js";
import type { CliContext } from "../context.js";

export interface ServerFlags {
  apiAddr: string;
  xdsAddr: string;
  dataDir?: string;
  store?: "embedded" | "nats-kv";
  trustDomain?: string;
  caCert?: string;
  caKey?: string;
  certLifetime?: string;
}

/** The mesh CA's flags as the control server takes them. */
export function caOptions(flags: ServerFlags): NonNullable<ControlServerOptions["ca"]> {
  return {
    ...(flags.trustDomain && { trustDomain: flags.trustDomain }),
    ...(flags.caCert && { certFile: flags.caCert }),
    ...(flags.caKey && { keyFile: flags.caKey }),
    ...(flags.certLifetime && { lifetimeMs: parseCertLifetime(flags.certLifetime) }),
  };
}

export async function controlCommand(_ctx: CliContext, flags: ServerFlags): Promise<void> {
  // Loaded here, not at the top: `catena get` and friends should not pay for the server's imports.
  const { createLogger } = await import("../../control/logger.js");
  const { startControlServer } = await import("../../control/server.js");
  const env = readEnvironment();
  const logger = createLogger({ name: "catena-control" });
  const server = await startControlServer({
    apiAddr: flags.apiAddr,
    xdsAddr: flags.xdsAddr,
    dataDir: flags.dataDir ?? env.dataDir,
    natsUrl: env.natsUrl,
    natsRoot: env.natsRoot,
    embeddedNats: false,
    ...(flags.store && { store: flags.store }),
    ca: caOptions(flags),
    logger,
  });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  logger.info("shutting down");
  await server.close();
}
