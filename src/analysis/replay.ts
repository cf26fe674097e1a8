/**
 * Plays a recording into an Aggregator on a virtual clock, so the live
 * screen (or --plain/--json) shows it as it happened, `speed` times faster.
 * Blocks are read as the clock reaches them, so a recording of any size
 * plays in the memory of one block. The clock is injected: tests replay a
 * minute in no time.
 */
import { Aggregator } from './aggregate.js';
import type { RawToRecord } from './snapshot.js';
import { makeNaming, type Naming } from '../model/naming.js';
import { decodeEvent, type CountRecord } from '../model/decode.js';
import { toRecord } from '../model/drop.js';
import { RecordedSymbols, recordingReasons, recordNs, type RecordingItem, type RecordingReader } from '../formats/recording.js';

export class ReplayFeed {
  readonly agg: Aggregator;
  readonly naming: Naming;
  private readonly start: number;
  private readonly t0: number;
  private readonly items: Generator<RecordingItem>;
  /** the item the clock has not reached yet, and how far into its drops we are */
  private pending: RecordingItem | null = null;
  private at = 0;
  private held = false;
  private done = false;
  /** the recording's last moment, once everything has been read */
  private end = Infinity;
  private last: number;
  private delivered = 0;
  private learned = 0;
  private latest: CountRecord[] = [];
  private readonly syms;
  private readonly reasons;
  private readonly wallOffsetMs: number;
  private readonly msOf: (ns: bigint) => number;
  private readonly rawToRecord: RawToRecord;

  constructor(
    private readonly rec: RecordingReader,
    private readonly speed = 1,
    private readonly clock: () => number = Date.now,
  ) {
    const t = rec.tables;
    this.reasons = recordingReasons(t.meta);
    this.syms = new RecordedSymbols(t.symbols);
    this.naming = makeNaming(this.syms, this.reasons, t.netns, (ns) => t.pods.get(ns) ?? null, (id) => t.cgroups.get(id) ?? null);
    this.agg = new Aggregator(this.naming, undefined, t.meta.sample ?? 1);
    this.start = Date.parse(t.meta.startTime);
    this.last = this.start;
    this.items = rec.items();
    const offset = BigInt(t.meta.wallOffsetNs);
    this.wallOffsetMs = Number(offset / 1_000_000n);
    this.msOf = (ns) => Number((ns + offset) / 1_000_000n);
    this.rawToRecord = (buf, i, stride) => toRecord(decodeEvent(buf, i, stride), this.syms, this.reasons, offset);
    this.t0 = clock();
    this.agg.addCounts(this.start, []);
  }

  /** The recording's time now: start + elapsed × speed, held at the end. */
  now(): number {
    return Math.min(this.end, this.start + (this.clock() - this.t0) * this.speed);
  }

  /** True once everything recorded has been played. */
  get finished(): boolean {
    return this.done && this.pending === null;
  }

  private next(): RecordingItem | null {
    if (this.pending) return this.pending;
    const r = this.items.next();
    if (r.done) {
      this.done = true;
      this.end = this.last;
      return null;
    }
    this.pending = r.value;
    this.at = 0;
    this.held = false;
    return this.pending;
  }

  /** Feeds everything recorded up to the virtual now; returns the cumulative counts then. */
  sample(): CountRecord[] {
    const now = this.now();
    const t = this.rec.tables;
    for (let it = this.next(); it; it = this.next()) {
      if (it.kind === 'counts') {
        if (it.snapshot.time > now) break;
        this.agg.addCounts(it.snapshot.time, it.snapshot.records);
        this.latest = it.snapshot.records;
        this.last = Math.max(this.last, it.snapshot.time);
        this.pending = null;
        continue;
      }
      let j = this.at;
      while (j < it.count && this.msOf(recordNs(it.buf, j, it.stride)) <= now) j++;
      if (j > this.at) {
        this.agg.addBatch(it.buf.subarray(this.at * it.stride, j * it.stride), it.stride, j - this.at, this.wallOffsetMs, this.rawToRecord);
        this.delivered += j - this.at;
        this.last = Math.max(this.last, this.msOf(recordNs(it.buf, j - 1, it.stride)));
        this.at = j;
      }
      if (j < it.count) {
        // held across reads: the source's window will be reused
        if (!this.held) {
          it.buf = Buffer.from(it.buf);
          this.held = true;
        }
        break;
      }
      this.pending = null;
    }
    // names arrive with the blocks: teach them as they come (cheap: a handful per block)
    for (; this.learned < t.interfaces.length; this.learned++) this.agg.learnInterface(...t.interfaces[this.learned]);
    return this.latest;
  }

  stats(): { delivered: number; lost: number } {
    return { delivered: this.delivered, lost: this.rec.tables.stats?.lost ?? 0 };
  }
}
