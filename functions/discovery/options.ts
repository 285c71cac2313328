// The discovery function's options: one object, defaults in one function, checked eagerly with a coded
// error naming the field (DESIGN.md "Contracts: Discovery DNS", "Function instance").
import { isIP } from "node:net";
import type { BackoffOptions } from "../../xds/index.js";
import { type Logger, silentLogger } from "../../xds/index.js";
import { SDK_ERROR, SdkError } from "../sdk/errors.js";

export interface DiscoveryOptions {
  /** The instance id (xDS node id). */
  nodeId: string;
  /** The ServiceFunction it runs (xDS node cluster). */
  functionName: string;
  /** xDS servers, host:port; the client uses one and fails over to the next. */
  xdsServers: string[];
  /** The instance's own address (node metadata), when it has one. */
  address: string | undefined;
  /** Where DNS answers, UDP and TCP, whatever the instance address. */
  dnsAddr: string;
  /** The zone it is authoritative for. */
  zone: string;
  /** TTL of answers, and of negative answers (SOA minimum). */
  ttlSeconds: number;
  /** host:port (or host, port 53) of a resolver for names outside the zone; else REFUSED. */
  upstream: string | undefined;
  upstreamTimeoutMs: number;
  /** host:port of the admin endpoint; default <address>:9901, or an ephemeral loopback port. */
  adminAddr: string | undefined;
  tcpIdleTimeoutMs: number;
  maxTcpConnections: number;
  /**
   * Processes answering DNS. 1: this process. More: forked workers (node:cluster) sharing the UDP
   * socket and TCP port, for more queries per second than one Node thread answers.
   */
  dnsWorkers: number;
  logger: Logger;
  xdsBackoff: BackoffOptions | undefined;
}

export const DISCOVERY_DEFAULTS = {
  dnsAddr: "127.0.0.1:8053",
  zone: "catena.",
  ttlSeconds: 5,
  xdsAddr: "127.0.0.1:18000",
  adminPort: 9901,
} as const;

export type DiscoveryInit = Partial<DiscoveryOptions> & Pick<DiscoveryOptions, "nodeId" | "functionName">;

export function defaultDiscoveryOptions(): Omit<DiscoveryOptions, "nodeId" | "functionName"> {
  return {
    xdsServers: [DISCOVERY_DEFAULTS.xdsAddr],
    address: undefined,
    dnsAddr: DISCOVERY_DEFAULTS.dnsAddr,
    zone: DISCOVERY_DEFAULTS.zone,
    ttlSeconds: DISCOVERY_DEFAULTS.ttlSeconds,
    upstream: undefined,
    upstreamTimeoutMs: 2000,
    adminAddr: undefined,
    tcpIdleTimeoutMs: 10_000,
    maxTcpConnections: 1024,
    dnsWorkers: 1,
    logger: silentLogger,
    xdsBackoff: undefined,
  };
}

export interface HostPort {
  host: string;
  port: number;
}

/** `HOST:PORT` or `[v6]:PORT`; `defaultPort` allows a bare host. */
export function parseHostPort(text: string, defaultPort?: number): HostPort | undefined {
  const t = text.trim();
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(t);
  if (m) {
    const port = Number(m[3]);
    return port <= 65535 ? { host: (m[1] ?? m[2]) as string, port } : undefined;
  }
  if (defaultPort === undefined) return undefined;
  const bare = t.startsWith("[") && t.endsWith("]") ? t.slice(1, -1) : t;
  return isIP(bare) ? { host: bare, port: defaultPort } : undefined;
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

const ZONE = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+$/;

/** Fills defaults and checks every field; throws CATENA_SDK_INVALID_ARGUMENT naming the first bad one. */
export function discoveryOptions(init: DiscoveryInit): DiscoveryOptions {
  const o: DiscoveryOptions = { ...defaultDiscoveryOptions(), ...definedOnly(init) } as DiscoveryOptions;
  const bad = (field: string, why: string) => new SdkError(SDK_ERROR.invalidArgument, `${field}: ${why}`);
  for (const f of ["nodeId", "functionName"] as const)
    if (typeof o[f] !== "string" || o[f] === "") throw bad(f, "must be set");
  if (o.xdsServers.length === 0) throw bad("xdsServers", "must name at least one host:port");
  o.xdsServers.forEach((s, i) => {
    if (!parseHostPort(s)) throw bad(`xdsServers[${i}]`, `expected HOST:PORT, got "${s}"`);
  });
  if (o.address !== undefined && isIP(o.address) === 0)
    throw bad("address", `"${o.address}" is not an IP address`);
  const dns = parseHostPort(o.dnsAddr);
  if (!dns || isIP(dns.host) === 0) throw bad("dnsAddr", `expected IP:PORT, got "${o.dnsAddr}"`);
  o.zone = o.zone.toLowerCase().replace(/\.?$/, ".");
  if (!ZONE.test(o.zone) || o.zone.length > 253) throw bad("zone", `"${o.zone}" is not a domain name`);
  if (!Number.isInteger(o.ttlSeconds) || o.ttlSeconds < 0 || o.ttlSeconds > 86400)
    throw bad("ttlSeconds", "must be an integer from 0 to 86400");
  if (o.upstream !== undefined && !parseHostPort(o.upstream, 53))
    throw bad("upstream", `expected IP[:PORT], got "${o.upstream}"`);
  if (o.adminAddr !== undefined && !parseHostPort(o.adminAddr))
    throw bad("adminAddr", `expected HOST:PORT, got "${o.adminAddr}"`);
  if (!Number.isInteger(o.dnsWorkers) || o.dnsWorkers < 1 || o.dnsWorkers > 64)
    throw bad("dnsWorkers", "must be an integer from 1 to 64");
  for (const f of ["upstreamTimeoutMs", "tcpIdleTimeoutMs", "maxTcpConnections"] as const)
    if (!(o[f] > 0) || !Number.isFinite(o[f])) throw bad(f, "must be a positive number");
  return o;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
