// A counting limit whose permits are leases: release is idempotent, so a connection that closes and
// errors (both fire) gives its slot back once. Backs connection_limit and the max_connections breaker.
export interface Lease {
  release(): void;
}

export class LeaseCounter {
  private count = 0;

  /** Raising or lowering the limit applies to the next tryAcquire; leases held are kept. */
  constructor(public limit: number) {}

  get active(): number {
    return this.count;
  }

  /** A lease when under the limit, else undefined. */
  tryAcquire(): Lease | undefined {
    if (this.count >= this.limit) return undefined;
    this.count++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.count--;
      },
    };
  }
}
