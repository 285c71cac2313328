// The function host's options: one object, defaults in one function, checked eagerly with a coded
// error that names the field.
import { isIP } from "node:net";
import type { BackoffOptions } from "../../xds/client/backoff.js";
import { type Logger, silentLogger } from "../../xds/logger.js";
import type { FunctionDefinition } from "./define-function.js";
import { FUNCTION_DEFAULTS } from "./environment.js";
import { SDK_ERROR, SdkError } from "./errors.js";
import type { EventSink } from "./events.js";

export interface FunctionHostOptions {
  /** The function type this instance runs (node metadata `type`, the kind of its events). */
  type: string;
  /** The ServiceFunction's name: the xDS node's cluster. */
  functionName: string;
  /** The instance id: the xDS node's id, the name of its events. */
  nodeId: string;
  /** xDS servers (host:port); the client uses one and fails over to the next. */
  xdsServers: string[];
  /** This instance's own address: listeners bind it, upstream connections are sent from it. */
  address: string | undefined;
  /** host:port of the admin server; default <address>:9901, or an ephemeral port on 127.0.0.1. */
  adminAddr: string | undefined;
  /**
   * Every function whose filters this host runs: all built-ins plus a plugin, since a fused listener
   * carries other hops' filters. Must include `type`.
   */
  functions: readonly FunctionDefinition<unknown>[];
  logger: Logger;
  /** Where host and plugin events go; default none. The CLI passes a NATS publisher. */
  events: EventSink | undefined;
  /** A draining listener's connections are destroyed after this long. */
  drainTimeoutMs: number;
  /** A peer that does not complete its PROXY v2 header in this time is closed. */
  proxyHeaderTimeoutMs: number;
  /** xDS reconnect backoff (tests shorten it). */
  xdsBackoff: BackoffOptions | undefined;
  /** HTTP/2 PING interval on VPN tunnel sessions (10 s; tests shorten it). */
  tunnelKeepaliveMs: number;
}

export type FunctionHostInit = Partial<FunctionHostOptions> &
  Pick<FunctionHostOptions, "type" | "functionName" | "nodeId" | "functions">;

export function defaultFunctionHostOptions(): Omit<
  FunctionHostOptions,
  "type" | "functionName" | "nodeId" | "functions"
> {
  return {
    xdsServers: [FUNCTION_DEFAULTS.xdsAddr],
    address: undefined,
    adminAddr: undefined,
    logger: silentLogger,
    events: undefined,
    drainTimeoutMs: 10_000,
    proxyHeaderTimeoutMs: 5_000,
    xdsBackoff: undefined,
    tunnelKeepaliveMs: 10_000,
  };
}

export interface HostPort {
  host: string;
  port: number;
}

/** `HOST:PORT` or `[v6]:PORT`; undefined when malformed. */
export function parseHostPort(text: string): HostPort | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  return port <= 65535 ? { host: (m[1] ?? m[2]) as string, port } : undefined;
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Fills defaults and checks every field; throws CATENA_SDK_INVALID_ARGUMENT naming the first bad one. */
export function functionHostOptions(init: FunctionHostInit): FunctionHostOptions {
  const o: FunctionHostOptions = {
    ...defaultFunctionHostOptions(),
    ...stripUndefined(init),
    type: init.type,
    functionName: init.functionName,
    nodeId: init.nodeId,
    functions: init.functions,
  };
  const bad = (field: string, why: string) => new SdkError(SDK_ERROR.invalidArgument, `${field}: ${why}`);
  for (const f of ["type", "functionName", "nodeId"] as const)
    if (typeof o[f] !== "string" || o[f] === "") throw bad(f, "must be set");
  if (o.xdsServers.length === 0) throw bad("xdsServers", "must name at least one host:port");
  o.xdsServers.forEach((s, i) => {
    if (!parseHostPort(s)) throw bad(`xdsServers[${i}]`, `expected HOST:PORT, got "${s}"`);
  });
  if (o.address !== undefined && isIP(o.address) === 0)
    throw bad("address", `"${o.address}" is not an IP address`);
  if (o.adminAddr !== undefined && !parseHostPort(o.adminAddr))
    throw bad("adminAddr", `expected HOST:PORT, got "${o.adminAddr}"`);
  if (!o.functions.some((f) => f.name === o.type))
    throw new SdkError(
      SDK_ERROR.unknownFunction,
      `type: no function named "${o.type}" (known: ${o.functions.map((f) => f.name).join(", ")})`,
    );
  if (!(o.tunnelKeepaliveMs > 0) || !Number.isFinite(o.tunnelKeepaliveMs))
    throw bad("tunnelKeepaliveMs", "must be a number > 0");
  for (const f of ["drainTimeoutMs", "proxyHeaderTimeoutMs"] as const)
    if (!(o[f] >= 0) || !Number.isFinite(o[f])) throw bad(f, "must be a number >= 0");
  return o;
}

/** The admin address to bind: given, else <address>:9901, else an ephemeral port on loopback. */
export function adminHostPort(o: Pick<FunctionHostOptions, "adminAddr" | "address">): HostPort {
  if (o.adminAddr) return parseHostPort(o.adminAddr) as HostPort;
  if (o.address) return { host: o.address, port: FUNCTION_DEFAULTS.adminPort };
  return { host: "127.0.0.1", port: 0 };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
