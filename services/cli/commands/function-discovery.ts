// catena function discovery: the discovery function is a DNS server, not a TCP filter, so it runs
// outside the function host (functions/discovery runDiscovery), with its own flags.
import type { Logger as XdsLogger } from "../../../xds/index.js";
import type { CliContext } from "../context.js";
import { usage } from "../exit.js";

export interface DiscoveryFlags {
  functionName: string;
  nodeId: string;
  xdsAddr?: string | undefined;
  address?: string | undefined;
  adminAddr?: string | undefined;
  dnsAddr?: string | undefined;
  zone?: string | undefined;
  ttl?: string | undefined;
  upstream?: string | undefined;
  dnsWorkers?: string | undefined;
}

export async function discoveryCommand(ctx: CliContext, flags: DiscoveryFlags): Promise<void> {
  const [{ runDiscovery }, { createLogger }] = await Promise.all([
    import("../../../functions/discovery/index.js"),
    import("../../control/logger.js"),
  ]);
  const ttl = flags.ttl === undefined ? undefined : Number(flags.ttl);
  if (ttl !== undefined && !Number.isInteger(ttl))
    throw usage(`--ttl takes whole seconds, got "${flags.ttl}"`);
  const dnsWorkers = flags.dnsWorkers === undefined ? undefined : Number(flags.dnsWorkers);
  const pino = createLogger({ name: "catena-function-discovery" });
  const logger: XdsLogger = {
    debug: (m, f) => pino.debug(f ?? {}, m),
    info: (m, f) => pino.info(f ?? {}, m),
    warn: (m, f) => pino.warn(f ?? {}, m),
    error: (m, f) => pino.error(f ?? {}, m),
  };
  const discovery = await runDiscovery({
    functionName: flags.functionName,
    nodeId: flags.nodeId,
    xdsServers: flags.xdsAddr ? flags.xdsAddr.split(",").map((s) => s.trim()) : undefined,
    address: flags.address,
    adminAddr: flags.adminAddr,
    dnsAddr: flags.dnsAddr,
    zone: flags.zone,
    ttlSeconds: ttl,
    upstream: flags.upstream,
    dnsWorkers,
    logger,
  }).catch((err: unknown) => {
    if ((err as { code?: string }).code === "CATENA_SDK_INVALID_ARGUMENT")
      throw usage((err as Error).message);
    throw err;
  });
  ctx.io.err(
    `catena function discovery ${flags.nodeId}: DNS ${discovery.dnsAddress} (zone ${discovery.zone.zone}), admin http://${discovery.adminAddress}`,
  );
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await discovery.close();
}
