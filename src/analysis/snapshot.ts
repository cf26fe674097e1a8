/**
 * What the aggregator reports: rows grouped by one key, with exact totals,
 * rates and a minute of history, and the benign drops folded apart. The
 * shape the live screen, report, diagnose and `live --json` read.
 */
import type { DropRecord } from '../model/drop.js';

/** What a flow is about, as fields (never parsed back from its key text). */
export interface FlowFields {
  /** 4 or 6, or null when no IP header was read */
  ipver: 4 | 6 | null;
  l4: string | null;
  saddr: string | null;
  daddr: string | null;
  dport: number | null;
  /** the tunnel a VXLAN or Geneve packet came in (the fields above are its outer flow's) */
  tunnel?: { kind: 'vxlan' | 'geneve'; vni: number } | null;
}

export const GROUPS = ['location', 'function', 'reason', 'interface', 'netns', 'pod', 'flow'] as const;
export type GroupBy = (typeof GROUPS)[number];
export const SORTS = ['rate', 'count', 'name', 'last'] as const;
export type SortBy = (typeof SORTS)[number];

/** Decodes record i of a raw batch into a record (only for the recent list). */
export type RawToRecord = (buf: Buffer, index: number, stride: number) => DropRecord;

/**
 * Whether drops a healthy node makes all the time (src/model/benign.ts) are folded
 * into Snapshot.benign (the default) or shown as rows of their own.
 */
export type BenignMode = 'fold' | 'show';

export interface Top {
  key: string;
  count: number;
}

/** One row of the table. */
export interface GroupRow {
  key: string;
  total: number;
  bytes: number;
  /** drops per second over the last ~1 s and ~10 s */
  rate1: number;
  rate10: number;
  /**
   * drops per second, exponentially weighted over the last minute with a 5 s
   * time constant (most weight on the last 10 s): a burst stays visible for a
   * few seconds and fades, where rate1 falls to 0 at once. What `live` shows
   * as "/s 10s" and sorts by.
   */
  rateAvg: number;
  /** drops in each of the last 60 seconds, oldest first */
  history: number[];
  firstSeen: number;
  lastSeen: number;
  /** false for flow rows, which are counted from events (lossy under floods) */
  exact: boolean;
  module: string | null;
  locations: Top[];
  reasons: Top[];
  interfaces: Top[];
  netns: Top[];
  flows: Top[];
  /** the receiving sockets that refused its packets (kernel 6.11+), with their owners */
  sockets: Top[];
  /** the fields of the row's own flow (flow rows) or of its top flow; null when no event named one */
  flow: FlowFields | null;
  /** id of the benign rule (src/model/benign.ts) every drop of this row matched, or null */
  benign: string | null;
  /** events that were TCP connection attempts (SYN without ACK): failing connections */
  syn: number;
  /** events to a unicast destination, and the largest unicast flow (a connection retried) */
  unicast: number;
  topUnicast: Top | null;
}

/** Drops of one benign class, folded into one line. */
export interface BenignFold {
  rule: string;
  title: string;
  total: number;
  rate1: number;
  rate10: number;
  interfaces: Top[];
  locations: Top[];
}

export interface Snapshot {
  time: number;
  elapsedMs: number;
  groupBy: GroupBy;
  sortBy: SortBy;
  total: number;
  rate1: number;
  rate10: number;
  rateAvg: number;
  rows: GroupRow[];
  /** benign drops folded out of rows (empty when they are shown as rows) */
  benign: BenignFold[];
  recent: DropRecord[];
}

/** Seconds of per-second history a row keeps. */
export const HISTORY = 60;
/** time constant of GroupRow.rateAvg, in seconds */
const AVG_TAU = 5;
const AVG_WEIGHTS = Array.from({ length: HISTORY }, (_, k) => Math.exp(-k / AVG_TAU));
const AVG_NORM = AVG_WEIGHTS.reduce((a, b) => a + b, 0);

/** The exponentially weighted drops per second of a 60-point history (oldest first). */
export function decayedRate(history: readonly number[]): number {
  let s = 0;
  for (let k = 0; k < HISTORY && k < history.length; k++) s += history[history.length - 1 - k] * AVG_WEIGHTS[k];
  return s / AVG_NORM;
}

export function top(m: Map<string, number>, n = 5): Top[] {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, n)
    .map(([key, count]) => ({ key, count }));
}

export function bump(m: Map<string, number>, k: string, n: number): void {
  m.set(k, (m.get(k) ?? 0) + n);
}
