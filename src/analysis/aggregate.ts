/**
 * Turns exact in-kernel counts and the event stream into snapshots grouped
 * by location, function, reason, interface, netns or flow. Pure: time is
 * passed in, names come from a Naming, nothing here touches the kernel or
 * the terminal. Counts come from the kernel's map, so they stay right when
 * events are lost or sampled; events only add details (flows, names).
 */
import type { Naming } from '../model/naming.js';
import { benignRule, classify, classifySite, isGroupAddress, type BenignRule } from '../model/benign.js';
import type { CountRecord, RawDrop } from '../model/decode.js';
import { l4Name, protocolName, type DropRecord } from '../model/drop.js';
import { BatchFolder } from './fold.js';

export const GROUPS = ['location', 'function', 'reason', 'interface', 'netns', 'pod', 'flow'] as const;
export type GroupBy = (typeof GROUPS)[number];
export const SORTS = ['rate', 'count', 'name', 'last'] as const;
export type SortBy = (typeof SORTS)[number];

/** How addresses, reasons, interfaces and namespaces are named. */
/** Decodes record i of a raw batch into a record (only for the recent list). */
export type RawToRecord = (buf: Buffer, index: number, stride: number) => DropRecord;

/**
 * Whether drops a healthy node makes all the time (src/benign.ts) are folded
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
  /** id of the benign rule (src/benign.ts) every drop of this row matched, or null */
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

/** A kernel count key with what we know about it: its baseline after clear, its flows. */
interface Base extends CountRecord {
  zeroPackets: number;
  zeroBytes: number;
  first: number;
  last: number;
  flows: Map<string, number>;
  /** events seen at this site, and how many of them matched a benign rule (weighted) */
  seen: number;
  benignSeen: number;
  /** events that were TCP SYN without ACK, and to a unicast destination (weighted) */
  syn: number;
  unicast: number;
  /** flow keys whose destination is a multicast or broadcast address */
  groupFlows: Set<string>;
  /** the rule those events matched; the site's own rule (reason + function) once asked */
  shapeRule: BenignRule | null;
  siteRule?: BenignRule | null;
  /** flow key → the rule it matched, so each flow is classified once */
  classOf: Map<string, BenignRule | null>;
}

interface Sample {
  t: number;
  packets: Map<string, number>;
}

interface FlowAcc {
  total: number;
  bytes: number;
  first: number;
  last: number;
  seconds: Map<number, number>;
  bases: Map<string, number>;
  rule: BenignRule | null;
}

const HISTORY = 60;
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
const MAX_FLOWS_PER_BASE = 32;
const MAX_FLOWS = 5000;
const MAX_CLASSES_PER_BASE = 256;
const IPPROTO_TCP = 6;
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

const hexOf = new Map<bigint, string>();

export function baseKey(location: bigint, reason: number, ifindex: number, netns: number): string {
  // a node has few drop sites: format each address once
  let hex = hexOf.get(location);
  if (hex === undefined) {
    hex = location.toString(16);
    if (hexOf.size < 100_000) hexOf.set(location, hex);
  }
  return `${hex}|${reason}|${ifindex}|${netns}`;
}

function flowKeyOf(proto: string, saddr: string, daddr: string | null, dport: number | null): string {
  const dst = dport === null ? daddr : daddr!.includes(':') ? `[${daddr}]:${dport}` : `${daddr}:${dport}`;
  return `${proto} ${saddr} > ${dst}`;
}

function rawFlowKey(d: RawDrop): string {
  const proto = protocolName(d.ethertype, d.ipver);
  return d.saddr ? flowKeyOf(l4Name(d.l4proto) ?? proto, d.saddr, d.daddr, d.dport) : proto;
}

export function flowKey(r: Pick<DropRecord, 'l4' | 'protocol' | 'saddr' | 'daddr' | 'dport'>): string {
  if (!r.saddr) return r.protocol;
  return flowKeyOf(r.l4 ?? r.protocol, r.saddr, r.daddr, r.dport);
}

function top(m: Map<string, number>, n = 5): Top[] {
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, n)
    .map(([key, count]) => ({ key, count }));
}

function bump(m: Map<string, number>, k: string, n: number): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

function benignTitle(id: string): string {
  return benignRule(id)?.title ?? id;
}

function newBase(r: CountRecord, first: number): Base {
  return { ...r, zeroPackets: 0, zeroBytes: 0, first, last: first, flows: new Map(), seen: 0, benignSeen: 0, syn: 0, unicast: 0, groupFlows: new Set(), shapeRule: null, classOf: new Map() };
}

export class Aggregator {
  private readonly bases = new Map<string, Base>();
  private readonly flows = new Map<string, FlowAcc>();
  private readonly ifnames = new Map<string, string>();
  private readonly folder = new BatchFolder();
  private samples: Sample[] = [];
  private recent: DropRecord[] = [];
  /**
   * The raw bytes of the last recentSize records delivered and not yet shown,
   * a ring (next: where the next record goes): one buffer for the whole run,
   * not a copy per batch left for the GC.
   */
  private raw: { buf: Buffer; stride: number; next: number; count: number; toRecord: RawToRecord } | null = null;
  private start: number | null = null;

  /**
   * weight: drops each event stands for (--sample N: N). Flow rows, which
   * come from events, are scaled by it; count rows come from the kernel.
   */
  constructor(
    private readonly naming: Naming,
    private readonly recentSize = 200,
    private readonly weight = 1,
  ) {}

  /** Exact cumulative counts read from the kernel at time now (ms). */
  addCounts(now: number, records: CountRecord[]): void {
    this.start ??= now;
    for (const r of records) {
      const k = baseKey(r.location, r.reason, r.ifindex, r.netns);
      let b = this.bases.get(k);
      if (!b) {
        b = newBase(r, now);
        this.bases.set(k, b);
        continue;
      }
      if (r.packets > b.packets) b.last = now;
      b.packets = r.packets;
      b.bytes = r.bytes;
    }
    const packets = new Map<string, number>();
    for (const [k, b] of this.bases) packets.set(k, b.packets - b.zeroPackets);
    this.samples.push({ t: now, packets });
    // keep a little more than the history window
    const horizon = now - (HISTORY + 2) * 1000;
    while (this.samples.length > 2 && this.samples[1].t < horizon) this.samples.shift();
  }

  /**
   * Decoded drops (a recording): names of interfaces, flows, the recent list.
   * timeMs gives a drop's wall time; toRecord is called only for the drops
   * the recent list keeps, so a recording of millions costs no object each.
   */
  addDrops(drops: readonly RawDrop[], timeMs: (d: RawDrop) => number, toRecord: (d: RawDrop) => DropRecord): void {
    for (const d of drops) {
      this.addFlow(d, d.ifname || null, rawFlowKey(d), timeMs(d), this.weight, d.len * this.weight);
    }
    this.materialize();
    const from = Math.max(0, drops.length - this.recentSize);
    const kept: DropRecord[] = [];
    for (let i = from; i < drops.length; i++) kept.push(toRecord(drops[i]));
    this.pushRecent(kept);
  }

  /**
   * The same straight from a batch of raw records (the live view's path under
   * a flood): records are folded into flows without decoding each one; the
   * raw bytes of the last few are kept and become records only when a
   * snapshot shows them.
   */
  addBatch(buf: Buffer, stride: number, count: number, wallOffsetMs: number, toRecord: RawToRecord): void {
    this.folder.fold(buf, stride, count, wallOffsetMs, (entries, wallMsOf) => {
      for (const e of entries) {
        const d = e.drop;
        this.addFlow(d, d.ifname || null, rawFlowKey(d), wallMsOf(e.last), e.count * this.weight, e.bytes * this.weight);
      }
    });
    // keep the raw bytes of the last few; they become records only when a snapshot shows them
    const keep = Math.min(count, this.recentSize);
    if (!keep) return;
    let r = this.raw;
    if (!r || r.stride !== stride) {
      this.materialize();
      r = this.raw = { buf: Buffer.alloc(this.recentSize * stride), stride, next: 0, count: 0, toRecord };
    }
    r.toRecord = toRecord;
    // the last `keep` records, in at most two runs (the ring wraps once at most)
    let from = count - keep;
    while (from < count) {
      const run = Math.min(count - from, this.recentSize - r.next);
      buf.copy(r.buf, r.next * stride, from * stride, (from + run) * stride);
      r.next = (r.next + run) % this.recentSize;
      from += run;
    }
    r.count = Math.min(r.count + keep, this.recentSize);
  }

  private pushRecent(records: DropRecord[]): void {
    // no push(...records): a spread of a long array overflows the call stack
    for (const r of records) this.recent.push(r);
    if (this.recent.length > this.recentSize) this.recent = this.recent.slice(-this.recentSize);
  }

  /** Turns the raw recent records kept by addBatch into records, oldest first. */
  private materialize(): void {
    const r = this.raw;
    if (!r || !r.count) return;
    const out: DropRecord[] = [];
    const first = (r.next - r.count + this.recentSize) % this.recentSize;
    for (let k = 0; k < r.count; k++) out.push(r.toRecord(r.buf, (first + k) % this.recentSize, r.stride));
    r.count = 0;
    this.pushRecent(out);
  }

  /** The benign rule a drop with this raw shape matches. */
  private classify(d: RawDrop): BenignRule | null {
    return classify({
      reason: d.hasReason ? this.naming.reason(d.reason) : null,
      function: this.naming.location(d.location).function,
      ethertype: d.ethertype,
      l4proto: d.l4proto,
      daddr: d.daddr,
      dport: d.dport,
      icmpType: d.icmpType,
    });
  }

  /** The benign rule every drop at this site matched, or null (also when none was seen as an event). */
  private benignOf(b: Base): BenignRule | null {
    if (b.siteRule === undefined) b.siteRule = classifySite(b.reason ? this.naming.reason(b.reason) : null, this.naming.location(b.location).function);
    if (b.siteRule) return b.siteRule;
    return b.seen > 0 && b.benignSeen === b.seen ? b.shapeRule : null;
  }

  /** Whether the site a recent drop happened at is folded as benign. */
  private benignSite(r: DropRecord): boolean {
    const b = this.bases.get(baseKey(BigInt(r.location), r.reasonCode ?? 0, r.ifindex, r.netns));
    return b !== undefined && this.benignOf(b) !== null;
  }

  private addFlow(d: RawDrop, ifname: string | null, fk: string, t: number, n: number, len: number): void {
    const { location, ifindex, netns } = d;
    const reason = d.hasReason ? d.reason : 0;
    if (ifname) this.ifnames.set(`${netns}|${ifindex}`, ifname);
    const bk = baseKey(location, reason, ifindex, netns);
    let b = this.bases.get(bk);
    if (!b) {
      // events can arrive before the counts that include them: hold their details meanwhile
      b = newBase({ location, reason, ifindex, netns, packets: 0, bytes: 0 }, t);
      this.bases.set(bk, b);
    }
    let rule = b.classOf.get(fk);
    if (rule === undefined) {
      rule = this.classify(d);
      if (b.classOf.size < MAX_CLASSES_PER_BASE) b.classOf.set(fk, rule);
    }
    b.seen += n;
    if (d.daddr !== null) {
      if (!isGroupAddress(d.daddr)) b.unicast += n;
      else if (b.groupFlows.size < MAX_CLASSES_PER_BASE) b.groupFlows.add(fk);
    }
    if (d.l4proto === IPPROTO_TCP && d.tcpFlags !== null && (d.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN) b.syn += n;
    if (rule) {
      b.benignSeen += n;
      b.shapeRule ??= rule;
    }
    if (b.flows.size < MAX_FLOWS_PER_BASE || b.flows.has(fk)) bump(b.flows, fk, n);
    let f = this.flows.get(fk);
    if (!f) {
      if (this.flows.size >= MAX_FLOWS) return;
      f = { total: 0, bytes: 0, first: t, last: t, seconds: new Map(), bases: new Map(), rule };
      this.flows.set(fk, f);
    }
    f.total += n;
    f.bytes += len;
    f.last = t;
    bump(f.bases, bk, n);
    const sec = Math.floor(t / 1000);
    f.seconds.set(sec, (f.seconds.get(sec) ?? 0) + n);
    if (f.seconds.size > HISTORY + 2) f.seconds.delete(f.seconds.keys().next().value!);
  }

  /** Starts counting from zero again; the kernel keeps counting, we keep a baseline. */
  clear(now: number): void {
    for (const b of this.bases.values()) {
      b.zeroPackets = b.packets;
      b.zeroBytes = b.bytes;
      b.flows.clear();
      b.seen = b.benignSeen = b.syn = b.unicast = 0;
      b.groupFlows.clear();
      b.shapeRule = null;
    }
    this.flows.clear();
    this.samples = [];
    this.recent = [];
    if (this.raw) this.raw.count = 0;
    this.start = now;
    const packets = new Map<string, number>();
    for (const k of this.bases.keys()) packets.set(k, 0);
    this.samples.push({ t: now, packets });
  }

  private recentRecords(): DropRecord[] {
    this.materialize();
    return this.recent;
  }

  /** Names an interface known from elsewhere (a recording's NAMES block, /sys/class/net). */
  learnInterface(netns: number, ifindex: number, name: string): void {
    this.ifnames.set(`${netns}|${ifindex}`, name);
  }

  interfaceName(netns: number, ifindex: number): string {
    if (!ifindex) return '-';
    const k = `${netns}|${ifindex}`;
    let name = this.ifnames.get(k);
    if (name === undefined) {
      // asked once: a miss (the interface is gone) stays ifN rather than being asked every refresh
      name = this.naming.interface?.(netns, ifindex) ?? `if${ifindex}`;
      this.ifnames.set(k, name);
    }
    return name;
  }

  private groupOf(by: GroupBy, k: string, b: Base): string {
    switch (by) {
      case 'location':
        return this.naming.location(b.location).symbol;
      case 'function':
        return this.naming.location(b.location).function;
      case 'reason':
        return this.naming.reason(b.reason);
      case 'interface':
        return this.interfaceName(b.netns, b.ifindex);
      case 'netns':
        return this.netnsLabel(b.netns);
      case 'pod':
        return this.naming.pod?.(b.netns, b.ifindex) ?? '(no pod)';
      default:
        return k;
    }
  }

  /** "inode (name)" with the ip-netns name: hints build `ip netns exec NAME` from it */
  private netnsLabel(inode: number): string {
    const name = this.naming.netns?.(inode);
    return name ? `${inode} (${name})` : String(inode);
  }

  /** The newest sample taken at or before t (or the oldest there is). */
  private sampleAt(t: number): Sample | undefined {
    let found: Sample | undefined = this.samples[0];
    for (const s of this.samples) {
      if (s.t <= t) found = s;
      else break;
    }
    return found;
  }

  snapshot(now: number, groupBy: GroupBy = 'location', sortBy: SortBy = 'rate', benign: BenignMode = 'fold'): Snapshot {
    const latest = this.samples[this.samples.length - 1];
    const fold = benign === 'fold';
    const rows =
      groupBy === 'flow'
        ? this.flowRows(now, fold)
        : this.countRows(now, groupBy, latest, (k, b) => (fold && this.benignOf(b) ? null : this.groupOf(groupBy, k, b)));
    const sorters: Record<SortBy, (a: GroupRow, b: GroupRow) => number> = {
      rate: (a, b) => b.rateAvg - a.rateAvg || b.rate1 - a.rate1 || b.total - a.total,
      count: (a, b) => b.total - a.total,
      name: (a, b) => a.key.localeCompare(b.key),
      last: (a, b) => b.lastSeen - a.lastSeen,
    };
    rows.sort((a, b) => sorters[sortBy](a, b) || a.key.localeCompare(b.key));
    const all = this.countRows(now, 'reason', latest, () => '')[0];
    const folded = fold
      ? this.countRows(now, 'location', latest, (_k, b) => this.benignOf(b)?.id ?? null)
          .sort((a, b) => b.total - a.total || a.key.localeCompare(b.key))
          .map((r) => ({ rule: r.key, title: benignTitle(r.key), total: r.total, rate1: r.rate1, rate10: r.rate10, interfaces: r.interfaces, locations: r.locations }))
      : [];
    return {
      time: now,
      elapsedMs: this.start === null ? 0 : now - this.start,
      groupBy,
      sortBy,
      total: all?.total ?? 0,
      rate1: all?.rate1 ?? 0,
      rate10: all?.rate10 ?? 0,
      rateAvg: all?.rateAvg ?? 0,
      rows,
      benign: folded,
      recent: (fold ? this.recentRecords().filter((r) => !this.benignSite(r)) : this.recentRecords()).slice(-50),
    };
  }

  /** Rows of the sites keyOf puts in a group (null: in none). */
  private countRows(now: number, groupBy: GroupBy, latest: Sample | undefined, keyOf: (k: string, b: Base) => string | null): GroupRow[] {
    if (!latest) return [];
    const s1 = this.sampleAt(now - 1000);
    const s10 = this.sampleAt(now - 10_000);
    const marks: Array<Sample | undefined> = [];
    for (let i = HISTORY; i >= 0; i--) marks.push(this.sampleAt(now - i * 1000));
    type G = GroupRow & { locs: Map<string, number>; rs: Map<string, number>; ifs: Map<string, number>; nss: Map<string, number>; fls: Map<string, number>; rules: Set<string | null> };
    const groups = new Map<string, G>();
    for (const [k, b] of this.bases) {
      const total = b.packets - b.zeroPackets;
      if (total <= 0) continue;
      const key = keyOf(k, b);
      if (key === null) continue;
      let g = groups.get(key);
      if (!g) {
        g = {
          key,
          total: 0,
          bytes: 0,
          rate1: 0,
          rate10: 0,
          rateAvg: 0,
          history: new Array(HISTORY).fill(0),
          firstSeen: b.first,
          lastSeen: b.last,
          exact: true,
          module: groupBy === 'location' || groupBy === 'function' ? this.naming.location(b.location).module : null,
          locations: [],
          reasons: [],
          interfaces: [],
          netns: [],
          flows: [],
          benign: null,
          syn: 0,
          unicast: 0,
          topUnicast: null,
          locs: new Map(),
          rs: new Map(),
          ifs: new Map(),
          nss: new Map(),
          fls: new Map(),
          rules: new Set(),
        };
        groups.set(key, g);
      }
      g.total += total;
      g.bytes += b.bytes - b.zeroBytes;
      g.firstSeen = Math.min(g.firstSeen, b.first);
      g.lastSeen = Math.max(g.lastSeen, b.last);
      const cur = latest.packets.get(k) ?? total;
      const rate = (s: Sample | undefined) => (s && now > s.t ? (cur - (s.packets.get(k) ?? 0)) / ((now - s.t) / 1000) : 0);
      g.rate1 += rate(s1);
      g.rate10 += rate(s10);
      for (let i = 0; i < HISTORY; i++) {
        // a key absent from an older sample was born after it: it counted from zero
        const older = marks[i]?.packets.get(k) ?? 0;
        const newer = marks[i + 1]?.packets.get(k) ?? 0;
        g.history[i] += Math.max(0, newer - older);
      }
      bump(g.locs, this.naming.location(b.location).symbol, total);
      bump(g.rs, this.naming.reason(b.reason), total);
      bump(g.ifs, this.interfaceName(b.netns, b.ifindex), total);
      bump(g.nss, this.netnsLabel(b.netns), total);
      for (const [f, n] of b.flows) {
        bump(g.fls, f, n);
        if (!b.groupFlows.has(f) && n > (g.topUnicast?.count ?? 0)) g.topUnicast = { key: f, count: n };
      }
      g.syn += b.syn;
      g.unicast += b.unicast;
      g.rules.add(this.benignOf(b)?.id ?? null);
    }
    return [...groups.values()].map(({ locs, rs, ifs, nss, fls, rules, ...row }) => ({
      ...row,
      rateAvg: decayedRate(row.history),
      locations: top(locs),
      reasons: top(rs),
      interfaces: top(ifs),
      netns: top(nss),
      flows: top(fls),
      // a row is benign only when every site in it is, by the same rule
      benign: rules.size === 1 ? ([...rules][0] ?? null) : null,
    }));
  }

  private flowRows(now: number, fold: boolean): GroupRow[] {
    const sec = Math.floor(now / 1000);
    const out: GroupRow[] = [];
    for (const [key, f] of this.flows) {
      if (fold && f.rule) continue;
      const history = new Array(HISTORY).fill(0);
      let last10 = 0;
      for (const [s, n] of f.seconds) {
        const age = sec - s;
        if (age >= 0 && age < HISTORY) history[HISTORY - 1 - age] += n;
        if (age >= 0 && age < 10) last10 += n;
      }
      const locs = new Map<string, number>();
      const rs = new Map<string, number>();
      const ifs = new Map<string, number>();
      const nss = new Map<string, number>();
      for (const [bk, n] of f.bases) {
        const b = this.bases.get(bk);
        if (!b) continue;
        bump(locs, this.naming.location(b.location).symbol, n);
        bump(rs, this.naming.reason(b.reason), n);
        bump(ifs, this.interfaceName(b.netns, b.ifindex), n);
        bump(nss, this.netnsLabel(b.netns), n);
      }
      out.push({
        key,
        total: f.total,
        bytes: f.bytes,
        rate1: history[HISTORY - 1] + (history[HISTORY - 2] ?? 0) / 2,
        rate10: last10 / 10,
        rateAvg: decayedRate(history),
        history,
        firstSeen: f.first,
        lastSeen: f.last,
        exact: false,
        module: null,
        locations: top(locs),
        reasons: top(rs),
        interfaces: top(ifs),
        netns: top(nss),
        flows: [],
        benign: f.rule?.id ?? null,
        syn: 0,
        unicast: 0,
        topUnicast: null,
      });
    }
    return out;
  }
}

const SPARKS = '▁▂▃▄▅▆▇█';

/** A sparkline of the last `width` points, scaled to the largest. ASCII when asked. */
export function sparkline(history: number[], width = 20, ascii = false): string {
  const pts = history.slice(-width);
  const max = Math.max(...pts, 0);
  const chars = ascii ? ' .:-=+*#' : SPARKS;
  return pts.map((v) => (max === 0 || v === 0 ? (ascii ? ' ' : ' ') : chars[Math.min(chars.length - 1, Math.floor((v / max) * (chars.length - 1)))])).join('');
}
