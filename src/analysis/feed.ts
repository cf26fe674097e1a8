/**
 * An Aggregator fed as time passes, from the kernel (a capture run) or from
 * a recording (a replay): what `live` shows and `diagnose` judges. One
 * ingestion path either way: raw event batches and cumulative counts.
 */
import { buildFilters, describeFilters, parseFilterArgs, type FilterOptions } from '../capture/filters.js';
import { CaptureRun, Lifetime, type CaptureSummary, type Consumer, type EventBatch, type RunControl, type RunOptions } from '../capture/run.js';
import type { TracerConfig } from '../capture/config.js';
import { damageNote, recordingReasons, type RecordingReader } from '../formats/recording.js';
import { decodeEvent, stackFrames, type CountRecord, type TrapCount } from '../model/decode.js';
import { toRecord } from '../model/drop.js';
import type { SymbolLookup } from '../model/kallsyms.js';
import { netnsLabel, type Naming } from '../model/naming.js';
import type { ReasonTable } from '../model/reasons.js';
import { Aggregator } from './aggregate.js';
import { formatStacks, StackCounts } from './stacks.js';
import { formatPaths, PathCounts } from './paths.js';
import type { RawToRecord } from './snapshot.js';
import { ReplayFeed } from './replay.js';

/** The consumer that keeps an Aggregator: events fold into flows, counts into rates. */
export class AggregateConsumer implements Consumer {
  agg: Aggregator;
  private wallOffsetMs = 0;
  private toRecord: RawToRecord = () => {
    throw new Error('no capture attached');
  };

  /** with --stack: the kernel stacks of the events, per drop site */
  stacks: StackCounts | null = null;
  /** with --path: the paths of the dropped packets */
  paths: PathCounts | null = null;
  private frames = new Map<number, bigint[]>();
  private run: RunControl | null = null;

  constructor(
    readonly events: boolean,
    private readonly naming: Naming,
    private readonly syms: SymbolLookup | null,
    private readonly reasons: ReasonTable,
  ) {
    this.agg = new Aggregator(naming);
  }

  /** A new tracer (also after a filter change) counts from zero: so does a new aggregator. */
  attached(run: RunControl): void {
    this.run = run;
    this.stacks = run.config.stack ? new StackCounts() : null;
    this.paths = run.config.packetPath ? new PathCounts(this.syms, this.reasons, netnsLabel(this.naming)) : null;
    this.frames.clear();
    const offset = run.wallOffset;
    this.wallOffsetMs = Number(offset / 1_000_000n);
    this.toRecord = (buf, i, stride) => toRecord(decodeEvent(buf, i, stride), this.syms, this.reasons, offset);
    this.agg = new Aggregator(this.naming, undefined, run.config.sample ?? 1);
    this.agg.addCounts(Date.now(), []);
  }

  batch(b: EventBatch): void {
    this.agg.addBatch(b.buf, b.stride, b.count, this.wallOffsetMs, this.toRecord);
    this.stacks?.add(b.buf, b.stride, b.count, this.run?.config.sample ?? 1);
    this.paths?.add(b.buf, b.stride, b.count, this.run?.config.sample ?? 1);
  }

  /** The paths of the drops at a site (its symbol, as rows name it), as text; null without --path. */
  pathText(site: string): string | null {
    if (!this.paths) return null;
    const rows = this.paths.summary(1000).rows.filter((r) => r.site === site);
    return rows.length ? formatPaths({ rows: rows.slice(0, 5), noSteps: 0, other: 0 }) : 'no path seen at this site yet';
  }

  /** The stacks seen at a drop site (its symbol, as rows name it), as text; null without --stack. */
  stackText(site: string): string | null {
    if (!this.stacks || !this.run) return null;
    const run = this.run;
    const sites = this.stacks.sites(this.syms, (id) => {
      let f = this.frames.get(id);
      if (!f) this.frames.set(id, (f = stackFrames(run.tracer.stack(id))));
      return f;
    });
    const mine = sites.filter((x) => x.site === site);
    return mine.length ? formatStacks(mine) : 'no stack seen at this site yet';
  }

  finish(s: CaptureSummary): void {
    this.agg.addCounts(Date.now(), s.counts);
  }
}

export interface FeedEnd {
  exact: number;
  counts: CountRecord[];
  /** the final devlink trap counts (kernel only) */
  traps?: TrapCount[];
  note: string | null;
}

/** What the live screen and its printers read: the kernel now, or a recording played back. */
export interface Feed {
  readonly agg: Aggregator;
  readonly naming: Naming;
  /** "tp_btf", or what a replay was recorded with */
  readonly attach: string;
  /** one line for stderr: what is being shown */
  readonly describe: string;
  readonly hasReasons: boolean;
  readonly source: 'kernel' | 'replay';
  now(): number;
  /** feeds everything up to now; the cumulative counts then */
  sample(now: number): CountRecord[];
  stats(): { delivered: number; lost: number; missed?: number };
  /** the filters in force, as the user would type them */
  filters(): string;
  /** replaces the filters (kernel only); null, or why not */
  setFilters(text: string): Promise<string | null>;
  /** a replay that has played everything */
  finished(): boolean;
  /** the kernel stacks seen at a drop site (live --stack), as text; null when not recorded */
  stacks?(site: string): string | null;
  /** the paths of the packets dropped at a drop site (live --path), as text; null when not followed */
  paths?(site: string): string | null;
  /** the exact devlink trap counts since attach (kernel only, where the tracepoint is attached) */
  traps?(): TrapCount[];
  /** the one namespace in scope (--netns), else undefined: where counters are read */
  readonly netns?: number;
  /** resolves with the final exact count when the feed ends (stop(), --duration, Ctrl-C); note: what a damaged recording lacks */
  readonly done: Promise<FeedEnd>;
  stop(): void;
}

export interface KernelFeedOptions extends RunOptions {
  config: TracerConfig;
  filters: FilterOptions;
  events: boolean;
  naming: Naming;
  syms: SymbolLookup | null;
  reasons: ReasonTable;
}

export function kernelFeed(o: KernelFeedOptions): Feed {
  const consumer = new AggregateConsumer(o.events, o.naming, o.syms, o.reasons);
  const run = CaptureRun.start(o.config, [consumer], o);
  let filterText = describeFilters(o.filters);
  return {
    get agg() {
      return consumer.agg;
    },
    naming: o.naming,
    attach: run.tracer.path,
    describe: `counting drops via ${run.tracer.path} on ${run.tracer.target}`,
    hasReasons: o.reasons.size > 0,
    source: 'kernel',
    now: () => Date.now(),
    sample(now) {
      const counts = run.counts();
      consumer.agg.addCounts(now, counts);
      return counts;
    },
    stats: () => {
      const s = run.stats();
      return { delivered: s.delivered, lost: s.lost + s.droppedInProcess, missed: s.missed };
    },
    filters: () => filterText,
    async setFilters(text) {
      try {
        const f = parseFilterArgs(text);
        await run.restart(buildFilters(f, o.reasons));
        filterText = describeFilters(f);
        return null;
      } catch (err) {
        return (err as Error).message;
      }
    },
    finished: () => false,
    stacks: (site) => consumer.stackText(site),
    paths: (site) => consumer.pathText(site),
    traps: () => (run.tracer.hardwareTraps ? run.traps() : []),
    netns: o.config.netns,
    done: run.done.then((s) => ({ exact: s.exact, counts: s.counts, traps: s.traps, note: null })),
    stop: () => run.stop(),
  };
}

/** A recording played on a virtual clock, `speed` times faster; its filters were set when it was made. */
export function replayFeed(rec: RecordingReader, file: string, speed: number, lifetime: { duration?: number }): Feed {
  const feed = new ReplayFeed(rec, speed);
  const reasons = recordingReasons(rec.meta);
  let resolve!: (v: FeedEnd) => void;
  const done = new Promise<FeedEnd>((r) => (resolve = r));
  const life = new Lifetime(lifetime, () => {
    const counts = feed.sample();
    const damage = damageNote(rec.tables);
    resolve({ exact: feed.agg.snapshot(feed.now()).total, counts, note: damage && `${file}: ${damage}` });
  });
  return {
    agg: feed.agg,
    naming: feed.naming,
    attach: `replay of ${rec.meta.host} (${rec.meta.attach})`,
    describe: `replaying ${file} (${rec.meta.host}, Linux ${rec.meta.kernel}) at ${speed}x`,
    hasReasons: reasons.size > 0,
    source: 'replay',
    now: () => feed.now(),
    sample: () => feed.sample(),
    stats: () => feed.stats(),
    filters: () => rec.meta.filters,
    setFilters: async () => 'a replay cannot change its filters: they were applied when it was recorded',
    finished: () => feed.finished,
    done,
    stop: () => life.stop(),
  };
}
