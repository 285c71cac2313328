// A binary trie over address prefixes, stored flat in typed arrays once built: a lookup walks at most
// 33 (IPv4) or 129 (IPv6) nodes whatever the number of rules, touching two small arrays.
import { type Cidr, cidrBit } from "./cidr.js";

export class PrefixTrieBuilder<T> {
  private readonly kids: number[] = [0, 0];
  private readonly values = new Map<number, T[]>();

  insert(c: Cidr, value: T): void {
    let node = 0;
    for (let i = 0; i < c.prefix; i++) {
      const k = 2 * node + cidrBit(c, i);
      let child = this.kids[k] as number;
      if (child === 0) {
        child = this.kids.length / 2;
        this.kids.push(0, 0);
        this.kids[k] = child;
      }
      node = child;
    }
    const list = this.values.get(node);
    if (list) list.push(value);
    else this.values.set(node, [value]);
  }

  /** Freezes the shape; `slot` turns each node's values into the payload index the trie stores. */
  build(slot: (values: T[]) => number): PrefixTrie {
    const nodes = this.kids.length / 2;
    const slots = new Int32Array(nodes).fill(-1);
    for (const [node, values] of this.values) slots[node] = slot(values);
    return new PrefixTrie(Int32Array.from(this.kids), slots);
  }
}

export class PrefixTrie {
  constructor(
    /** kids[2n + bit] is node n's child for that bit; 0 means none (the root is never a child). */
    readonly kids: Int32Array,
    /** Payload slot per node, -1 when no value ends there. */
    readonly slots: Int32Array,
  ) {}

  get size(): number {
    return this.slots.length;
  }
}
