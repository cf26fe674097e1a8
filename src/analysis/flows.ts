/**
 * Drops by flow (protocol, source, destination and port), counted from
 * events: what the `flow` grouping shows. Unlike the kernel's exact counts
 * these miss what the ring lost, so their rows say exact: false. Bounded:
 * a flood of distinct flows stops adding new ones at MAX_FLOWS.
 */
import type { BenignRule } from '../model/benign.js';
import type { RawDrop } from '../model/decode.js';
import { endpoint, l4Name, protocolName } from '../model/drop.js';
import { bump, decayedRate, HISTORY, top, type FlowFields, type GroupRow } from './snapshot.js';

const MAX_FLOWS = 5000;

function flowKeyOf(proto: string, saddr: string, daddr: string | null, dport: number | null, ipver: number): string {
  return `${proto} ${saddr} > ${daddr === null ? '?' : endpoint(daddr, ipver, dport)}`;
}

/**
 * The flow key of a raw drop: "TCP 10.0.0.1 > 10.0.0.2:80", or its protocol alone. A tunnelled
 * packet's key is its inner flow first, then the tunnel and the outer flow:
 * "TCP 10.244.2.2 > 10.244.1.1:2483 in vxlan 1 (UDP 192.168.1.11 > 192.168.1.10:8472)".
 */
export function rawFlowKey(d: RawDrop): string {
  const proto = protocolName(d.ethertype, d.ipver);
  const outer = d.saddr ? flowKeyOf(l4Name(d.l4proto) ?? proto, d.saddr, d.daddr, d.dport, d.ipver) : proto;
  const i = d.inner;
  if (!i) return outer;
  const inner = i.saddr ? flowKeyOf(l4Name(i.l4proto) ?? '?', i.saddr, i.daddr, i.dport, i.ipver) : i.read ? 'no inner IP' : 'inner headers not read';
  return `${inner} in ${i.tunnel} ${i.vni} (${outer})`;
}

/** The fields of a raw drop's (outer) flow. */
export function rawFlowFields(d: RawDrop): FlowFields {
  return {
    ipver: d.ipver === 4 || d.ipver === 6 ? d.ipver : null, l4: l4Name(d.l4proto), saddr: d.saddr, daddr: d.daddr, dport: d.dport,
    tunnel: d.inner ? { kind: d.inner.tunnel, vni: d.inner.vni } : null,
  };
}


interface Flow {
  total: number;
  bytes: number;
  first: number;
  last: number;
  /** drops per wall-clock second, for the last HISTORY seconds */
  seconds: Map<number, number>;
  /** drops per count key (site, reason, interface, netns) */
  bases: Map<string, number>;
  rule: BenignRule | null;
  fields: FlowFields | null;
}

/** What a count key is called in a row's lists. */
export interface BaseNames {
  location: string;
  reason: string;
  interface: string;
  netns: string;
}

export class FlowTable {
  private readonly flows = new Map<string, Flow>();

  /** n drops (len bytes) of flow fk at count key bk, at wall time t. */
  add(fk: string, bk: string, rule: BenignRule | null, t: number, n: number, len: number, fields: FlowFields | null = null): void {
    let f = this.flows.get(fk);
    if (!f) {
      if (this.flows.size >= MAX_FLOWS) return;
      f = { total: 0, bytes: 0, first: t, last: t, seconds: new Map(), bases: new Map(), rule, fields };
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

  clear(): void {
    this.flows.clear();
  }

  /** One row per flow (benign ones left out when folding), named through names(). */
  rows(now: number, fold: boolean, names: (bk: string) => BaseNames | null): GroupRow[] {
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
        const b = names(bk);
        if (!b) continue;
        bump(locs, b.location, n);
        bump(rs, b.reason, n);
        bump(ifs, b.interface, n);
        bump(nss, b.netns, n);
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
        sockets: [],
        flow: f.fields,
        benign: f.rule?.id ?? null,
        syn: 0,
        unicast: 0,
        topUnicast: null,
      });
    }
    return out;
  }
}
