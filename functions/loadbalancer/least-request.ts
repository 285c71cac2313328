// least_request as Envoy does it. Equal weights: the power of two choices (choiceCount random
// endpoints, the one with the fewest active connections wins). Unequal weights: EDF where an
// endpoint's weight is weight / (active + 1)^activeRequestBias, re-evaluated at every pick.
import { EdfScheduler } from "./edf-scheduler.js";
import {
  allEqualWeights,
  type Endpoint,
  endpointKey,
  type PickContext,
  type Picker,
  type RandomSource,
  weightOf,
} from "./endpoint.js";

export interface LeastRequestOptions {
  /** Active connections (or requests) on an endpoint now. */
  activeOf: (e: Endpoint) => number;
  /** Endpoints sampled per pick with equal weights; Envoy's choice_count, default 2. */
  choiceCount?: number;
  /** Envoy's active_request_bias, default 1. 0 makes it weighted round robin. */
  activeRequestBias?: number;
  random?: RandomSource;
}

export class LeastRequestPicker implements Picker {
  private readonly edf: EdfScheduler<Endpoint> | undefined;
  private readonly choices: number;
  private readonly random: RandomSource;
  private readonly effectiveWeight: (e: Endpoint) => number;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly options: LeastRequestOptions,
  ) {
    this.choices = Math.max(2, options.choiceCount ?? 2);
    this.random = options.random ?? Math.random;
    const bias = options.activeRequestBias ?? 1;
    this.effectiveWeight =
      bias === 1
        ? (e) => weightOf(e) / (options.activeOf(e) + 1)
        : (e) => weightOf(e) / (options.activeOf(e) + 1) ** bias;
    if (endpoints.length > 0 && !allEqualWeights(endpoints)) {
      this.edf = new EdfScheduler();
      for (const e of endpoints) this.edf.add(e, this.effectiveWeight(e));
    }
  }

  pick(ctx?: PickContext): Endpoint | undefined {
    const n = this.endpoints.length;
    if (n === 0) return undefined;
    const exclude = ctx?.exclude;
    if (this.edf) {
      let e = this.edf.pickAndAdd(this.effectiveWeight);
      for (let i = 1; exclude && e && exclude.has(endpointKey(e)) && i < n * 4; i++) {
        e = this.edf.pickAndAdd(this.effectiveWeight);
      }
      return e;
    }
    let best: Endpoint | undefined;
    let bestActive = Number.POSITIVE_INFINITY;
    for (let c = 0; c < this.choices; c++) {
      const e = this.endpoints[Math.floor(this.random() * n)] as Endpoint;
      if (exclude?.has(endpointKey(e))) continue;
      const a = this.options.activeOf(e);
      if (a < bestActive) {
        best = e;
        bestActive = a;
      }
    }
    if (best || !exclude) return best;
    // Every sample was excluded: fall back to a scan for the least loaded one left.
    for (const e of this.endpoints) {
      if (exclude.has(endpointKey(e))) continue;
      const a = this.options.activeOf(e);
      if (a < bestActive) {
        best = e;
        bestActive = a;
      }
    }
    return best ?? this.endpoints[0];
  }
}
