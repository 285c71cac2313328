// maglev (Eisenbud et al., NSDI 2016) with Envoy's semantics: endpoints sorted by key; each gets
// offset = h0(key) mod M and skip = h1(key) mod (M - 1) + 1; rounds fill the table along each
// endpoint's permutation, an endpoint taking a slot in a round only while
// round * weight >= its target (so weight 1:3 fills 1:3). M must be prime; default 65537.
// A lookup is one array read.
import { SDK_ERROR, SdkError } from "../sdk/errors.js";
import {
  type Endpoint,
  endpointKey,
  type PickContext,
  type Picker,
  type RandomSource,
  weightOf,
} from "./endpoint.js";
import { murmur3 } from "./hash.js";

export const MAGLEV_DEFAULT_TABLE_SIZE = 65537;

export interface MaglevOptions {
  tableSize?: number;
  random?: RandomSource;
}

export function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

export class MaglevPicker implements Picker {
  private readonly table: Uint32Array;
  private readonly sorted: Endpoint[];
  private readonly size: number;
  private readonly random: RandomSource;

  constructor(endpoints: readonly Endpoint[], options: MaglevOptions = {}) {
    const m = options.tableSize ?? MAGLEV_DEFAULT_TABLE_SIZE;
    if (!isPrime(m)) throw new SdkError(SDK_ERROR.invalidArgument, `tableSize: ${m} is not prime`);
    this.size = m;
    this.random = options.random ?? Math.random;
    const keyed = endpoints
      .map((e) => ({ e, key: endpointKey(e) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.sorted = keyed.map((k) => k.e);
    this.table = new Uint32Array(keyed.length === 0 ? 0 : m);
    if (keyed.length === 0) return;

    const total = keyed.reduce((s, k) => s + weightOf(k.e), 0);
    const n = keyed.length;
    const offset = new Float64Array(n);
    const skip = new Float64Array(n);
    const weight = new Float64Array(n);
    const target = new Float64Array(n);
    const next = new Float64Array(n);
    let maxWeight = 0;
    keyed.forEach((k, i) => {
      offset[i] = murmur3(k.key, 0) % m;
      skip[i] = (murmur3(k.key, 1) % (m - 1)) + 1;
      weight[i] = weightOf(k.e) / total;
      maxWeight = Math.max(maxWeight, weight[i] as number);
    });
    const filled = new Uint8Array(m);
    let count = 0;
    for (let round = 1; count < m; round++) {
      for (let i = 0; i < n && count < m; i++) {
        if (round * (weight[i] as number) < (target[i] as number)) continue;
        target[i] = (target[i] as number) + maxWeight;
        let c = ((offset[i] as number) + (skip[i] as number) * (next[i] as number)) % m;
        while (filled[c]) {
          next[i] = (next[i] as number) + 1;
          c = ((offset[i] as number) + (skip[i] as number) * (next[i] as number)) % m;
        }
        filled[c] = 1;
        this.table[c] = i;
        next[i] = (next[i] as number) + 1;
        count++;
      }
    }
  }

  /** Table slots per endpoint, in the endpoints' key order: for tests and stats. */
  slotsPerEndpoint(): Map<string, number> {
    const out = new Map<string, number>();
    for (const i of this.table) {
      const k = endpointKey(this.sorted[i] as Endpoint);
      out.set(k, (out.get(k) ?? 0) + 1);
    }
    return out;
  }

  pick(ctx?: PickContext): Endpoint | undefined {
    if (this.sorted.length === 0) return undefined;
    const base = ctx?.hash ?? Math.floor(this.random() * 0x100000000);
    const exclude = ctx?.exclude;
    let attempt = ctx?.attempt ?? 0;
    // With exclusions, keep perturbing the hash as retries would, then give up on affinity.
    for (let tries = 0; tries < 16; tries++, attempt++) {
      const h = attempt > 0 ? (base ^ (0x100000000 - attempt)) >>> 0 : base;
      const e = this.sorted[this.table[h % this.size] as number] as Endpoint;
      if (!exclude?.has(endpointKey(e))) return e;
    }
    return this.sorted.find((e) => !exclude?.has(endpointKey(e))) ?? this.sorted[0];
  }
}
