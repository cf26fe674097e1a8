/**
 * A running capture feeding an Aggregator: what `live` (and anything else
 * that shows counts over time) drives. Owns the capture's lifetime,
 * including a restart with new filters. No terminal, no command line.
 */
import { Aggregator } from '../analysis/aggregate.js';
import type { Naming } from '../model/naming.js';
import { startCapture, type Capture, type CaptureSummary, type EventBatch } from './run.js';
import { decodeCounts, decodeEvent, type CountRecord } from '../model/decode.js';
import { monotonicToWallOffset, toRecord } from '../model/drop.js';
import type { SymbolLookup } from '../model/kallsyms.js';
import type { TracerConfig } from './native.js';
import type { ReasonTable } from '../model/reasons.js';

export class LiveSession {
  agg: Aggregator;
  private capture: Capture;
  private readonly wallOffset = monotonicToWallOffset();
  private readonly wallOffsetMs = Number(this.wallOffset / 1_000_000n);
  /** events delivered and lost by earlier captures (before a filter change) */
  private carried = { delivered: 0, lost: 0, missed: 0 };

  constructor(
    private config: TracerConfig,
    private readonly naming: Naming,
    private readonly syms: SymbolLookup | null,
    private readonly reasons: ReasonTable,
    private readonly withEvents: boolean,
  ) {
    this.agg = new Aggregator(naming, undefined, config.sample ?? 1);
    this.capture = this.open();
  }

  private open(): Capture {
    const onDrops = this.withEvents
      ? (b: EventBatch) => {
          this.agg.addBatch(b.buf, b.stride, b.count, this.wallOffsetMs, (buf, i, stride) => toRecord(decodeEvent(buf, i, stride), this.syms, this.reasons, this.wallOffset));
        }
      : undefined;
    const c = startCapture(this.config, onDrops);
    this.agg.addCounts(Date.now(), []);
    return c;
  }

  get tracer() {
    return this.capture.tracer;
  }

  /** Reads the exact counts now and feeds them to the aggregator. */
  sample(now = Date.now()): CountRecord[] {
    const counts = decodeCounts(this.capture.tracer.counts());
    this.agg.addCounts(now, counts);
    return counts;
  }

  /** Events delivered and lost, and drops the kernel never showed the program (missed), over every capture. */
  stats(): { delivered: number; lost: number; missed: number } {
    const s = this.capture.tracer.stats();
    return { delivered: this.carried.delivered + s.delivered, lost: this.carried.lost + s.lost + s.droppedInProcess, missed: this.carried.missed + s.missed };
  }

  /** Reloads the program with other filters; counting restarts from zero. */
  async restart(filters: Partial<TracerConfig>): Promise<void> {
    const base = { ...this.config };
    for (const k of ['netns', 'ifname', 'ethertype', 'l4proto', 'hostVersion', 'hostAddr', 'hostMask', 'port', 'include', 'exclude'] as const) {
      delete base[k];
    }
    const next = { ...base, ...filters };
    const old = await this.capture.stop();
    this.carried.delivered += old.stats.delivered;
    this.carried.lost += old.stats.lost + old.stats.droppedInProcess;
    this.carried.missed += old.stats.missed;
    const previous = this.config;
    this.config = next;
    this.agg = new Aggregator(this.naming, undefined, next.sample ?? 1);
    try {
      this.capture = this.open();
    } catch (err) {
      // the kernel refused the new program: go back to tracing as before
      this.config = previous;
      this.capture = this.open();
      throw err;
    }
  }

  stop(): Promise<CaptureSummary> {
    return this.capture.stop();
  }
}
