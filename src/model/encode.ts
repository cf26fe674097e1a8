/**
 * The other direction of decode.ts: a drop written as the BPF program writes struct dt_event,
 * for tests and synthetic benchmarks (never on the capture path). decodeEvent(encodeEvent(d))
 * is d: encode.test.ts holds the two to each other on every shape of record.
 */
import { addrBytes } from './addr.js';
import { CAP, EV, EVENT_SIZE, FLAG, IFLAG, PATH_SIZE, PP, ST, STEP_FLAG, STEPS_KEPT, stepAt, stepSlot, TUNNEL, type RawDrop, type RawFlow, type RawPath } from './decode.js';

type FlowOffsets = Record<'saddr' | 'daddr' | 'sport' | 'dport' | 'tcp' | 'icmpType' | 'icmpCode' | 'ipver' | 'l4proto', number>;
const OUTER: FlowOffsets = { saddr: EV.saddr, daddr: EV.daddr, sport: EV.sport, dport: EV.dport, tcp: EV.tcp_flags, icmpType: EV.icmp_type, icmpCode: EV.icmp_code, ipver: EV.ipver, l4proto: EV.l4proto };
const INNER: FlowOffsets = {
  saddr: EV.inner_saddr, daddr: EV.inner_daddr, sport: EV.inner_sport, dport: EV.inner_dport, tcp: EV.inner_tcp_flags,
  icmpType: EV.inner_icmp_type, icmpCode: EV.inner_icmp_code, ipver: EV.inner_ipver, l4proto: EV.inner_l4proto,
};

/** Writes one flow's fields; returns its L3/L4 flag bits (in the outer flags' positions). */
function writeFlow(b: Buffer, f: RawFlow, at: FlowOffsets): number {
  if (!f.ipver || f.l4proto === null) return 0;
  b[at.ipver] = f.ipver;
  b[at.l4proto] = f.l4proto;
  for (const [k, v] of [['saddr', f.saddr], ['daddr', f.daddr]] as const) {
    const bytes = v === null ? null : addrBytes(v);
    if (bytes) bytes.copy(b, at[k]);
  }
  let l4 = false;
  if (f.sport !== null && f.dport !== null) {
    b.writeUInt16LE(f.sport, at.sport);
    b.writeUInt16LE(f.dport, at.dport);
    if (f.tcpFlags !== null) b[at.tcp] = f.tcpFlags;
    l4 = true;
  } else if (f.icmpType !== null) {
    b[at.icmpType] = f.icmpType;
    b[at.icmpCode] = f.icmpCode ?? 0;
    l4 = true;
  }
  return FLAG.L3 | (l4 ? FLAG.L4 : 0);
}

/** struct dt_pkt_path of a path: steps where the kernel would have put them (pathAt's order reversed). */
function encodePath(p: RawPath): Buffer {
  const b = Buffer.alloc(PATH_SIZE);
  const seen = p.steps.length + p.cut;
  b.writeUInt32LE(seen, PP.steps);
  b.writeBigUInt64LE(p.dstInput, PP.dst_input);
  b.writeBigUInt64LE(p.dstOutput, PP.dst_output);
  p.steps.forEach((st, k) => {
    const n = k === 0 || seen <= STEPS_KEPT ? k : seen - p.steps.length + k;
    const s = stepAt(0, stepSlot(n));
    b.writeBigUInt64LE(st.tsNs, s + ST.ts_ns);
    b.writeUInt32LE(st.ifindex, s + ST.ifindex);
    b.writeUInt32LE(st.netns, s + ST.netns);
    b.writeUInt32LE(st.detail, s + ST.detail);
    b.writeInt32LE(st.result, s + ST.result);
    b.writeUInt16LE(st.cpu, s + ST.cpu);
    b[s + ST.kind] = st.kind;
    b[s + ST.flags] = st.reverse ? STEP_FLAG.REVERSE : 0;
    b.write(st.ifname, s + ST.ifname, 15, 'latin1');
    b.writeBigUInt64LE(st.fn, s + ST.fn);
  });
  return b;
}

/** One record of struct dt_event (then its captured packet bytes, then its path), as the program fills it. */
export function encodeEvent(d: RawDrop): Buffer {
  const ev = encodeFixed(d);
  return d.path ? Buffer.concat([ev, encodePath(d.path)]) : ev;
}

function encodeFixed(d: RawDrop): Buffer {
  const b = Buffer.alloc(EVENT_SIZE + (d.packet?.length ?? 0));
  b.writeBigUInt64LE(d.tsNs, EV.ts_ns);
  b.writeBigUInt64LE(d.location, EV.location);
  b.writeUInt32LE(d.reason, EV.reason);
  b.writeUInt32LE(d.cpu, EV.cpu);
  b.writeUInt32LE(d.pid, EV.pid);
  b.writeUInt32LE(d.len, EV.len);
  b.writeUInt32LE(d.ifindex, EV.ifindex);
  b.writeUInt32LE(d.iif, EV.iif);
  b.writeUInt32LE(d.netns, EV.netns);
  b.writeUInt32LE(d.mark, EV.mark);
  b.writeUInt16LE(d.ethertype, EV.ethertype);
  let flags = writeFlow(b, d, OUTER);
  if (d.hasReason) flags |= FLAG.REASON;
  if (d.path) flags |= FLAG.PATH;
  if (d.socket) flags |= FLAG.RX_SK;
  b[EV.flags] = flags;
  b.write(d.ifname, EV.ifname, 15, 'latin1');
  b.write(d.comm, EV.comm, 15, 'latin1');
  b.writeInt32LE(d.stackId ?? -1, EV.stack_id);
  if (d.packet) {
    b.writeUInt16LE(d.packet.length, EV.cap_len);
    d.packet.copy(b, EVENT_SIZE);
  }
  b[EV.cap_from] = d.packet ? d.capFrom : CAP.NONE;
  b.writeUInt32LE(d.origLen, EV.orig_len);
  if (d.inner) {
    b[EV.tunnel] = d.inner.tunnel === 'vxlan' ? TUNNEL.VXLAN : TUNNEL.GENEVE;
    b.writeUInt32LE(d.inner.vni, EV.tunnel_id);
    const f = writeFlow(b, d.inner, INNER);
    // the inner flags have their own bits: L3 and L4 in the same places, NOT_LINEAR beside
    b[EV.inner_flags] = (f & FLAG.L3 ? IFLAG.L3 : 0) | (f & FLAG.L4 ? IFLAG.L4 : 0) | (d.inner.read ? 0 : IFLAG.NOT_LINEAR);
  }
  if (d.socket) {
    const k = d.socket;
    b.writeBigUInt64LE(BigInt(k.cgroup), EV.sk_cgroup);
    b.writeUInt32LE(k.inode, EV.sk_ino);
    b.writeUInt32LE(k.uid, EV.sk_uid);
    b[EV.sk_family] = k.family;
    b[EV.sk_protocol] = k.protocol;
    b.writeUInt16LE(k.port, EV.sk_port);
    addrBytes(k.addr ?? '')?.copy(b, EV.sk_addr);
  }
  return b;
}
