// catena up [--demo]: the whole mesh on this machine, in the foreground until a signal. The control
// server (with NATS as DESIGN.md "Running for real" says), the local runtime running every
// ServiceFunction's instances, and the discovery DNS; `--demo` adds TCP/HTTP backends and the
// edge-chain example, waits until a connection crosses the chain, and prints what to try.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { connect } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger as XdsLogger } from "../../../xds/logger.js";
import { DEFAULTS, readEnvironment } from "../../control/environment.js";
import type { Logger } from "../../control/logger.js";
import type {
  ServiceChainSpec,
  ServiceFunctionSpec,
  ServiceSpec,
  WorkloadSpec,
} from "../../control/model/index.js";
import type { Resource, StoredResource } from "../../control/model/resource.js";
import type { ControlServer } from "../../control/server.js";
import type { Store } from "../../control/store/store.js";
import { ApiClient } from "../client.js";
import type { CliContext } from "../context.js";
import { caOptions, type ServerFlags } from "./server.js";

export interface UpFlags extends ServerFlags {
  demo?: boolean;
  /** The demo Network's CIDR instead of the example's (tests keep to a range of their own). */
  demoCidr?: string;
  dnsAddr: string;
  instanceCidr: string;
}

export const UP_DEFAULTS = { dnsAddr: "127.0.0.1:8053", instanceCidr: "127.64.0.0/16" } as const;

/** The example `--demo` deploys, and the names in it the demo relies on. */
const DEMO = { file: "deploy/examples/edge-chain/chain.yaml", chain: "web-edge", service: "web" } as const;
/** How long `up` waits for the demo chain before saying what is missing (it keeps running). */
const READY_TIMEOUT_MS = 30_000;

export async function upCommand(ctx: CliContext, flags: UpFlags): Promise<void> {
  const started = Date.now();
  const say = (line: string) => ctx.io.err(line);
  const step = (what: string, detail: string) =>
    say(`  ${what.padEnd(10)} ${detail}  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  say(flags.demo ? "Starting Catena with the demo…" : "Starting Catena…");
  let stopping = false;
  let onSecondSignal = () => process.exit(130);
  const stop = new Promise<void>((resolve) => {
    const onSignal = () => {
      if (stopping) onSecondSignal();
      stopping = true;
      resolve();
    };
    for (const s of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(s, onSignal);
  });

  // Loaded here, not at the top: `catena get` and friends should not pay for these imports.
  const [{ createLogger }, { startControlServer }, runtime] = await Promise.all([
    import("../../control/logger.js"),
    import("../../control/server.js"),
    import("../../runtime/index.js"),
  ]);
  const env = readEnvironment();
  const dataDir = flags.dataDir ?? env.dataDir;
  const logger = createLogger({ name: "catena-up" });
  const server = await startControlServer({
    apiAddr: flags.apiAddr,
    xdsAddr: flags.xdsAddr,
    dataDir,
    natsUrl: env.natsUrl,
    natsRoot: env.natsRoot,
    embeddedNats: true,
    ...(flags.store && { store: flags.store }),
    ca: caOptions(flags),
    logger,
  });
  step("control", `API ${server.apiUrl}, xDS ${server.xdsAddr}`);
  step("events", server.eventsDescription);

  const log = xdsLogger(logger);
  // The first discovery instance answers on --dns-addr; more replicas on their own address, same port.
  const dnsPort = splitHostPort(flags.dnsAddr)[1];
  const rt = runtime.startRuntime({
    launcher: runtime.commandLauncher({
      command: runtime.selfCommand(),
      xdsAddr: server.xdsAddr,
      env: {
        ...process.env,
        // The instances publish where the control server does (an embedded nats-server has its own port).
        ...(server.natsUrl ? { CATENA_NATS_URL: server.natsUrl } : {}),
        CATENA_NATS_PREFIX: env.natsRoot,
      },
    }),
    // An address in the Network of the chain a function serves, from IPAM; the loopback range for
    // instances no Network claims (top down, away from IPAM's bottom-up allocations).
    addresses: new runtime.IpamAddressPool({
      server: server.apiUrl,
      networkOf: (fn) => networkOf(server.store, fn),
      node: hostname(),
      logger: log,
      fallback: new runtime.LoopbackAddressPool({
        cidr: flags.instanceCidr,
        file: join(dataDir, "runtime-addresses.json"),
        reserved: () => reservedAddresses(server.store),
        fromTop: true,
      }),
    }),
    withdrawal: runtime.xdsWithdrawal(server.xds, { timeoutMs: 3000 }),
    logs: new runtime.LogMux({
      format: process.stdout.isTTY === true ? "pretty" : "json",
      write: (line) => process.stdout.write(`${line}\n`),
    }),
    events: server.events,
    logger: log,
    extraArgs: (fn, index, address) =>
      fn.type === "discovery" ? ["--dns-addr", index === 0 ? flags.dnsAddr : `${address}:${dnsPort}`] : [],
  });
  onSecondSignal = () => {
    // A second Ctrl-C: do not wait for draining.
    rt.destroy();
    process.exit(130);
  };
  const follower = runtime.followStore(rt, server.store);
  step(
    "runtime",
    `instances get addresses from IPAM in their chain's Network, else from ${flags.instanceCidr}`,
  );

  // One apply: the runtime starts every instance at once.
  const discovery = await discoveryDocuments(server.store);
  const demo = flags.demo ? await prepareDemo(runtime.startDemoBackends, flags.demoCidr) : undefined;
  try {
    await new ApiClient(server.apiUrl).apply([...discovery.documents, ...(demo?.documents ?? [])]);
  } catch (err) {
    say(`  error      ${(err as Error).message}`);
  }
  step("dns", `${flags.dnsAddr}, zone catena. (ServiceFunction ${discovery.function})`);
  if (demo) {
    const at = demo.backends.map((b) => `${b.address}:${b.port}`).join(", ");
    step("demo", `applied ${DEMO.file}; backends ${at}`);
  }

  let ready: { address: string; port: number } | undefined;
  const waited = demo
    ? waitForChain(server.store, DEMO.chain, READY_TIMEOUT_MS, (line) => step("waiting", line)).then((r) => {
        ready = r;
        return r !== undefined;
      })
    : waitForInstances(server, READY_TIMEOUT_MS, (line) => step("waiting", line));
  const ok = await Promise.race([waited, stop.then(() => false)]);
  if (!stopping) {
    if (ready) step("chain", `${DEMO.chain} Ready, ingress ${ready.address}:${ready.port}`);
    else if (!ok)
      say(`  waiting    gave up after ${READY_TIMEOUT_MS / 1000} s; still running (see the logs)`);
    say(tryLines(server, flags, ready));
    const ms = Date.now() - started;
    say(`Catena is up (${ms} ms). Instances log below; Ctrl-C stops everything.`);
    logger.info({ startMs: ms, instances: rt.instances().length }, "catena up ready");
  }

  await stop;
  say(`Stopping: draining ${rt.instances().length} instance(s)…`);
  follower.stop();
  await rt.close();
  await demo?.close();
  await server.close();
  say("Stopped.");
}

/**
 * The Network an instance of `fn` belongs in: that of the Service behind the first chain (by name)
 * with a hop run by `fn`; for a function no chain uses (discovery), the first Network; else none.
 */
async function networkOf(store: Store, fn: string): Promise<string | undefined> {
  for (const chain of await store.list("ServiceChain")) {
    const spec = chain.spec as ServiceChainSpec;
    if (!spec.hops.some((h) => h.function === fn)) continue;
    const service = await store.get("Service", spec.service);
    if (service) return (service.spec as ServiceSpec).network;
  }
  return (await store.list("Network"))[0]?.metadata.name;
}

/** Addresses something in the model already uses: the runtime never gives them to an instance. */
async function reservedAddresses(store: Store): Promise<string[]> {
  const out: string[] = [];
  for (const o of await store.list()) {
    if (o.kind === "Workload")
      for (const n of (o.spec as WorkloadSpec).networks) if (n.address) out.push(n.address);
    if (o.kind === "Service") for (const e of (o.spec as ServiceSpec).endpoints ?? []) out.push(e.address);
    if (o.kind === "ServiceChain") {
      const address = (o.spec as ServiceChainSpec).ingress.address;
      if (address) out.push(address);
    }
  }
  return out;
}

/** Labels `up` puts on what it creates itself. */
const MANAGED = { "catena.dev/managed-by": "catena-up" } as const;

/**
 * The discovery DNS is a ServiceFunction like any other, run by the runtime: `up` creates one (named
 * `discovery`) unless the model has a function of type discovery already.
 */
async function discoveryDocuments(store: Store): Promise<{ function: string; documents: Resource[] }> {
  const existing = (await store.list("ServiceFunction")).find(
    (f) => (f.spec as { type?: string }).type === "discovery",
  );
  if (existing) return { function: existing.metadata.name, documents: [] };
  const document: Resource = {
    apiVersion: "catena.dev/v1alpha1",
    kind: "ServiceFunction",
    metadata: { name: "discovery", labels: { ...MANAGED } },
    spec: { type: "discovery", replicas: 1 },
  };
  return { function: "discovery", documents: [document] };
}

/** The example's documents, with the Service pointed at where the demo backends really listen. */
async function prepareDemo(
  startBackends: typeof import("../../runtime/index.js").startDemoBackends,
  cidr: string | undefined,
) {
  const { parseAllDocuments } = await import("yaml");
  const text = await readFile(exampleFile(DEMO.file), "utf8");
  const documents = parseAllDocuments(text).map((d) => d.toJSON() as Resource);
  const service = documents.find((d) => d.kind === "Service" && d.metadata.name === DEMO.service);
  const spec = service?.spec as ServiceSpec | undefined;
  if (!spec?.endpoints?.length) throw new Error(`${DEMO.file}: no Service ${DEMO.service} with endpoints`);
  const backends = await startBackends(spec.endpoints.map((e) => ({ address: e.address, port: e.port })));
  spec.endpoints = spec.endpoints.map((e, i) => ({ ...e, port: backends.backends[i]?.port ?? e.port }));
  const network = documents.find((d) => d.kind === "Network" && d.metadata.name === spec.network);
  if (cidr && network) network.spec = { ...network.spec, cidr };
  return { documents, backends: backends.backends, close: () => backends.close() };
}

/** The repository's (or the installed package's) copy of an example. */
function exampleFile(relative: string): string {
  for (const up of ["../../../", "../../../../"]) {
    const path = fileURLToPath(new URL(up + relative, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error(`${relative} not found next to the catena program`);
}

/** Resolves with the chain's ingress once it is Ready and a connection to it is accepted. */
async function waitForChain(
  store: Store,
  name: string,
  timeoutMs: number,
  progress: (line: string) => void,
): Promise<{ address: string; port: number } | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const chain: StoredResource | undefined = await store.get("ServiceChain", name);
    const ready = chain?.status?.conditions?.find((c) => c.type === "Ready");
    const ingress = (chain?.status as { ingress?: { address: string; port: number } } | undefined)?.ingress;
    if (ready?.status === "True" && ingress && (await accepts(ingress.address, ingress.port))) return ingress;
    const line = ready?.message ?? "waiting for the chain's status";
    if (line !== last) progress(line);
    last = line;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

/** Resolves true once every instance the stored ServiceFunctions ask for is connected. */
async function waitForInstances(
  server: ControlServer,
  timeoutMs: number,
  progress: (line: string) => void,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const want = (await server.store.list("ServiceFunction")).flatMap((f) =>
      Array.from(
        { length: (f.spec as ServiceFunctionSpec).replicas ?? 1 },
        (_, i) => `${f.metadata.name}-${i}`,
      ),
    );
    const missing = want.filter((id) => !server.xds.instances.get(id));
    if (missing.length === 0) return true;
    const line = `waiting for ${missing.join(", ")} to connect`;
    if (line !== last) progress(line);
    last = line;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function accepts(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: address, port });
    s.setTimeout(1000);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
    s.once("timeout", () => {
      s.destroy();
      resolve(false);
    });
  });
}

function tryLines(
  server: ControlServer,
  flags: UpFlags,
  ingress: { address: string; port: number } | undefined,
): string {
  const serverFlag = server.apiUrl === DEFAULTS.server ? "" : ` --server ${server.apiUrl}`;
  const [dnsHost, dnsPort] = splitHostPort(flags.dnsAddr);
  const lines = ["Try:"];
  if (ingress) {
    const { address, port } = ingress;
    lines.push(
      `  curl http://${address}:${port}/                     # through firewall → qos → loadbalancer`,
      `  node -e 'const s=require("net").connect(${port},"${address}",()=>s.end("hello\\n"));s.pipe(process.stdout)'`,
    );
  } else {
    lines.push(`  catena apply -f ${DEMO.file}${serverFlag}`);
  }
  lines.push(
    `  dig @${dnsHost} -p ${dnsPort} ${DEMO.service}.catena.`,
    `  catena events --follow${serverFlag}`,
    `  catena get servicechains${serverFlag}`,
    `  catena get servicefunctions${serverFlag}   # scale: change replicas and apply again`,
  );
  if (flags.demo) lines.push("  ls deploy/examples/                   # more patterns");
  return lines.join("\n");
}

function splitHostPort(text: string): [string, string] {
  const i = text.lastIndexOf(":");
  return [text.slice(0, i).replace(/^\[|\]$/g, ""), text.slice(i + 1)];
}

/** The runtime and xds/ take a message-first 4-method logger; pino takes fields first. */
function xdsLogger(logger: Logger): XdsLogger {
  return {
    debug: (msg, fields) => logger.debug(fields ?? {}, msg),
    info: (msg, fields) => logger.info(fields ?? {}, msg),
    warn: (msg, fields) => logger.warn(fields ?? {}, msg),
    error: (msg, fields) => logger.error(fields ?? {}, msg),
  };
}
