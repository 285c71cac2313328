// Destination ports of the rules at one trie node, flattened into disjoint segments that each name
// the first rule (lowest evaluation index) covering them: a port lookup is one binary search.
import type { PortRange } from "./policy.js";

export interface PortEntry {
  /** Evaluation index of the rule. */
  rule: number;
  /** undefined: every port. */
  ports?: readonly PortRange[];
}

export interface PortSegments {
  /** Ascending segment starts; starts[0] is 0, the last segment ends at 65535. */
  starts: number[];
  /** Rule owning each segment, -1 for none. */
  owners: number[];
}

const ALL_PORTS: readonly PortRange[] = [{ start: 0, end: 65535 }];

function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Paints rules onto elementary segments in evaluation order; a union-find "next unpainted" pointer
 * makes each segment painted once, so building is O(S log S) for S range endpoints.
 */
export function buildPortSegments(entries: readonly PortEntry[]): PortSegments {
  const sorted = [...entries].sort((a, b) => a.rule - b.rule);
  const cuts = new Set<number>([0]);
  for (const e of sorted) {
    for (const r of e.ports ?? ALL_PORTS) {
      if (r.start > r.end) continue;
      cuts.add(r.start);
      if (r.end < 65535) cuts.add(r.end + 1);
    }
  }
  const bounds = [...cuts].sort((a, b) => a - b);
  const m = bounds.length;
  const owner = new Array<number>(m).fill(-1);
  const next = Array.from({ length: m + 1 }, (_, i) => i);
  const find = (i: number): number => {
    let root = i;
    while (next[root] !== root) root = next[root] as number;
    while (next[i] !== root) {
      const up = next[i] as number;
      next[i] = root;
      i = up;
    }
    return root;
  };
  for (const e of sorted) {
    for (const r of e.ports ?? ALL_PORTS) {
      if (r.start > r.end) continue;
      const hi = r.end >= 65535 ? m : lowerBound(bounds, r.end + 1);
      for (let i = find(lowerBound(bounds, r.start)); i < hi; i = find(i + 1)) {
        owner[i] = e.rule;
        next[i] = i + 1;
      }
    }
  }
  const starts: number[] = [];
  const owners: number[] = [];
  for (let i = 0; i < m; i++) {
    if (owners.length > 0 && owners[owners.length - 1] === owner[i]) continue;
    starts.push(bounds[i] as number);
    owners.push(owner[i] as number);
  }
  return { starts, owners };
}
