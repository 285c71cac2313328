// round_robin as Envoy does it: equal weights rotate through the list from a random start; unequal
// weights go through an EDF schedule, so weight 3 is picked three times for every pick of weight 1,
// interleaved rather than in runs.
import { EdfScheduler } from "./edf-scheduler.js";
import {
  allEqualWeights,
  type Endpoint,
  endpointKey,
  firstNotExcluded,
  type PickContext,
  type Picker,
  type RandomSource,
  weightOf,
} from "./endpoint.js";

export class RoundRobinPicker implements Picker {
  private next: number;
  private readonly edf: EdfScheduler<Endpoint> | undefined;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    random: RandomSource = Math.random,
  ) {
    const n = endpoints.length;
    this.next = n > 0 ? Math.floor(random() * n) : 0;
    if (n > 0 && !allEqualWeights(endpoints)) {
      this.edf = new EdfScheduler();
      for (const e of endpoints) this.edf.add(e, weightOf(e));
      // A random number of picks up front, so that hosts restarting together do not all send the
      // same sequence (Envoy seeds its scheduler the same way).
      for (let i = 0; i < this.next; i++) this.edf.pickAndAdd(weightOf);
    }
  }

  pick(ctx?: PickContext): Endpoint | undefined {
    const n = this.endpoints.length;
    if (n === 0) return undefined;
    if (!this.edf) {
      const e = firstNotExcluded(this.endpoints, this.next, ctx?.exclude);
      this.next = (this.next + 1) % n;
      return e;
    }
    const exclude = ctx?.exclude;
    let e = this.edf.pickAndAdd(weightOf);
    for (let i = 1; exclude && e && exclude.has(endpointKey(e)) && i < n * 4; i++)
      e = this.edf.pickAndAdd(weightOf);
    return e;
  }
}
