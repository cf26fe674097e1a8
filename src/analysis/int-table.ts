/**
 * A hash table from three int32 keys to a non-negative int, open-addressed in one Int32Array:
 * a slot is the three keys and the value + 1 (0: empty), so a lookup reads one cache line and
 * makes no object. Made for the quarter million locations of a big log (log-sites.ts,
 * symbolize-report.ts), where a Map of objects or strings is what memory cannot hold.
 */
export class IntTable {
  private bits: number;
  private slots: Int32Array;
  private n = 0;

  /** expected: how many keys it will likely hold, so that it need not grow to them one doubling at a time */
  constructor(expected = 0) {
    this.bits = Math.max(12, 32 - Math.clz32(expected * 2));
    this.slots = new Int32Array(4 << this.bits);
  }

  /** The value under the keys, or −1. */
  get(a: number, b: number, c: number): number {
    return this.slots[this.slotOf(a, b, c) + 3] - 1;
  }

  /** Sets the value under keys that are not in the table yet. */
  add(a: number, b: number, c: number, value: number): void {
    const at = this.slotOf(a, b, c);
    this.slots[at] = a;
    this.slots[at + 1] = b;
    this.slots[at + 2] = c;
    this.slots[at + 3] = value + 1;
    if (++this.n * 2 > 1 << this.bits) this.grow();
  }

  /** The slot (its index in `slots`) holding the keys, or the empty one where they go. */
  private slotOf(a: number, b: number, c: number): number {
    const slots = this.slots;
    const mask = (1 << this.bits) - 1;
    // the product's high bits: its low ones depend only on the keys' low bits
    let i = Math.imul(a ^ Math.imul(b ^ Math.imul(c, 0xc2b2ae35), 0x85ebca6b), 0x9e3779b1) >>> (32 - this.bits);
    for (;;) {
      const at = i * 4;
      if (slots[at + 3] === 0 || (slots[at] === a && slots[at + 1] === b && slots[at + 2] === c)) return at;
      i = (i + 1) & mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.bits++;
    this.slots = new Int32Array(4 << this.bits);
    const slots = this.slots;
    for (let at = 0; at < old.length; at += 4) {
      if (old[at + 3] === 0) continue;
      const to = this.slotOf(old[at], old[at + 1], old[at + 2]);
      slots[to] = old[at];
      slots[to + 1] = old[at + 1];
      slots[to + 2] = old[at + 2];
      slots[to + 3] = old[at + 3];
    }
  }
}
