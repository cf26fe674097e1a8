/**
 * Builds one dt_event record for unit tests from the few fields a test cares about, through
 * the model's own encoder (src/model/encode.ts); real records come from the kernel tests and
 * fixtures.
 */
import { ipv4, ipv6, type RawDrop, type RawInner, type RawSocket } from '../../src/model/decode.js';
import { encodeEvent } from '../../src/model/encode.js';

export interface EventFields {
  location: bigint;
  reason: number;
  flags: number;
  ipver: number;
  l4: number;
  sport: number;
  dport: number;
  tcp: number;
  ifname: string;
  ifindex?: number;
  netns?: number;
  tsNs?: bigint;
  /** skb->protocol (default IPv4) */
  ethertype?: number;
  /** network-order address bytes (default 10.244.1.2 > 10.244.1.1) */
  saddr?: number[];
  daddr?: number[];
  icmpType?: number;
  /** a VXLAN/Geneve packet's inner flow, as dt_parse_tunnel fills it */
  inner?: { tunnel: number; vni: number; flags: number; ipver: number; l4: number; sport: number; dport: number; tcp: number; saddr: number[]; daddr: number[] };
  /** the receiving socket, as dt_rx_sk fills it */
  socket?: RawSocket;
}

/** Address bytes as the record holds them (16 for IPv6, the rest zero) → the decoder's text. */
const text = (bytes: number[], ipver: number) => {
  const b = Buffer.alloc(16);
  Buffer.from(bytes).copy(b);
  return ipver === 6 ? ipv6(b, 0) : ipv4(b, 0);
};

/** flags as the program sets them: bit 0 an IP header read, bit 1 the ports or ICMP type, bit 2 a reason */
export function eventRecord(f: EventFields): Buffer {
  const l3 = (f.flags & 1) !== 0;
  const l4 = (f.flags & 2) !== 0;
  const ports = l4 && (f.l4 === 6 || f.l4 === 17);
  const icmp = l4 && (f.l4 === 1 || f.l4 === 58);
  let inner: RawInner | null = null;
  if (f.inner) {
    const n = f.inner;
    const nl3 = (n.flags & 1) !== 0;
    const nports = (n.flags & 2) !== 0 && (n.l4 === 6 || n.l4 === 17);
    inner = {
      tunnel: n.tunnel === 2 ? 'geneve' : 'vxlan', vni: n.vni, read: (n.flags & 4) === 0,
      ipver: (nl3 ? n.ipver : 0) as 0 | 4 | 6, l4proto: nl3 ? n.l4 : null, saddr: nl3 ? text(n.saddr, n.ipver) : null, daddr: nl3 ? text(n.daddr, n.ipver) : null,
      sport: nports ? n.sport : null, dport: nports ? n.dport : null, tcpFlags: nports && n.l4 === 6 ? n.tcp : null, icmpType: null, icmpCode: null,
    };
  }
  const d: RawDrop = {
    tsNs: f.tsNs ?? 1_000_000_000n, location: f.location, reason: f.reason, hasReason: (f.flags & 4) !== 0, cpu: 0, pid: 0, len: 60,
    ifindex: f.ifindex ?? 0, iif: 0, netns: f.netns ?? 4026532001, mark: 0, ethertype: f.ethertype ?? 0x0800,
    ipver: (l3 ? f.ipver : 0) as 0 | 4 | 6, l4proto: l3 ? f.l4 : null,
    saddr: l3 ? text(f.saddr ?? [10, 244, 1, 2], f.ipver) : null, daddr: l3 ? text(f.daddr ?? [10, 244, 1, 1], f.ipver) : null,
    sport: ports ? f.sport : null, dport: ports ? f.dport : null, tcpFlags: ports && f.l4 === 6 ? f.tcp : null,
    icmpType: icmp ? (f.icmpType ?? 0) : null, icmpCode: icmp ? 0 : null,
    ifname: f.ifname, comm: 'swapper/0', stackId: null, packet: null, capFrom: 0, origLen: 0, inner, path: null, socket: f.socket ?? null,
  };
  return encodeEvent(d);
}
