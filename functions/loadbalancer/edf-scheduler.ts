// Earliest deadline first over weighted entries (Envoy's EdfScheduler): an entry of weight w is due
// every 1/w; a pick pops the earliest deadline and re-adds it one period later. O(log n) per pick,
// and a weight may change at re-add (least_request's effective weights).
export class EdfScheduler<T> {
  // Binary min-heap on (deadline, order): order breaks ties by insertion, keeping picks deterministic.
  private readonly heap: { item: T; deadline: number; order: number }[] = [];
  private now = 0;
  private order = 0;

  get size(): number {
    return this.heap.length;
  }

  add(item: T, weight: number): void {
    this.push({ item, deadline: this.now + 1 / weight, order: this.order++ });
  }

  /** Takes the earliest entry and re-queues it with weightNow(item); undefined when empty. */
  pickAndAdd(weightNow: (item: T) => number): T | undefined {
    const top = this.heap[0];
    if (!top) return undefined;
    // Re-queue in place: the root's deadline only grows, so one sift down restores the heap.
    this.now = top.deadline;
    top.deadline = this.now + 1 / weightNow(top.item);
    top.order = this.order++;
    this.down(0);
    return top.item;
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a] as { deadline: number; order: number };
    const y = this.heap[b] as { deadline: number; order: number };
    return x.deadline < y.deadline || (x.deadline === y.deadline && x.order < y.order);
  }

  private swap(a: number, b: number): void {
    const t = this.heap[a] as { item: T; deadline: number; order: number };
    this.heap[a] = this.heap[b] as { item: T; deadline: number; order: number };
    this.heap[b] = t;
  }

  private push(e: { item: T; deadline: number; order: number }): void {
    this.heap.push(e);
    let i = this.heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const n = this.heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(l, m)) m = l;
      if (r < n && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
