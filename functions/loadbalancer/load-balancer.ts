// A cluster's balancer: the endpoint list, each endpoint's health from its three sources (control
// plane, active health check, outlier ejection), and a picker for the policy rebuilt whenever the
// set of endpoints to balance over changes.
//
// Panic threshold, as Envoy's healthy_panic_threshold: when fewer than panicThresholdPercent of the
// endpoints are available, the balancer balances over all of them, healthy or not, on the grounds
// that a few surviving endpoints would be overrun and health checks can be wrong. Default 50%.
// 0 disables panic mode: with no available endpoint, pick() returns undefined and the connection fails.
import { type Endpoint, endpointKey, type PickContext, type Picker, type RandomSource } from "./endpoint.js";
import { murmur3 } from "./hash.js";
import { LeastRequestPicker } from "./least-request.js";
import { MaglevPicker } from "./maglev.js";
import { RandomPicker } from "./random.js";
import { RingHashPicker } from "./ring-hash.js";
import { RoundRobinPicker } from "./round-robin.js";

export const LB_POLICIES = ["round_robin", "least_request", "ring_hash", "maglev", "random"] as const;
export type LbPolicy = (typeof LB_POLICIES)[number];

export interface LoadBalancerOptions {
  policy: LbPolicy;
  /** Percent, 0-100; default 50. */
  panicThresholdPercent?: number;
  ringHash?: { minRingSize?: number; maxRingSize?: number };
  maglev?: { tableSize?: number };
  leastRequest?: { choiceCount?: number; activeRequestBias?: number };
  random?: RandomSource;
}

/** The affinity hash ring_hash and maglev use for a client: its IP, without the port. */
export function hashSourceAddress(address: string): number {
  return murmur3(address, 0);
}

interface State {
  endpoint: Endpoint;
  activeHealthy: boolean;
  ejected: boolean;
  active: number;
}

export class LoadBalancer {
  private states = new Map<string, State>();
  private picker: Picker | undefined;
  private panicking = false;
  private availableCount = 0;

  constructor(private readonly options: LoadBalancerOptions) {}

  /** Replaces the endpoint list (an EDS update). Health and active counts carry over by key. */
  setEndpoints(endpoints: readonly Endpoint[]): void {
    const next = new Map<string, State>();
    for (const e of endpoints) {
      const key = endpointKey(e);
      const old = this.states.get(key);
      next.set(key, {
        endpoint: e,
        activeHealthy: old?.activeHealthy ?? true,
        ejected: old?.ejected ?? false,
        active: old?.active ?? 0,
      });
    }
    this.states = next;
    this.rebuild();
  }

  /** Active health check verdict; endpoints without a health checker stay healthy. */
  setActiveHealth(key: string, healthy: boolean): void {
    const s = this.states.get(key);
    if (!s || s.activeHealthy === healthy) return;
    s.activeHealthy = healthy;
    this.rebuild();
  }

  setEjected(key: string, ejected: boolean): void {
    const s = this.states.get(key);
    if (!s || s.ejected === ejected) return;
    s.ejected = ejected;
    this.rebuild();
  }

  isAvailable(key: string): boolean {
    const s = this.states.get(key);
    return !!s && this.available(s);
  }

  /** True while balancing over every endpoint because too few are available. */
  get inPanic(): boolean {
    return this.panicking;
  }

  get size(): number {
    return this.states.size;
  }

  get availableSize(): number {
    return this.availableCount;
  }

  /** Connection accounting for least_request: call on connect, and once on close. */
  connectionOpened(e: Endpoint): void {
    const s = this.states.get(endpointKey(e));
    if (s) s.active++;
  }

  connectionClosed(e: Endpoint): void {
    const s = this.states.get(endpointKey(e));
    if (s && s.active > 0) s.active--;
  }

  activeConnections(e: Endpoint): number {
    return this.states.get(endpointKey(e))?.active ?? 0;
  }

  pick(ctx?: PickContext & { sourceAddress?: string }): Endpoint | undefined {
    if (!this.picker) return undefined;
    if (ctx?.sourceAddress !== undefined && ctx.hash === undefined) {
      return this.picker.pick({ ...ctx, hash: hashSourceAddress(ctx.sourceAddress) });
    }
    return this.picker.pick(ctx);
  }

  private available(s: State): boolean {
    return s.endpoint.healthy !== false && s.activeHealthy && !s.ejected;
  }

  private rebuild(): void {
    const all: Endpoint[] = [];
    const up: Endpoint[] = [];
    for (const s of this.states.values()) {
      all.push(s.endpoint);
      if (this.available(s)) up.push(s.endpoint);
    }
    this.availableCount = up.length;
    const threshold = this.options.panicThresholdPercent ?? 50;
    this.panicking = all.length > 0 && threshold > 0 && (100 * up.length) / all.length < threshold;
    const pool = this.panicking ? all : up;
    this.picker = pool.length === 0 ? undefined : this.build(pool);
  }

  private build(endpoints: Endpoint[]): Picker {
    const o = this.options;
    switch (o.policy) {
      case "round_robin":
        return new RoundRobinPicker(endpoints, o.random);
      case "random":
        return new RandomPicker(endpoints, o.random);
      case "least_request":
        return new LeastRequestPicker(endpoints, {
          activeOf: (e) => this.activeConnections(e),
          choiceCount: o.leastRequest?.choiceCount,
          activeRequestBias: o.leastRequest?.activeRequestBias,
          random: o.random,
        });
      case "ring_hash":
        return new RingHashPicker(endpoints, { ...o.ringHash, random: o.random });
      case "maglev":
        return new MaglevPicker(endpoints, { ...o.maglev, random: o.random });
    }
  }
}
