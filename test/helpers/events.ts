/**
 * Builds one dt_event record the way the BPF program fills it (a constructed
 * record for unit tests; real ones come from the kernel tests and fixtures).
 */
import { EV, EVENT_SIZE } from '../../src/model/decode.js';

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
}

export function eventRecord(f: EventFields): Buffer {
  const b = Buffer.alloc(EVENT_SIZE);
  b.writeBigUInt64LE(f.tsNs ?? 1_000_000_000n, EV.ts_ns);
  b.writeBigUInt64LE(f.location, EV.location);
  b.writeUInt32LE(f.reason, EV.reason);
  b.writeUInt32LE(60, EV.len);
  b.writeUInt32LE(f.ifindex ?? 0, EV.ifindex);
  b.writeUInt32LE(f.netns ?? 4026532001, EV.netns);
  b.writeUInt16LE(f.ethertype ?? 0x0800, EV.ethertype);
  b[EV.l4proto] = f.l4;
  b[EV.ipver] = f.ipver;
  b.writeUInt16LE(f.sport, EV.sport);
  b.writeUInt16LE(f.dport, EV.dport);
  b[EV.tcp_flags] = f.tcp;
  b[EV.flags] = f.flags;
  Buffer.from(f.saddr ?? [10, 244, 1, 2]).copy(b, EV.saddr);
  Buffer.from(f.daddr ?? [10, 244, 1, 1]).copy(b, EV.daddr);
  if (f.icmpType !== undefined) b[EV.icmp_type] = f.icmpType;
  b.write(f.ifname, EV.ifname, 'latin1');
  b.write('swapper/0', EV.comm, 'latin1');
  b.writeInt32LE(-1, EV.stack_id);
  if (f.inner) {
    const n = f.inner;
    b[EV.tunnel] = n.tunnel;
    b.writeUInt32LE(n.vni, EV.tunnel_id);
    b[EV.inner_flags] = n.flags;
    b[EV.inner_ipver] = n.ipver;
    b[EV.inner_l4proto] = n.l4;
    b.writeUInt16LE(n.sport, EV.inner_sport);
    b.writeUInt16LE(n.dport, EV.inner_dport);
    b[EV.inner_tcp_flags] = n.tcp;
    Buffer.from(n.saddr).copy(b, EV.inner_saddr);
    Buffer.from(n.daddr).copy(b, EV.inner_daddr);
  }
  return b;
}
