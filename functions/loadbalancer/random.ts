// random: uniform for equal weights, else by weight through a binary search of cumulative weights.
import {
  allEqualWeights,
  type Endpoint,
  firstNotExcluded,
  type PickContext,
  type Picker,
  type RandomSource,
  weightOf,
} from "./endpoint.js";

export class RandomPicker implements Picker {
  private readonly cumulative: Float64Array | undefined;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly random: RandomSource = Math.random,
  ) {
    if (!allEqualWeights(endpoints)) {
      this.cumulative = new Float64Array(endpoints.length);
      let sum = 0;
      endpoints.forEach((e, i) => {
        sum += weightOf(e);
        (this.cumulative as Float64Array)[i] = sum;
      });
    }
  }

  pick(ctx?: PickContext): Endpoint | undefined {
    const n = this.endpoints.length;
    if (n === 0) return undefined;
    const c = this.cumulative;
    let i: number;
    if (!c) {
      i = Math.floor(this.random() * n);
    } else {
      const x = this.random() * (c[n - 1] as number);
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((c[mid] as number) > x) hi = mid;
        else lo = mid + 1;
      }
      i = lo;
    }
    return firstNotExcluded(this.endpoints, i, ctx?.exclude);
  }
}
