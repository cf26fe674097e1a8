/**
 * Prometheus series from the exact in-kernel counts. Pure: cumulative count
 * records in, monotonic per-label-set totals out. Kernel counters that go
 * backwards (a new tracer after a restart) are taken as a reset, so totals
 * never decrease. A cardinality cap folds new label sets into one "other"
 * series and counts what it folded.
 */
import { baseKey, type Naming } from './aggregate.js';
import type { CountRecord } from './decode.js';
import type { PodRef } from './pods.js';

export const LABELS = ['reason', 'function', 'interface', 'netns', 'namespace', 'pod', 'container'] as const;
export type Labels = Record<(typeof LABELS)[number], string>;

export interface Series {
  labels: Labels;
  packets: number;
  bytes: number;
}

const OTHER: Labels = { reason: 'other', function: 'other', interface: 'other', netns: 'other', namespace: 'other', pod: 'other', container: 'other' };

export class DropMetrics {
  private readonly last = new Map<string, { packets: number; bytes: number }>();
  private readonly series = new Map<string, Series>();
  /** drops that went to the "other" series because of the cap */
  folded = 0;

  constructor(
    private readonly naming: Naming,
    private readonly iface: (netns: number, ifindex: number) => string,
    private readonly pod: (netns: number, ifindex: number) => PodRef | null,
    private readonly maxSeries: number,
  ) {}

  labelsOf(r: CountRecord): Labels {
    const p = this.pod(r.netns, r.ifindex);
    return {
      reason: this.naming.reason(r.reason),
      function: this.naming.location(r.location).function,
      interface: this.iface(r.netns, r.ifindex),
      netns: String(r.netns),
      namespace: p?.namespace ?? '',
      pod: p?.pod ?? '',
      container: p?.container ? p.container.slice(0, 12) : '',
    };
  }

  /** Adds what each kernel key counted since the last update. */
  update(records: CountRecord[]): void {
    for (const r of records) {
      const k = baseKey(r.location, r.reason, r.ifindex, r.netns);
      const prev = this.last.get(k) ?? { packets: 0, bytes: 0 };
      // a counter that went backwards was reset (the tracer restarted): count it from zero
      const dp = r.packets >= prev.packets ? r.packets - prev.packets : r.packets;
      const db = r.bytes >= prev.bytes ? r.bytes - prev.bytes : r.bytes;
      this.last.set(k, { packets: r.packets, bytes: r.bytes });
      if (!dp && !db) continue;
      const labels = this.labelsOf(r);
      let id = LABELS.map((l) => labels[l]).join('\u0000');
      let s = this.series.get(id);
      if (!s) {
        // the cap counts the "other" series too: never more than maxSeries in all
        const real = this.series.size - (this.series.has('other') ? 1 : 0);
        if (real >= this.maxSeries - 1) {
          id = 'other';
          s = this.series.get(id);
          this.folded += dp;
          if (!s) this.series.set(id, (s = { labels: OTHER, packets: 0, bytes: 0 }));
        } else {
          this.series.set(id, (s = { labels, packets: 0, bytes: 0 }));
        }
      } else if (id === 'other') this.folded += dp;
      s.packets += dp;
      s.bytes += db;
    }
  }

  all(): Series[] {
    return [...this.series.values()];
  }
}
