// ring_hash (Ketama-style consistent hashing). A key maps to the first ring entry at or after its
// hash, and each endpoint owns entries in proportion to its weight, the lightest owning at least
// ceil(minRingSize * its share) of them, the ring never exceeding maxRingSize.
//
// Where this differs from Envoy: Envoy scales entries per endpoint exactly to that minimum, so when
// one of 10 endpoints leaves, every survivor grows from 103 to 114 entries and the new entries take
// another ~10% of keys from other survivors. Here the entries per unit of the lightest weight are
// rounded up to a power of two (the ring is between 1x and 2x the minimum), so removing or adding an
// endpoint usually leaves every other endpoint's entries exactly as they were and only moves the
// keys that endpoint held.
import {
  type Endpoint,
  endpointKey,
  type PickContext,
  type Picker,
  type RandomSource,
  weightOf,
} from "./endpoint.js";
import { murmur3 } from "./hash.js";

export interface RingHashOptions {
  /** Envoy's minimum_ring_size, default 1024. */
  minRingSize?: number;
  /** Envoy's maximum_ring_size, default 8M. */
  maxRingSize?: number;
  random?: RandomSource;
}

export class RingHashPicker implements Picker {
  private readonly hashes: Uint32Array;
  private readonly owners: Uint32Array;
  private readonly sorted: Endpoint[];
  private readonly random: RandomSource;

  constructor(endpoints: readonly Endpoint[], options: RingHashOptions = {}) {
    this.random = options.random ?? Math.random;
    const minRing = options.minRingSize ?? 1024;
    const maxRing = options.maxRingSize ?? 8 * 1024 * 1024;
    // Sorted by key, so the ring does not depend on the order EDS lists endpoints in.
    const keyed = endpoints
      .map((e) => ({ e, key: endpointKey(e) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.sorted = keyed.map((k) => k.e);
    if (keyed.length === 0) {
      this.hashes = new Uint32Array(0);
      this.owners = new Uint32Array(0);
      return;
    }
    const total = keyed.reduce((sum, k) => sum + weightOf(k.e), 0);
    const lightest = Math.min(...keyed.map((k) => weightOf(k.e)));
    const perUnit = 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil((lightest / total) * minRing))));
    let counts = keyed.map((k) => Math.max(1, Math.round((perUnit * weightOf(k.e)) / lightest)));
    const size = counts.reduce((a, b) => a + b, 0);
    if (size > maxRing) counts = counts.map((c) => Math.max(1, Math.floor((c * maxRing) / size)));
    const entries: { hash: number; owner: number }[] = [];
    keyed.forEach((k, owner) => {
      for (let i = 0; i < (counts[owner] as number); i++)
        entries.push({ hash: murmur3(`${k.key}_${i}`), owner });
    });
    entries.sort((a, b) => a.hash - b.hash || a.owner - b.owner);
    this.hashes = Uint32Array.from(entries, (x) => x.hash);
    this.owners = Uint32Array.from(entries, (x) => x.owner);
  }

  get ringSize(): number {
    return this.hashes.length;
  }

  pick(ctx?: PickContext): Endpoint | undefined {
    const n = this.hashes.length;
    if (n === 0) return undefined;
    let h = ctx?.hash ?? Math.floor(this.random() * 0x100000000);
    const attempt = ctx?.attempt ?? 0;
    if (attempt > 0) h = (h ^ (0x100000000 - attempt)) >>> 0; // Envoy: hash ^= ~0 - attempt + 1
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.hashes[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    const start = lo === n ? 0 : lo;
    const exclude = ctx?.exclude;
    let e = this.sorted[this.owners[start] as number] as Endpoint;
    if (!exclude || exclude.size === 0) return e;
    // Walk on clockwise: the next distinct endpoint is where the key goes if this one were removed.
    for (let i = 1; i < n && exclude.has(endpointKey(e)); i++)
      e = this.sorted[this.owners[(start + i) % n] as number] as Endpoint;
    return e;
  }
}
