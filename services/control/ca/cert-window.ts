// Renewal windows (docs/design.md "VPN hops, tunnels and secrets"): a certificate is a function of
// its window, so every control server issues the same one at the same time.
import { parseWait } from "../duration.js";

export interface CertWindow {
  /** k = floor(now / R), R = 2/3 · lifetime. */
  index: number;
  /** k·R − min(60 s, R/2): tolerates clock skew between issuer and peers. */
  notBefore: Date;
  /** k·R + lifetime. */
  notAfter: Date;
  /** (k+1)·R: when the next window's certificate replaces this one. */
  renewAt: Date;
}

export const DEFAULT_CERT_LIFETIME_MS = 24 * 3_600_000;
const MAX_BACKDATE_MS = 60_000;

export function certWindow(nowMs: number, lifetimeMs: number): CertWindow {
  if (!(Number.isFinite(lifetimeMs) && lifetimeMs > 0))
    throw new Error(`bad certificate lifetime ${lifetimeMs}`);
  const r = (2 * lifetimeMs) / 3;
  const index = Math.floor(nowMs / r);
  const start = index * r;
  return {
    index,
    notBefore: new Date(Math.floor(start - Math.min(MAX_BACKDATE_MS, r / 2))),
    notAfter: new Date(Math.floor(start + lifetimeMs)),
    // Rounded up so that at renewAt the next window has begun, whatever R's fraction.
    renewAt: new Date(Math.ceil((index + 1) * r)),
  };
}

/** `--cert-lifetime`: `24h`, `90m`, `3s`, `500ms` (plain numbers are seconds), in ms. */
export function parseCertLifetime(text: string): number {
  const ms = parseWait(text);
  if (ms === undefined || !(ms > 0)) {
    throw new Error(`bad certificate lifetime ${JSON.stringify(text)} (e.g. 24h, 90m, 3s, 500ms)`);
  }
  return ms;
}
