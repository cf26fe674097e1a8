/**
 * Tables from a recording (`report`) and the difference of two (`diff`).
 * Pure: a Recording in, rows out. The same Aggregator as the live view, so
 * a report and the live screen agree.
 */
import { Aggregator } from './aggregate.js';
import type { GroupBy, GroupRow } from './snapshot.js';
import { benignLine } from '../model/benign.js';
import { toRecord } from '../model/drop.js';
import { filledHint, reasonHint, functionHint } from '../model/hints.js';
import { rowContext } from './context.js';
import { formatStacks, StackCounts, type SiteStacks } from './stacks.js';
import { formatPaths, PathCounts, type PathSummary } from './paths.js';
import { CountSeries, type Series } from './series.js';
import { makeNaming } from '../model/naming.js';
import { decodeEvent } from '../model/decode.js';
import { RecordedSymbols, recordedNetnsName, recordingReasons, recordNs, type RecordingReader } from '../formats/recording.js';

export interface ReportOptions {
  by: GroupBy;
  /** wall-clock ms bounds, inclusive */
  since?: number;
  until?: number;
  /** show drops a healthy node makes (src/model/benign.ts) as rows instead of one folded line */
  all?: boolean;
  /** count the recorded kernel stacks per drop site (record --stack) */
  stacks?: boolean;
  /** count the recorded packet paths (record --path) */
  paths?: boolean;
  /** also draw this many top rows over time (from the count snapshots); the rest is one "other" line */
  series?: number;
  /** also group the window's events by flow (rows grouped otherwise) */
  flows?: boolean;
}

/** Benign drops folded out of a report's rows. */
export interface ReportBenign {
  rule: string;
  title: string;
  total: number;
  interfaces: Array<{ key: string }>;
  locations: string[];
}

export interface ReportRow {
  key: string;
  count: number;
  bytes: number;
  share: number;
  /** average drops per second over the window */
  rate: number;
  module: string | null;
  exact: boolean;
  reasons: string[];
  interfaces: string[];
  netns: string[];
  locations: string[];
  flows: string[];
  /** the receiving sockets that refused the row's packets, with their owners (kernel 6.11+) */
  sockets: string[];
  /** what this row's drops mean (src/model/hints.ts id), or null */
  hint: string | null;
  /** the hint's first check, filled with the row's interface, namespace and flow */
  check: string | null;
  /** the benign rule (src/model/benign.ts) every drop of the row matched, or null */
  benign: string | null;
}

export interface Report {
  by: GroupBy;
  from: number;
  to: number;
  seconds: number;
  total: number;
  events: number;
  /**
   * events of the window recorded after its last exact count: a file cut short before its next
   * count (counts are written each second), or --until between two counts. Not in total.
   */
  uncounted: number;
  rows: ReportRow[];
  /** benign drops folded out of rows (empty with `all`) */
  benign: ReportBenign[];
  /** with `stacks`: the recorded stacks per drop site, from events in the window */
  stacks?: SiteStacks[];
  /** with `paths`: the distinct paths of the dropped packets in the window */
  paths?: PathSummary;
  /** with `series`: the top rows' drops per second between count snapshots */
  series?: Series;
  /** with `flows`: the window's flows, from events */
  flows?: ReportRow[];
}

function toReportRow(r: GroupRow, total: number, seconds: number, by: GroupBy): ReportRow {
  const keys = (t: { key: string }[]) => t.map((x) => x.key);
  const hint = filledHint(rowContext(r, by));
  return {
    key: r.key,
    count: r.total,
    bytes: r.bytes,
    share: total ? r.total / total : 0,
    rate: seconds > 0 ? r.total / seconds : 0,
    module: r.module,
    exact: r.exact,
    reasons: keys(r.reasons),
    interfaces: keys(r.interfaces),
    netns: keys(r.netns),
    locations: keys(r.locations),
    flows: keys(r.flows),
    sockets: keys(r.sockets),
    hint: hint?.id ?? null,
    check: hint?.checks[0] ?? null,
    benign: r.benign,
  };
}

/**
 * One pass over a recording, a block at a time: memory grows with the
 * distinct sites and flows, not with the events (a flood's recording of
 * millions reads in the same space as a quiet one).
 */
export function buildReport(reader: RecordingReader, opts: ReportOptions): Report {
  const t = reader.tables;
  const reasons = recordingReasons(t.meta);
  // the tables fill while the file is read; names are written before the events that need them
  const syms = new RecordedSymbols(t.symbols);
  const naming = makeNaming(syms, reasons, t.netns, (ns) => t.pods.get(ns) ?? null, (id) => t.cgroups.get(id) ?? null);
  const agg = new Aggregator(naming, undefined, t.meta.sample ?? 1);
  const start = Date.parse(t.meta.startTime);
  const since = opts.since ?? -Infinity;
  const until = opts.until ?? Infinity;
  const offset = BigInt(t.meta.wallOffsetNs);
  // counts are cumulative since attach: the window is the last snapshot before `until`
  // minus the last one before `since`
  agg.addCounts(start, []);
  let cleared = since <= start;
  let to = start;
  let events = 0;
  let uncounted = 0;
  const wallOffsetMs = Number(offset / 1_000_000n);
  const rawToRecord = (buf: Buffer, i: number, stride: number) => toRecord(decodeEvent(buf, i, stride), syms, reasons, offset);
  const msOf = (ns: bigint) => Number((ns + offset) / 1_000_000n);
  const stacks = opts.stacks ? new StackCounts() : null;
  const paths = opts.paths ? new PathCounts(syms, reasons, recordedNetnsName(t)) : null;
  const series = opts.series && opts.by !== 'flow' ? new CountSeries() : null;
  for (const it of reader.items()) {
    if (it.kind === 'counts') {
      const c = it.snapshot;
      if (c.time > until) continue;
      if (c.time < since) series?.before(c.records);
      else series?.add(c.time, c.records);
      if (!cleared && c.time >= since) {
        agg.clear(since);
        cleared = true;
      }
      agg.addCounts(c.time, c.records);
      to = c.time;
      uncounted = 0;
      continue;
    }
    // the records of a block in the window are folded raw, as the live view does; a block
    // that straddles --since/--until is cut to its records inside (records come in the order
    // the ring took them: time order to within the microseconds between CPUs)
    let lo = 0;
    let hi = it.count;
    while (lo < hi && msOf(recordNs(it.buf, lo, it.stride)) < since) lo++;
    while (hi > lo && msOf(recordNs(it.buf, hi - 1, it.stride)) > until) hi--;
    if (lo >= hi) continue;
    if (!cleared) {
      agg.clear(since);
      cleared = true;
    }
    events += hi - lo;
    uncounted += hi - lo;
    agg.addBatch(it.buf.subarray(lo * it.stride, hi * it.stride), it.stride, hi - lo, wallOffsetMs, rawToRecord);
    stacks?.add(it.buf.subarray(lo * it.stride, hi * it.stride), it.stride, hi - lo, t.meta.sample ?? 1);
    paths?.add(it.buf.subarray(lo * it.stride, hi * it.stride), it.stride, hi - lo, t.meta.sample ?? 1);
  }
  if (!cleared) agg.clear(to);
  for (const [ns, ifindex, name] of t.interfaces) agg.learnInterface(ns, ifindex, name);
  const from = Math.max(start, Number.isFinite(since) ? since : start);
  const snap = agg.snapshot(to, opts.by, 'count', opts.all ? 'show' : 'fold');
  const seconds = Math.max(0, (to - from) / 1000);
  const benign = snap.benign.map((f) => ({ rule: f.rule, title: f.title, total: f.total, interfaces: f.interfaces.map((i) => ({ key: i.key })), locations: f.locations.map((l) => l.key) }));
  const total = opts.by === 'flow' ? snap.rows.reduce((n, r) => n + r.total, 0) + benign.reduce((n, f) => n + f.total, 0) : snap.total;
  const rep: Report = { by: opts.by, from, to, seconds, total, events, uncounted, rows: snap.rows.map((r) => toReportRow(r, total, seconds, opts.by)), benign };
  if (stacks) rep.stacks = stacks.sites(syms, (id) => t.stacks.get(id) ?? null);
  if (paths) rep.paths = paths.summary();
  if (series && opts.by !== 'flow') {
    const drawn = rep.rows.slice(0, opts.series).map((r) => r.key);
    rep.series = series.lines(from, drawn, agg.rowKeys(opts.by, opts.all ? 'show' : 'fold'));
  }
  if (opts.flows) {
    const flows = opts.by === 'flow' ? snap : agg.snapshot(to, 'flow', 'count', opts.all ? 'show' : 'fold');
    rep.flows = flows.rows.map((r) => toReportRow(r, total, seconds, 'flow'));
  }
  return rep;
}

export type Change = 'appeared' | 'vanished' | 'up' | 'down' | 'same';

export interface DiffRow {
  key: string;
  change: Change;
  a: { count: number; rate: number };
  b: { count: number; rate: number };
  /** rate in B divided by rate in A (null when A had none) */
  ratio: number | null;
}

/** Rows of A and B by key: what appeared, vanished, or changed its rate by at least `factor`. */
export function diffReports(a: Report, b: Report, factor = 2): DiffRow[] {
  const keys = new Set([...a.rows.map((r) => r.key), ...b.rows.map((r) => r.key)]);
  const byKey = (rep: Report) => new Map(rep.rows.map((r) => [r.key, r]));
  const am = byKey(a);
  const bm = byKey(b);
  const out: DiffRow[] = [];
  for (const key of keys) {
    const ra = am.get(key);
    const rb = bm.get(key);
    const A = { count: ra?.count ?? 0, rate: ra?.rate ?? 0 };
    const B = { count: rb?.count ?? 0, rate: rb?.rate ?? 0 };
    let change: Change;
    if (!A.count && B.count) change = 'appeared';
    else if (A.count && !B.count) change = 'vanished';
    else if (A.rate > 0 && B.rate / A.rate >= factor) change = 'up';
    else if (A.rate > 0 && B.rate / A.rate <= 1 / factor) change = 'down';
    else change = 'same';
    out.push({ key, change, a: A, b: B, ratio: A.rate > 0 ? B.rate / A.rate : null });
  }
  const order: Record<Change, number> = { appeared: 0, vanished: 1, up: 2, down: 3, same: 4 };
  return out.sort((x, y) => order[x.change] - order[y.change] || y.b.count + y.a.count - (x.b.count + x.a.count));
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const rate = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));

export function formatReport(rep: Report, top: number): string {
  const head = `${rep.total} drops in ${rep.seconds.toFixed(1)} s (${new Date(rep.from).toISOString()} .. ${new Date(rep.to).toISOString()}), by ${rep.by}; ${rep.events} events`;
  const lines = [head, ''];
  const second = rep.by === 'reason' ? 'LOCATION' : 'REASON';
  if (!rep.rows.length) lines.push(rep.benign.length ? 'no drops besides the expected noise below' : 'no drops');
  else lines.push(`${'COUNT'.padStart(9)} ${'SHARE'.padStart(6)} ${'AVG/s'.padStart(8)}  ${rep.by.toUpperCase().padEnd(34)} ${second.padEnd(16)} ${'IFACE'.padEnd(10)} NETNS`);
  for (const r of rep.rows.slice(0, top)) {
    const key = (r.module ? `${r.key} [${r.module}]` : r.key) + (r.exact ? '' : ' ~');
    const reason = rep.by === 'reason' ? (r.locations[0] ?? '-') : (r.reasons[0] ?? '-');
    lines.push(
      `${String(r.count).padStart(9)} ${pct(r.share).padStart(6)} ${rate(r.rate).padStart(8)}  ${key.padEnd(34)} ${reason.padEnd(16)} ${(r.interfaces[0] ?? '-').padEnd(10)} ${r.netns[0] ?? '-'}`,
    );
    // the socket that refused them (6.11+): whose buffer, memory or filter it was
    if (r.sockets.length) lines.push(`${''.padStart(27)}socket ${r.sockets[0]}${r.sockets.length > 1 ? ` (+${r.sockets.length - 1} more)` : ''}`);
  }
  if (rep.rows.length > top) lines.push(`… ${rep.rows.length - top} more (--top)`);
  const folded = benignLine(rep.benign);
  if (folded) lines.push(folded);
  if (rep.rows.some((r) => !r.exact)) lines.push('~ counted from events (flows): lost events are missing from these rows');
  if (rep.uncounted) lines.push(`${rep.uncounted} of the events came after the last exact count (written each second), so they are not in these totals: --by flow counts events`);
  if (rep.stacks) {
    lines.push('', 'Kernel stacks by drop site (innermost frame first):');
    lines.push(rep.stacks.length ? formatStacks(rep.stacks) : '  none: the recording has no stacks (record --stack)');
  }
  if (rep.paths) {
    lines.push('', 'Paths of the dropped packets (first step to drop):');
    lines.push(formatPaths(rep.paths));
  }
  const hinted = rep.rows.slice(0, 3).filter((r) => r.hint);
  if (hinted.length) {
    lines.push('', 'What they mean (droptrace diagnose adds evidence and commands):');
    for (const r of hinted) lines.push(`  ${r.key}: ${hintTitle(r.hint!)}`);
  }
  return lines.join('\n');
}

export function formatDiff(rows: DiffRow[], by: GroupBy): string {
  const lines = [`${'CHANGE'.padEnd(9)} ${'A'.padStart(9)} ${'A/s'.padStart(8)} ${'B'.padStart(9)} ${'B/s'.padStart(8)}  ${by.toUpperCase()}`];
  for (const r of rows) {
    lines.push(`${r.change.padEnd(9)} ${String(r.a.count).padStart(9)} ${rate(r.a.rate).padStart(8)} ${String(r.b.count).padStart(9)} ${rate(r.b.rate).padStart(8)}  ${r.key}`);
  }
  return lines.join('\n');
}

/** The title of a hint by its id ("reason/NAME", "function/NAME"). */
export function hintTitle(id: string): string {
  const [kind, name] = id.split('/');
  const h = kind === 'reason' ? reasonHint(name) : kind === 'function' ? functionHint(name) : null;
  return h ? h.title : id;
}
