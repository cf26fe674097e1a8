/**
 * Prometheus series from the exact in-kernel counts, for a process that runs
 * for weeks on a node where pods come and go. Pure: cumulative count records
 * in, monotonic per-label-set totals out, time passed in.
 *
 * - Kernel counters that go backwards (a new tracer after a restart) are
 *   taken as a reset, so totals never decrease.
 * - A cardinality cap folds new label sets into one "other" series and
 *   counts what it folded.
 * - Label sets that have not moved for a grace period (a pod that is gone)
 *   expire: the series leaves /metrics and its drops move to
 *   droptrace_drops_expired_total {reason, function}, so every drop stays
 *   counted (drops_total + drops_expired_total == what the kernel counted)
 *   without rate() of drops_total jumping when a series goes.
 * - Kernel keys idle that long are forgotten (taken out of the count map by
 *   the caller), so the map does not fill with dead namespaces.
 */
import { baseKey } from './aggregate.js';
import type { Naming } from '../model/naming.js';
import type { CountRecord } from '../model/decode.js';
import type { PodRef } from '../host/pods.js';

export const LABELS = ['reason', 'function', 'interface', 'netns', 'namespace', 'pod', 'container'] as const;
export type Labels = Record<(typeof LABELS)[number], string>;

export interface Series {
  labels: Labels;
  packets: number;
  bytes: number;
}

interface SeriesState extends Series {
  changed: number;
}

interface KeyState {
  key: CountRecord;
  /** the cumulative count last credited */
  packets: number;
  bytes: number;
  changed: number;
  /** left in a per-CPU hot slot after forget(): slots are never given back, so do not ask again */
  pinned?: boolean;
}

const OTHER: Labels = { reason: 'other', function: 'other', interface: 'other', netns: 'other', namespace: 'other', pod: 'other', container: 'other' };

export class DropMetrics {
  private readonly keys = new Map<string, KeyState>();
  private readonly series = new Map<string, SeriesState>();
  private readonly expired = new Map<string, Series>();
  /** drops that went to the "other" series because of the cap */
  folded = 0;
  /** label sets that expired so far */
  expiredSeries = 0;

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

  /** Adds what each kernel key counted since the last update (now: ms). */
  update(records: CountRecord[], now = Date.now()): void {
    for (const r of records) {
      const k = baseKey(r.location, r.reason, r.ifindex, r.netns);
      let st = this.keys.get(k);
      if (!st) this.keys.set(k, (st = { key: r, packets: 0, bytes: 0, changed: now }));
      // a counter that went backwards was reset (the tracer restarted): count it from zero
      const dp = r.packets >= st.packets ? r.packets - st.packets : r.packets;
      const db = r.bytes >= st.bytes ? r.bytes - st.bytes : r.bytes;
      st.packets = r.packets;
      st.bytes = r.bytes;
      if (dp || db) {
        st.changed = now;
        this.credit(r, dp, db, now);
      }
    }
  }

  private credit(r: CountRecord, dp: number, db: number, now: number): void {
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
        if (!s) this.series.set(id, (s = { labels: OTHER, packets: 0, bytes: 0, changed: now }));
      } else {
        this.series.set(id, (s = { labels, packets: 0, bytes: 0, changed: now }));
      }
    } else if (id === 'other') this.folded += dp;
    s.packets += dp;
    s.bytes += db;
    s.changed = now;
  }

  /** Kernel keys that have not counted a drop for graceMs: the caller takes them out of the map. */
  idleKeys(now: number, graceMs: number): CountRecord[] {
    const out: CountRecord[] = [];
    for (const st of this.keys.values()) if (!st.pinned && now - st.changed >= graceMs) out.push(st.key);
    return out;
  }

  /**
   * Keys taken out of the kernel's map: `removed` are their final counts
   * there, `remaining` what counts() still shows for them afterwards (a
   * per-CPU hot slot is never given back). What they counted since the last
   * update is credited; a key with nothing left is forgotten.
   */
  forgotten(removed: CountRecord[], remaining: CountRecord[], now: number): void {
    const left = new Map(remaining.map((r) => [baseKey(r.location, r.reason, r.ifindex, r.netns), r]));
    for (const f of removed) {
      const k = baseKey(f.location, f.reason, f.ifindex, f.netns);
      const st = this.keys.get(k);
      const rest = left.get(k);
      const total = { packets: f.packets + (rest?.packets ?? 0), bytes: f.bytes + (rest?.bytes ?? 0) };
      const prev = st ?? { packets: 0, bytes: 0 };
      const dp = Math.max(0, total.packets - prev.packets);
      const db = Math.max(0, total.bytes - prev.bytes);
      if (dp || db) this.credit(f, dp, db, now);
      if (rest) this.keys.set(k, { key: f, packets: rest.packets, bytes: rest.bytes, changed: st?.changed ?? now, pinned: true });
      else this.keys.delete(k);
    }
  }

  /** Label sets that have not moved for graceMs leave /metrics; their drops stay in the expired totals. */
  expire(now: number, graceMs: number): number {
    let n = 0;
    for (const [id, s] of this.series) {
      if (id === 'other' || now - s.changed < graceMs) continue;
      const ek = `${s.labels.reason}\u0000${s.labels.function}`;
      let e = this.expired.get(ek);
      if (!e) this.expired.set(ek, (e = { labels: { ...OTHER, reason: s.labels.reason, function: s.labels.function }, packets: 0, bytes: 0 }));
      e.packets += s.packets;
      e.bytes += s.bytes;
      this.series.delete(id);
      n++;
    }
    this.expiredSeries += n;
    return n;
  }

  all(): Series[] {
    return [...this.series.values()].map(({ labels, packets, bytes }) => ({ labels, packets, bytes }));
  }

  /** Drops of expired label sets, by reason and function. */
  expiredTotals(): Array<{ labels: { reason: string; function: string }; packets: number; bytes: number }> {
    return [...this.expired.values()].map((e) => ({ labels: { reason: e.labels.reason, function: e.labels.function }, packets: e.packets, bytes: e.bytes }));
  }

  /** Kernel keys being tracked: bounded by forgetting idle ones (and by the hot slots, which stay). */
  get keyCount(): number {
    return this.keys.size;
  }
}
