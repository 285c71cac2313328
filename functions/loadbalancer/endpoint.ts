// The endpoints a cluster balances over, and what every picker shares.

export interface Endpoint {
  readonly address: string;
  readonly port: number;
  /** Load balancing weight, >= 1; default 1. */
  readonly weight?: number;
  /** Health as the control plane reports it (EDS health_status); default true. */
  readonly healthy?: boolean;
}

// Keys are asked for on every pick with exclusions and every least_request comparison.
const keys = new WeakMap<Endpoint, string>();

/** "10.0.0.1:80" or "[::1]:80": the identity of an endpoint, and what hash tables hash. */
export function endpointKey(e: Endpoint): string {
  let k = keys.get(e);
  if (k === undefined) {
    k = e.address.includes(":") ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
    keys.set(e, k);
  }
  return k;
}

export function weightOf(e: Endpoint): number {
  const w = e.weight ?? 1;
  return Number.isFinite(w) && w > 1 ? w : 1;
}

export interface PickContext {
  /** Hash of the request's affinity key (ring_hash, maglev); see hashSourceAddress. */
  hash?: number;
  /** 0 for the first try; hash pickers perturb the hash on retries, as Envoy does. */
  attempt?: number;
  /** Endpoint keys not to pick (already tried); a picker avoids them while others remain. */
  exclude?: ReadonlySet<string>;
}

/** A picker is built for one endpoint list and one policy; rebuilt when the list or health changes. */
export interface Picker {
  pick(ctx?: PickContext): Endpoint | undefined;
}

export type RandomSource = () => number;

export function allEqualWeights(endpoints: readonly Endpoint[]): boolean {
  const w = endpoints.length > 0 ? weightOf(endpoints[0] as Endpoint) : 1;
  return endpoints.every((e) => weightOf(e) === w);
}

/** With an exclusion set, the first endpoint from `start` onwards (cyclically) not excluded. */
export function firstNotExcluded(
  endpoints: readonly Endpoint[],
  start: number,
  exclude: ReadonlySet<string> | undefined,
): Endpoint | undefined {
  const n = endpoints.length;
  if (n === 0) return undefined;
  if (!exclude || exclude.size === 0) return endpoints[start % n];
  for (let i = 0; i < n; i++) {
    const e = endpoints[(start + i) % n] as Endpoint;
    if (!exclude.has(endpointKey(e))) return e;
  }
  return endpoints[start % n];
}
