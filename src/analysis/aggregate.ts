/**
 * Turns exact in-kernel counts and the event stream into snapshots grouped
 * by location, function, reason, interface, netns or flow. Pure: time is
 * passed in, names come from a Naming, nothing here touches the kernel or
 * the terminal. Counts come from the kernel's map, so they stay right when
 * events are lost or sampled; events only add details (flows, names).
 *
 * Over 350 lines because ingestion and the rows share one private state:
 * each count key's record (Base) carries the benign verdict and the flow
 * tallies that both addBatch and the row builders read and write. Flows by
 * themselves (flows.ts), batch folding (fold.ts), the recent drops (recent.ts),
 * the counts over the last minute (history.ts) and the snapshot's shape
 * (snapshot.ts) are apart.
 */
import { CountHistory, type Sample } from './history.js';
import { RecentDrops } from './recent.js';
import { InterfaceNames } from '../model/interfaces.js';
import type { Naming } from '../model/naming.js';
import { benignRule, classify, classifySite, isGroupAddress, type BenignRule } from '../model/benign.js';
import type { CountRecord, RawDrop } from '../model/decode.js';
import type { DropRecord } from '../model/drop.js';
import { FlowTable, rawFlowFields, rawFlowKey } from './flows.js';
import type { FlowFields } from './snapshot.js';
import { BatchFolder } from './fold.js';
import { bump, decayedRate, HISTORY, top, type BenignMode, type GroupBy, type GroupRow, type RawToRecord, type Snapshot, type SortBy } from './snapshot.js';


/** A kernel count key with what we know about it: its baseline after clear, its flows. */
interface Base extends CountRecord {
  zeroPackets: number;
  zeroBytes: number;
  first: number;
  last: number;
  flows: Map<string, number>;
  /** receiving sockets named by events (6.11+), with their drops */
  sockets: Map<string, number>;
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

const MAX_FLOWS_PER_BASE = 32;
/** flows whose fields are remembered for the hints (keys beyond it have none) */
const MAX_FLOW_FIELDS = 10_000;
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


function benignTitle(id: string): string {
  return benignRule(id)?.title ?? id;
}

function newBase(r: CountRecord, first: number): Base {
  return { ...r, zeroPackets: 0, zeroBytes: 0, first, last: first, flows: new Map(), sockets: new Map(), seen: 0, benignSeen: 0, syn: 0, unicast: 0, groupFlows: new Set(), shapeRule: null, classOf: new Map() };
}

export class Aggregator {
  private readonly bases = new Map<string, Base>();
  private readonly flows = new FlowTable();
  private readonly flowFields = new Map<string, FlowFields>();
  private readonly ifnames = new InterfaceNames();
  private readonly folder = new BatchFolder();
  private readonly history = new CountHistory();
  private readonly recent: RecentDrops;
  private start: number | null = null;

  /**
   * weight: drops each event stands for (--sample N: N). Flow rows, which
   * come from events, are scaled by it; count rows come from the kernel.
   */
  constructor(
    private readonly naming: Naming,
    recentSize = 200,
    private readonly weight = 1,
  ) {
    this.recent = new RecentDrops(recentSize);
  }

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
    this.history.add(now, packets);
  }

  /**
   * A batch of raw event records (live, diagnose, a recording played or
   * reported: the one way events come in). Records are folded into flows
   * without decoding each one; the raw bytes of the last few are kept and
   * become records only when a snapshot shows them.
   */
  addBatch(buf: Buffer, stride: number, count: number, wallOffsetMs: number, toRecord: RawToRecord): void {
    this.folder.fold(buf, stride, count, wallOffsetMs, (entries, wallMsOf) => {
      for (const e of entries) {
        const d = e.drop;
        this.addFlow(d, d.ifname || null, rawFlowKey(d), wallMsOf(e.last), e.count * this.weight, e.bytes * this.weight);
      }
    });
    // the raw bytes of the last few become records only when a snapshot shows them
    this.recent.add(buf, stride, count, toRecord);
  }

  /** The benign rule a drop with this raw shape matches. */
  private classify(d: RawDrop): BenignRule | null {
    return classify({
      reason: d.hasReason ? this.naming.reason(d.reason) : null,
      function: this.naming.location(d.location).function,
      ethertype: d.ethertype,
      l4proto: d.l4proto,
      daddr: d.daddr,
      ipver: d.ipver,
      device: d.ifindex !== 0,
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
    if (ifname) this.ifnames.learn(netns, ifindex, ifname);
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
      if (!isGroupAddress(d.daddr, d.ipver)) b.unicast += n;
      else if (b.groupFlows.size < MAX_CLASSES_PER_BASE) b.groupFlows.add(fk);
    }
    if (d.l4proto === IPPROTO_TCP && d.tcpFlags !== null && (d.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN) b.syn += n;
    if (rule) {
      b.benignSeen += n;
      b.shapeRule ??= rule;
    }
    if (b.flows.size < MAX_FLOWS_PER_BASE || b.flows.has(fk)) bump(b.flows, fk, n);
    if (d.socket && this.naming.socket) {
      const sk = this.naming.socket(d.socket);
      if (b.sockets.size < MAX_FLOWS_PER_BASE || b.sockets.has(sk)) bump(b.sockets, sk, n);
    }
    let fields = this.flowFields.get(fk);
    if (!fields && this.flowFields.size < MAX_FLOW_FIELDS) this.flowFields.set(fk, (fields = rawFlowFields(d)));
    this.flows.add(fk, bk, rule, t, n, len, fields ?? null);
  }

  /** Starts counting from zero again; the kernel keeps counting, we keep a baseline. */
  clear(now: number): void {
    for (const b of this.bases.values()) {
      b.zeroPackets = b.packets;
      b.zeroBytes = b.bytes;
      b.flows.clear();
      b.sockets.clear();
      b.seen = b.benignSeen = b.syn = b.unicast = 0;
      b.groupFlows.clear();
      b.shapeRule = null;
    }
    this.flows.clear();
    this.recent.clear();
    this.start = now;
    this.history.clear(now, this.bases.keys());
  }

  /** Names an interface known from elsewhere (a recording's NAMES block, /sys/class/net). */
  /** Every count key's drops since the last clear: namespace, interface name, reason name. */
  keyTotals(): Array<{ netns: number; iface: string; reason: string; packets: number }> {
    const out: Array<{ netns: number; iface: string; reason: string; packets: number }> = [];
    for (const b of this.bases.values()) {
      const packets = b.packets - b.zeroPackets;
      if (packets > 0) out.push({ netns: b.netns, iface: this.interfaceName(b.netns, b.ifindex), reason: this.naming.reason(b.reason), packets });
    }
    return out;
  }

  /**
   * The row each count key (baseKey) falls in for a grouping, as snapshot()
   * builds them: null for keys folded as benign. For drawing a row's counts
   * over time from per-key samples.
   */
  rowKeys(groupBy: Exclude<GroupBy, 'flow'>, benign: BenignMode = 'fold'): Map<string, string | null> {
    const out = new Map<string, string | null>();
    for (const [k, b] of this.bases) out.set(k, benign === 'fold' && this.benignOf(b) ? null : this.groupOf(groupBy, k, b));
    return out;
  }

  learnInterface(netns: number, ifindex: number, name: string): void {
    this.ifnames.learn(netns, ifindex, name);
  }

  interfaceName(netns: number, ifindex: number): string {
    if (!ifindex) return '-';
    let name = this.ifnames.known(netns, ifindex);
    if (name === null) {
      // asked once: a miss (the interface is gone) stays ifN rather than being asked every refresh
      name = this.naming.interface?.(netns, ifindex) ?? `if${ifindex}`;
      this.ifnames.learn(netns, ifindex, name);
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

  snapshot(now: number, groupBy: GroupBy = 'location', sortBy: SortBy = 'rate', benign: BenignMode = 'fold'): Snapshot {
    const latest = this.history.latest;
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
      recent: (fold ? this.recent.records().filter((r) => !this.benignSite(r)) : this.recent.records()).slice(-50),
    };
  }

  /** Rows of the sites keyOf puts in a group (null: in none). */
  private countRows(now: number, groupBy: GroupBy, latest: Sample | undefined, keyOf: (k: string, b: Base) => string | null): GroupRow[] {
    if (!latest) return [];
    const s1 = this.history.at(now - 1000);
    const s10 = this.history.at(now - 10_000);
    const marks: Array<Sample | undefined> = [];
    for (let i = HISTORY; i >= 0; i--) marks.push(this.history.at(now - i * 1000));
    type G = GroupRow & { locs: Map<string, number>; rs: Map<string, number>; ifs: Map<string, number>; nss: Map<string, number>; fls: Map<string, number>; sks: Map<string, number>; rules: Set<string | null> };
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
          sockets: [],
          flow: null,
          benign: null,
          syn: 0,
          unicast: 0,
          topUnicast: null,
          locs: new Map(),
          rs: new Map(),
          ifs: new Map(),
          nss: new Map(),
          fls: new Map(),
          sks: new Map(),
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
      for (const [sk, n] of b.sockets) bump(g.sks, sk, n);
      g.syn += b.syn;
      g.unicast += b.unicast;
      g.rules.add(this.benignOf(b)?.id ?? null);
    }
    return [...groups.values()].map(({ locs, rs, ifs, nss, fls, sks, rules, ...row }) => ({
      ...row,
      rateAvg: decayedRate(row.history),
      locations: top(locs),
      reasons: top(rs),
      interfaces: top(ifs),
      netns: top(nss),
      flows: top(fls),
      sockets: top(sks),
      flow: this.flowFields.get(top(fls)[0]?.key ?? '') ?? null,
      // a row is benign only when every site in it is, by the same rule
      benign: rules.size === 1 ? ([...rules][0] ?? null) : null,
    }));
  }

  private flowRows(now: number, fold: boolean): GroupRow[] {
    return this.flows.rows(now, fold, (bk) => {
      const b = this.bases.get(bk);
      return b ? { location: this.naming.location(b.location).symbol, reason: this.naming.reason(b.reason), interface: this.interfaceName(b.netns, b.ifindex), netns: this.netnsLabel(b.netns) } : null;
    });
  }

}
