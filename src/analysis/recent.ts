/**
 * The last drops seen as events, for the live screen's "Recent drops": the raw bytes of the
 * last N records kept in a ring (a flood copies bytes, never builds objects), turned into
 * records only when a snapshot shows them.
 */
import type { DropRecord } from '../model/drop.js';
import type { RawToRecord } from './snapshot.js';

export class RecentDrops {
  private recent: DropRecord[] = [];
  /** raw bytes of the last records delivered and not yet shown, in a ring of `size` records */
  private raw: { buf: Buffer; stride: number; next: number; count: number; toRecord: RawToRecord } | null = null;

  constructor(private readonly size = 200) {}

  /** Keeps the last records of a batch (its bytes are copied: the batch lives for the call only). */
  add(buf: Buffer, stride: number, count: number, toRecord: RawToRecord): void {
    const keep = Math.min(count, this.size);
    if (!keep) return;
    let r = this.raw;
    if (!r || r.stride !== stride) {
      this.materialize();
      r = this.raw = { buf: Buffer.alloc(this.size * stride), stride, next: 0, count: 0, toRecord };
    }
    r.toRecord = toRecord;
    // the last `keep` records, in at most two runs (the ring wraps once at most)
    let from = count - keep;
    while (from < count) {
      const run = Math.min(count - from, this.size - r.next);
      buf.copy(r.buf, r.next * stride, from * stride, (from + run) * stride);
      r.next = (r.next + run) % this.size;
      from += run;
    }
    r.count = Math.min(r.count + keep, this.size);
  }

  /** The kept drops as records, oldest first. */
  records(): DropRecord[] {
    this.materialize();
    return this.recent;
  }

  clear(): void {
    this.recent = [];
    if (this.raw) this.raw.count = 0;
  }

  /** Turns the raw records into records, after those already turned. */
  private materialize(): void {
    const r = this.raw;
    if (!r || !r.count) return;
    const first = (r.next - r.count + this.size) % this.size;
    // no push(...records): a spread of a long array overflows the call stack
    for (let k = 0; k < r.count; k++) this.recent.push(r.toRecord(r.buf, (first + k) % this.size, r.stride));
    r.count = 0;
    if (this.recent.length > this.size) this.recent = this.recent.slice(-this.size);
  }
}
