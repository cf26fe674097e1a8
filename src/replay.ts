/**
 * Plays a recording into an Aggregator on a virtual clock, so the live
 * screen (or --plain/--json) shows it as it happened, `speed` times faster.
 * The clock is injected: tests replay a minute in no time.
 */
import { Aggregator, type Naming } from './aggregate.js';
import type { CountRecord } from './decode.js';
import { toRecord } from './drop.js';
import { makeNaming } from './naming.js';
import { eventTime, RecordedSymbols, recordingReasons, type Recording } from './recording.js';

export class ReplayFeed {
  readonly agg: Aggregator;
  readonly naming: Naming;
  private readonly start: number;
  private readonly end: number;
  private readonly t0: number;
  private ci = 0;
  private ei = 0;
  private latest: CountRecord[] = [];
  private readonly events;
  private readonly syms;
  private readonly reasons;

  constructor(
    private readonly rec: Recording,
    private readonly speed = 1,
    private readonly clock: () => number = Date.now,
  ) {
    this.reasons = recordingReasons(rec.meta);
    this.syms = new RecordedSymbols(rec.symbols);
    this.naming = makeNaming(this.syms, this.reasons, rec.netns, (ns) => rec.pods.get(ns) ?? null);
    this.agg = new Aggregator(this.naming, undefined, rec.meta.sample ?? 1);
    for (const [ns, ifindex, name] of rec.interfaces) this.agg.learnInterface(ns, ifindex, name);
    this.start = Date.parse(rec.meta.startTime);
    this.events = rec.events.map((d) => ({ d, t: eventTime(rec.meta, d) })).sort((a, b) => a.t - b.t);
    const lastCount = rec.counts.length ? rec.counts[rec.counts.length - 1].time : this.start;
    const lastEvent = this.events.length ? this.events[this.events.length - 1].t : this.start;
    this.end = Math.max(lastCount, lastEvent, this.start);
    this.t0 = clock();
    this.agg.addCounts(this.start, []);
  }

  /** The recording's time now: start + elapsed × speed, held at the end. */
  now(): number {
    return Math.min(this.end, this.start + (this.clock() - this.t0) * this.speed);
  }

  get finished(): boolean {
    return this.now() >= this.end;
  }

  /** Feeds everything recorded up to the virtual now; returns the cumulative counts then. */
  sample(): CountRecord[] {
    const now = this.now();
    const offset = BigInt(this.rec.meta.wallOffsetNs);
    const batch = [];
    while (this.ei < this.events.length && this.events[this.ei].t <= now) batch.push(this.events[this.ei++].d);
    if (batch.length) {
      this.agg.addDrops(batch, (d) => eventTime(this.rec.meta, d), (d) => toRecord(d, this.syms, this.reasons, offset));
    }
    while (this.ci < this.rec.counts.length && this.rec.counts[this.ci].time <= now) {
      const c = this.rec.counts[this.ci++];
      this.agg.addCounts(c.time, c.records);
      this.latest = c.records;
    }
    return this.latest;
  }

  stats(): { delivered: number; lost: number } {
    return { delivered: this.ei, lost: this.rec.stats?.lost ?? 0 };
  }
}
