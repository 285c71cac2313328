// Spec versions this plugin speaks, and results in each version's shape. 0.3.x and 0.4.0 results
// carry `version` on every IP; 1.x dropped it. CHECK exists from 0.4.0, STATUS and GC from 1.1.0.
import { PluginError, PluginErrorCode } from "./errors.js";

export const SUPPORTED_VERSIONS = ["0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = "1.1.0";

export function isSupported(v: unknown): v is CniVersion {
  return typeof v === "string" && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Ordering of supported versions (they are few and known: an index beats a semver parser). */
export function atLeast(v: CniVersion, min: CniVersion): boolean {
  return SUPPORTED_VERSIONS.indexOf(v) >= SUPPORTED_VERSIONS.indexOf(min);
}

export function requireVersion(v: CniVersion, min: CniVersion, command: string): void {
  if (!atLeast(v, min)) {
    throw new PluginError(
      PluginErrorCode.IncompatibleVersion,
      `config version "${v}" does not allow command ${command}`,
      `${command} needs cniVersion ${min} or later`,
    );
  }
}

export interface IpConfig {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface Route {
  dst: string;
  gw?: string;
}

export interface Interface {
  name: string;
  mac?: string;
  sandbox?: string;
}

/** A result as 1.x has it; `[key: string]: unknown` keeps fields a newer plugin added before us. */
export interface CniResult {
  cniVersion?: string;
  interfaces?: Interface[];
  ips?: IpConfig[];
  routes?: Route[];
  dns?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The result in the shape of `version`: an IPv4/IPv6 `version` field on each IP before 1.0.0. */
export function resultFor(version: CniVersion, result: CniResult): CniResult {
  const ips = (result.ips ?? []).map((ip) => {
    const { version: _drop, ...rest } = ip as IpConfig & { version?: string };
    return atLeast(version, "1.0.0") ? rest : { version: ip.address.includes(":") ? "6" : "4", ...rest };
  });
  return { ...result, cniVersion: version, ips };
}
