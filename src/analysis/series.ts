/**
 * Drops over time from a recording's exact-count snapshots: the rate of
 * each report row between consecutive snapshots. Counts are cumulative, so
 * thinning the samples loses resolution, never drops: memory stays bounded
 * (MAX_POINTS samples of the count keys) however long the recording.
 */
import { baseKey } from './aggregate.js';
import type { CountRecord } from '../model/decode.js';

/** Samples kept; past twice this, every other one is dropped. */
export const MAX_POINTS = 240;

export interface SeriesLine {
  /** the report row's key, or null for everything outside the drawn rows */
  key: string | null;
  /** drops per second over each interval (interval i ends at times[i]) */
  rates: number[];
  total: number;
}

export interface Series {
  /** wall-clock ms of each interval's end; the first interval starts at `from` */
  from: number;
  times: number[];
  lines: SeriesLine[];
}

export class CountSeries {
  private readonly index = new Map<string, number>();
  /** cumulative packets per key index, the last snapshot before the window */
  private baseline: number[] = [];
  private samples: Array<{ time: number; cum: Float64Array }> = [];

  /** A snapshot before the window: the counts the window's first interval starts from. */
  before(records: readonly CountRecord[]): void {
    this.baseline = [];
    for (const r of records) this.baseline[this.slot(r)] = r.packets;
  }

  add(time: number, records: readonly CountRecord[]): void {
    const cum = new Float64Array(this.index.size + records.length).fill(NaN);
    for (const r of records) cum[this.slot(r)] = r.packets;
    this.samples.push({ time, cum });
    if (this.samples.length > 2 * MAX_POINTS) {
      // keep the last sample: it holds the window's final counts
      this.samples = this.samples.filter((_s, i, all) => i % 2 === 1 || i === all.length - 1);
    }
  }

  /**
   * Lines for the given rows (rowOf: count key → row key, null or absent:
   * "other"); the first sample's interval starts at `from`.
   */
  lines(from: number, rows: readonly string[], rowOf: ReadonlyMap<string, string | null>): Series {
    const drawn = new Map(rows.map((k, i) => [k, i]));
    const lineOf: number[] = [];
    for (const [k, i] of this.index) {
      const row = rowOf.get(k);
      lineOf[i] = row != null && drawn.has(row) ? drawn.get(row)! : rows.length;
    }
    const lines: SeriesLine[] = [...rows.map((key) => ({ key, rates: [] as number[], total: 0 })), { key: null, rates: [], total: 0 }];
    const times: number[] = [];
    // a key a snapshot does not hold keeps its last count (NaN marks "not in this snapshot")
    const prev = Float64Array.from({ length: this.index.size }, (_x, i) => this.baseline[i] ?? 0);
    let t0 = from;
    // drops of a snapshot taken at the same millisecond as the one before go to the next interval
    let sums = new Array<number>(lines.length).fill(0);
    for (const s of this.samples) {
      const dt = (s.time - t0) / 1000;
      for (let i = 0; i < s.cum.length; i++) {
        const c = s.cum[i];
        if (Number.isNaN(c)) continue;
        if (c > prev[i]) sums[lineOf[i]] += c - prev[i];
        prev[i] = c;
      }
      if (dt <= 0) continue;
      for (let l = 0; l < lines.length; l++) {
        lines[l].rates.push(sums[l] / dt);
        lines[l].total += sums[l];
      }
      times.push(s.time);
      t0 = s.time;
      sums = sums.fill(0);
    }
    return { from, times, lines };
  }

  private slot(r: CountRecord): number {
    const k = baseKey(r.location, r.reason, r.ifindex, r.netns);
    let i = this.index.get(k);
    if (i === undefined) {
      i = this.index.size;
      this.index.set(k, i);
    }
    return i;
  }
}
