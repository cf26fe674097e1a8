/**
 * Decodes the fixed-size records the addon delivers (struct dt_event and
 * struct dt_count_rec in native/include/droptrace.h). Offsets are written
 * out here and checked against the addon's own offsetof() by
 * src/capture/layout.test.ts, so the two sides cannot drift silently.
 * Over 350 lines because it is the one place the record's layout is read: offsets, the
 * drop and its inner flow, the count records, the cached string reads of the hot path.
 */

/** sizeof(struct dt_event); a record is this plus the tracer's snaplen (plus PATH_SIZE with a path). */
export const EVENT_SIZE = 224;
/** sizeof(struct dt_event) in recording format 1: the record ended before the inner flow. */
export const EVENT_SIZE_V1 = 136;
/** sizeof(struct dt_event) in recording format 2: the record ended before the receiving socket. */
export const EVENT_SIZE_V2 = 184;
export const COUNT_SIZE = 40;

/** Offsets into struct dt_event. */
export const EV = {
  ts_ns: 0,
  location: 8,
  reason: 16,
  cpu: 20,
  pid: 24,
  len: 28,
  ifindex: 32,
  iif: 36,
  netns: 40,
  mark: 44,
  ethertype: 48,
  l4proto: 50,
  ipver: 51,
  sport: 52,
  dport: 54,
  tcp_flags: 56,
  icmp_type: 57,
  icmp_code: 58,
  flags: 59,
  saddr: 60,
  daddr: 76,
  ifname: 92,
  comm: 108,
  stack_id: 124,
  cap_len: 128,
  cap_from: 130,
  pad1: 131,
  orig_len: 132,
  inner_saddr: 136,
  inner_daddr: 152,
  tunnel_id: 168,
  inner_sport: 172,
  inner_dport: 174,
  tunnel: 176,
  inner_ipver: 177,
  inner_l4proto: 178,
  inner_flags: 179,
  inner_icmp_type: 180,
  inner_icmp_code: 181,
  inner_tcp_flags: 182,
  pad2: 183,
  sk_cgroup: 184,
  sk_ino: 192,
  sk_uid: 196,
  sk_addr: 200,
  sk_port: 216,
  sk_family: 218,
  sk_protocol: 219,
  pad3: 220,
} as const;

/** dt_event.tunnel */
export const TUNNEL = { NONE: 0, VXLAN: 1, GENEVE: 2 } as const;
/** dt_event.inner_flags */
export const IFLAG = { L3: 1, L4: 2, NOT_LINEAR: 4 } as const;

/** dt_event.cap_from */
export const CAP = { NONE: 0, MAC: 1, NETWORK: 2 } as const;

/** Offsets into struct dt_count_rec. */
export const CR = {
  'key.location': 0,
  'key.reason': 8,
  'key.ifindex': 12,
  'key.netns': 16,
  'val.packets': 24,
  'val.bytes': 32,
} as const;

export const FLAG = { L3: 1, L4: 2, REASON: 4, SK: 8, PATH: 16, RX_SK: 32 } as const;

/** sizeof(struct dt_trap_rec): one devlink trap's count, as traps() returns them. */
export const TRAP_SIZE = 224;
/** Offsets into struct dt_trap_rec. */
export const TR = {
  'key.devlink': 0,
  'key.trap': 8,
  'key.ifindex': 16,
  'key.netns': 20,
  'val.packets': 24,
  'val.bytes': 32,
  'val.type': 40,
  'val.trap': 48,
  'val.group': 96,
  'val.bus': 144,
  'val.device': 160,
  'val.ifname': 208,
} as const;
/** dt_trap_val.type: enum devlink_trap_type (control traps are not counted) */
export const TRAP = { DROP: 0, EXCEPTION: 1 } as const;

/** sizeof(struct dt_pkt_path): it ends every record of a tracer opened with packetPath (FLAG.PATH). */
export const PATH_SIZE = 1816;
export const STEP_SIZE = 56;
/** Offsets into struct dt_pkt_path, and into each of its struct dt_step. */
export const PP = { steps: 0, received: 4, dst_input: 8, dst_output: 16, step: 24 } as const;
export const ST = { ts_ns: 0, ifindex: 8, netns: 12, detail: 16, result: 20, cpu: 24, kind: 26, flags: 27, pad: 28, ifname: 32, fn: 48 } as const;
/** dt_step.kind, dt_step.flags */
export const STEP = { XMIT_QUEUE: 1, XMIT: 2, NETIF_RX: 3, GRO: 4, RX: 5, QDISC_ENQ: 6, QDISC_DEQ: 7, FIB: 8, FIB6: 9, FUNC: 10 } as const;
export const STEP_FLAG = { REVERSE: 1 } as const;

/**
 * Little-endian reads of a record's fields without Buffer's argument checks,
 * for the paths that touch every event (trace lines, the recorder): the
 * offsets come from the layout above, not from input.
 */
export const u32 = (b: Buffer, at: number): number => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16)) + b[at + 3] * 0x1000000;
export const u16 = (b: Buffer, at: number): number => b[at] | (b[at + 1] << 8);

/** One IP flow's headers as the BPF side read them: the packet's, or a tunnelled packet's inner one. */
export interface RawFlow {
  ipver: 0 | 4 | 6;
  l4proto: number | null;
  saddr: string | null;
  daddr: string | null;
  sport: number | null;
  dport: number | null;
  tcpFlags: number | null;
  icmpType: number | null;
  icmpCode: number | null;
}

/** One drop as the kernel saw it. Addresses are bigint: kernel text is above 2^53. */
export interface RawDrop extends RawFlow {
  tsNs: bigint;
  location: bigint;
  reason: number;
  hasReason: boolean;
  cpu: number;
  pid: number;
  len: number;
  ifindex: number;
  iif: number;
  netns: number;
  mark: number;
  ethertype: number;
  ifname: string;
  comm: string;
  /** kernel stack id (--stack), or null */
  stackId: number | null;
  /** captured packet bytes (--snaplen), starting with an Ethernet or IP header (capFrom) */
  packet: Buffer | null;
  capFrom: number;
  /** bytes from the capture start to the end of the packet, as the kernel had it */
  origLen: number;
  /** the inner flow of a VXLAN or Geneve packet, or null */
  inner: RawInner | null;
  /** what the skb met before the drop (packetPath), or null when the tracer did not follow paths */
  path: RawPath | null;
  /** the socket that refused the packet (the tracepoint's rx_sk, 6.11+), or null */
  socket: RawSocket | null;
}

/** The receiving socket of a drop, as dt_event's sk_* fields hold it. */
export interface RawSocket {
  /** its cgroup v2 id (the inode of the cgroup's directory); 0 when unknown */
  cgroup: number;
  /** its inode (ss -e, /proc/PID/fd); 0 for a kernel socket */
  inode: number;
  uid: number;
  /** AF_* */
  family: number;
  /** IPPROTO_* */
  protocol: number;
  /** its local address for AF_INET and AF_INET6, else null */
  addr: string | null;
  /** its local port (0: unbound) */
  port: number;
}

/** The receiving socket of the record at byte offset o, or null when the kernel named none. */
export function socketAt(buf: Buffer, o: number): RawSocket | null {
  if (!(buf[o + EV.flags] & FLAG.RX_SK)) return null;
  const family = buf[o + EV.sk_family];
  // kernfs ids on 64-bit kernels are small counters: exact as a number
  return {
    cgroup: Number(buf.readBigUInt64LE(o + EV.sk_cgroup)),
    inode: buf.readUInt32LE(o + EV.sk_ino),
    uid: buf.readUInt32LE(o + EV.sk_uid),
    family,
    protocol: buf[o + EV.sk_protocol],
    addr: family === 2 ? ipv4(buf, o + EV.sk_addr) : family === 10 ? ipv6(buf, o + EV.sk_addr) : null,
    port: buf.readUInt16LE(o + EV.sk_port),
  };
}

/** One step of a packet's path, as struct dt_step holds it. */
export interface RawStep {
  tsNs: bigint;
  /** a value of STEP */
  kind: number;
  ifindex: number;
  netns: number;
  ifname: string;
  /** FIB: the table; qdisc: the qdisc's handle */
  detail: number;
  /** FIB: 0 or -errno; FIB6: the route type (RTN_*) */
  result: number;
  cpu: number;
  /** a FIB lookup from the packet's destination back to its source (rp_filter) */
  reverse: boolean;
  /** STEP.FUNC: the kernel function's address; else 0n */
  fn: bigint;
}

/** The path of a dropped skb: its steps in the order seen, and the route it held at the drop. */
export interface RawPath {
  steps: RawStep[];
  /** steps seen but not kept (the kernel keeps the first and the latest SLOTS.steps - 1) */
  cut: number;
  /** skb_dst(skb)->input / ->output at the drop (kernel addresses), 0n without a route */
  dstInput: bigint;
  dstOutput: bigint;
}

/** Steps struct dt_pkt_path keeps (DT_STEPS). */
export const STEPS_KEPT = (PATH_SIZE - PP.step) / STEP_SIZE;

/** Where the kernel put the step it saw n-th (from 0): the first ones in order, then the latest rotate through step[1..] (dt_path_index). */
export const stepSlot = (n: number): number => (n < STEPS_KEPT ? n : 1 + ((n - 1) % (STEPS_KEPT - 1)));

/** How many steps the struct dt_pkt_path at byte offset p holds, and the byte offset of the i-th. */
export const keptSteps = (buf: Buffer, p: number): number => Math.min(buf.readUInt32LE(p + PP.steps), STEPS_KEPT);
export const stepAt = (p: number, i: number): number => p + PP.step + i * STEP_SIZE;

/** The path ending the record at byte offset o of a batch with this stride, or null when it has none. */
export function pathAt(buf: Buffer, o: number, stride: number): RawPath | null {
  if (!(buf[o + EV.flags] & FLAG.PATH)) return null;
  const p = o + stride - PATH_SIZE;
  const seen = buf.readUInt32LE(p + PP.steps);
  // kept: step[0..seen) while they fit; then step[0] and the latest, rotating through step[1..]
  const order: number[] = [];
  if (seen <= STEPS_KEPT) for (let n = 0; n < seen; n++) order.push(n);
  else {
    order.push(0);
    for (let n = seen - (STEPS_KEPT - 1); n < seen; n++) order.push(stepSlot(n));
  }
  return {
    steps: order.map((i) => {
      const s = stepAt(p, i);
      return {
        tsNs: buf.readBigUInt64LE(s + ST.ts_ns),
        kind: buf[s + ST.kind],
        ifindex: buf.readUInt32LE(s + ST.ifindex),
        netns: buf.readUInt32LE(s + ST.netns),
        ifname: cstr(buf, s + ST.ifname, 16),
        detail: buf.readUInt32LE(s + ST.detail),
        result: buf.readInt32LE(s + ST.result),
        cpu: buf.readUInt16LE(s + ST.cpu),
        reverse: (buf[s + ST.flags] & STEP_FLAG.REVERSE) !== 0,
        fn: buf.readBigUInt64LE(s + ST.fn),
      };
    }),
    cut: Math.max(0, seen - STEPS_KEPT),
    dstInput: buf.readBigUInt64LE(p + PP.dst_input),
    dstOutput: buf.readBigUInt64LE(p + PP.dst_output),
  };
}

/** What the BPF side read inside a tunnelled packet. */
export interface RawInner extends RawFlow {
  tunnel: 'vxlan' | 'geneve';
  vni: number;
  /** false: the inner headers lay beyond the linear data and were not read */
  read: boolean;
}

/** Where one flow's fields sit in struct dt_event: the packet's own, or the inner ones. */
type FlowOffsets = Record<'saddr' | 'daddr' | 'sport' | 'dport' | 'tcp' | 'icmpType' | 'icmpCode', number>;
const OUTER: FlowOffsets = { saddr: EV.saddr, daddr: EV.daddr, sport: EV.sport, dport: EV.dport, tcp: EV.tcp_flags, icmpType: EV.icmp_type, icmpCode: EV.icmp_code };
const INNER: FlowOffsets = { saddr: EV.inner_saddr, daddr: EV.inner_daddr, sport: EV.inner_sport, dport: EV.inner_dport, tcp: EV.inner_tcp_flags, icmpType: EV.inner_icmp_type, icmpCode: EV.inner_icmp_code };

/** One flow's fields of the record at byte offset o, given what its flags say was read. */
function flowAt(buf: Buffer, o: number, at: FlowOffsets, l3: boolean, l4: boolean, ipver: number, l4proto: number, v6: (b: Buffer, off: number) => string): RawFlow {
  const proto = l3 ? l4proto : null;
  const isPorts = l4 && (proto === 6 || proto === 17);
  const isIcmp = l4 && (proto === 1 || proto === 58);
  const addr = (off: number) => (!l3 ? null : ipver === 4 ? ipv4(buf, o + off) : v6(buf, o + off));
  return {
    ipver: (l3 ? ipver : 0) as 0 | 4 | 6,
    l4proto: proto,
    saddr: addr(at.saddr),
    daddr: addr(at.daddr),
    sport: isPorts ? buf.readUInt16LE(o + at.sport) : null,
    dport: isPorts ? buf.readUInt16LE(o + at.dport) : null,
    tcpFlags: isPorts && proto === 6 ? buf[o + at.tcp] : null,
    icmpType: isIcmp ? buf[o + at.icmpType] : null,
    icmpCode: isIcmp ? buf[o + at.icmpCode] : null,
  };
}

/** The inner flow of the record at byte offset o, or null when it is not a tunnelled packet. */
export function innerAt(buf: Buffer, o: number): RawInner | null {
  const t = buf[o + EV.tunnel];
  if (t !== TUNNEL.VXLAN && t !== TUNNEL.GENEVE) return null;
  const f = buf[o + EV.inner_flags];
  return {
    tunnel: t === TUNNEL.VXLAN ? 'vxlan' : 'geneve',
    vni: buf.readUInt32LE(o + EV.tunnel_id),
    read: (f & IFLAG.NOT_LINEAR) === 0,
    ...flowAt(buf, o, INNER, (f & IFLAG.L3) !== 0, (f & IFLAG.L4) !== 0, buf[o + EV.inner_ipver], buf[o + EV.inner_l4proto], ipv6),
  };
}


/** The per-(location, reason, ifindex, netns) exact count. */
export interface CountRecord {
  location: bigint;
  reason: number;
  ifindex: number;
  netns: number;
  packets: number;
  bytes: number;
}

/**
 * A device's hardware or driver drops of one trap on one input port (devlink:devlink_trap_report),
 * counted exactly since the tracer attached. `device` is devlink's handle, bus/name
 * ("pci/0000:03:00.0"), as `devlink trap show` prints it.
 */
export interface TrapRecord {
  trap: string;
  group: string;
  type: 'drop' | 'exception';
  device: string;
  ifindex: number;
  /** the input port's name when the trap was first seen ("" when the driver names no port) */
  ifname: string;
  netns: number;
  packets: number;
  bytes: number;
}

/** A trap's count as the kernel holds it, with what tells it from the others between reads. */
export interface TrapCount extends TrapRecord {
  /** identifies the trap of one device on one port (the map key's bytes) */
  key: string;
}

function cstr(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('latin1', off, end < 0 || end > off + len ? off + len : end);
}

export function ipv4(buf: Buffer, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

/** RFC 5952 text form: lower case, longest zero run folded, v4-mapped kept dotted. */
export function ipv6(buf: Buffer, off: number): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push(buf.readUInt16BE(off + 2 * i));
  if (w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0 && w[5] === 0xffff) {
    return `::ffff:${ipv4(buf, off + 12)}`;
  }
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** dt_event.ifname of the record at byte offset o ('' when the skb had no device). */
export function ifnameAt(buf: Buffer, o: number): string {
  return cachedStr(ifnameCache, buf, o + EV.ifname);
}

/** dt_event.comm of the record at byte offset o. */
export function commAt(buf: Buffer, o: number): string {
  return cachedStr(commCache, buf, o + EV.comm);
}

/** An address field (EV.saddr or EV.daddr) of the record at byte offset o, as decodeEvent gives it. */
export function addrAt(buf: Buffer, o: number, at: number, ipver: number): string {
  return ipver === 4 ? ipv4(buf, o + at) : cachedIpv6(buf, o + at);
}

/** Decodes record i of a batch whose records are `stride` bytes (EVENT_SIZE + snaplen [+ PATH_SIZE]). */
export function decodeEvent(buf: Buffer, i = 0, stride = EVENT_SIZE): RawDrop {
  const o = i * stride;
  const flags = buf[o + EV.flags];
  const cap = capLen(buf, o, stride);
  return {
    tsNs: buf.readBigUInt64LE(o + EV.ts_ns),
    location: buf.readBigUInt64LE(o + EV.location),
    reason: buf.readUInt32LE(o + EV.reason),
    hasReason: (flags & FLAG.REASON) !== 0,
    cpu: buf.readUInt32LE(o + EV.cpu),
    pid: buf.readUInt32LE(o + EV.pid),
    len: buf.readUInt32LE(o + EV.len),
    ifindex: buf.readUInt32LE(o + EV.ifindex),
    iif: buf.readUInt32LE(o + EV.iif),
    netns: buf.readUInt32LE(o + EV.netns),
    mark: buf.readUInt32LE(o + EV.mark),
    ethertype: buf.readUInt16LE(o + EV.ethertype),
    ...flowAt(buf, o, OUTER, (flags & FLAG.L3) !== 0, (flags & FLAG.L4) !== 0, buf[o + EV.ipver], buf[o + EV.l4proto], cachedIpv6),
    ifname: ifnameAt(buf, o),
    comm: commAt(buf, o),
    stackId: nonNegative(buf.readInt32LE(o + EV.stack_id)),
    // a view, not a copy: it keeps the batch alive only as long as the drop is kept
    packet: cap ? buf.subarray(o + EVENT_SIZE, o + EVENT_SIZE + cap) : null,
    capFrom: buf[o + EV.cap_from],
    origLen: buf.readUInt32LE(o + EV.orig_len),
    inner: innerAt(buf, o),
    path: pathAt(buf, o, stride),
    socket: socketAt(buf, o),
  };
}

/**
 * A flood repeats the same interface, command and addresses: compare the raw
 * bytes with the last record's (four 32-bit reads) before building a string.
 */
interface StrCache {
  w: Uint32Array;
  s: string;
}
const ifnameCache: StrCache = { w: new Uint32Array(4), s: '' };
const commCache: StrCache = { w: new Uint32Array(4), s: '' };
const v6Cache: StrCache = { w: new Uint32Array(4), s: '' };

function sameWords(c: StrCache, buf: Buffer, off: number): boolean {
  const a = buf.readUInt32LE(off);
  const b = buf.readUInt32LE(off + 4);
  const d = buf.readUInt32LE(off + 8);
  const e = buf.readUInt32LE(off + 12);
  if (c.w[0] === a && c.w[1] === b && c.w[2] === d && c.w[3] === e && c.s !== '') return true;
  c.w[0] = a;
  c.w[1] = b;
  c.w[2] = d;
  c.w[3] = e;
  return false;
}

function cachedStr(c: StrCache, buf: Buffer, off: number): string {
  if (sameWords(c, buf, off)) return c.s;
  c.s = cstr(buf, off, 16);
  if (c.s === '') c.w.fill(0xffffffff); // never match an empty string: '' marks "unset"
  return c.s;
}

function cachedIpv6(buf: Buffer, off: number): string {
  if (sameWords(v6Cache, buf, off)) return v6Cache.s;
  return (v6Cache.s = ipv6(buf, off));
}

function nonNegative(n: number): number | null {
  return n < 0 ? null : n;
}

function capLen(buf: Buffer, o: number, stride: number): number {
  const path = buf[o + EV.flags] & FLAG.PATH ? PATH_SIZE : 0;
  return Math.max(0, Math.min(buf.readUInt16LE(o + EV.cap_len), stride - EVENT_SIZE - path));
}

/** The frames of a kernel stack as the addon returns it (u64 little-endian, 0 past the end). */
export function stackFrames(buf: Buffer): bigint[] {
  const out: bigint[] = [];
  for (let o = 0; o + 8 <= buf.length; o += 8) {
    const a = buf.readBigUInt64LE(o);
    if (a) out.push(a);
  }
  return out;
}

/** Number of whole records in a batch. */
export function eventCount(buf: Buffer, stride = EVENT_SIZE): number {
  return Math.floor(buf.length / stride);
}

/** Decodes the addon's counts() buffer. */
export function decodeCounts(buf: Buffer): CountRecord[] {
  const out: CountRecord[] = [];
  for (let o = 0; o + COUNT_SIZE <= buf.length; o += COUNT_SIZE) {
    out.push({
      location: buf.readBigUInt64LE(o + CR['key.location']),
      reason: buf.readUInt32LE(o + CR['key.reason']),
      ifindex: buf.readUInt32LE(o + CR['key.ifindex']),
      netns: buf.readUInt32LE(o + CR['key.netns']),
      packets: Number(buf.readBigUInt64LE(o + CR['val.packets'])),
      bytes: Number(buf.readBigUInt64LE(o + CR['val.bytes'])),
    });
  }
  return out;
}

/** Decodes the addon's traps() buffer. */
export function decodeTraps(buf: Buffer): TrapCount[] {
  const out: TrapCount[] = [];
  for (let o = 0; o + TRAP_SIZE <= buf.length; o += TRAP_SIZE) {
    const bus = cstr(buf, o + TR['val.bus'], TR['val.device'] - TR['val.bus']);
    const dev = cstr(buf, o + TR['val.device'], TR['val.ifname'] - TR['val.device']);
    out.push({
      trap: cstr(buf, o + TR['val.trap'], TR['val.group'] - TR['val.trap']),
      group: cstr(buf, o + TR['val.group'], TR['val.bus'] - TR['val.group']),
      type: buf.readUInt32LE(o + TR['val.type']) === TRAP.EXCEPTION ? 'exception' : 'drop',
      device: bus ? `${bus}/${dev}` : dev,
      ifindex: buf.readUInt32LE(o + TR['key.ifindex']),
      ifname: cstr(buf, o + TR['val.ifname'], TRAP_SIZE - TR['val.ifname']),
      netns: buf.readUInt32LE(o + TR['key.netns']),
      packets: Number(buf.readBigUInt64LE(o + TR['val.packets'])),
      bytes: Number(buf.readBigUInt64LE(o + TR['val.bytes'])),
      key: buf.toString('hex', o, o + TR['val.packets']),
    });
  }
  return out;
}

/** The 24-byte count keys (struct dt_count_key, pad 0) of these records, as forget() takes them. */
export function encodeCountKeys(records: readonly CountRecord[]): Buffer {
  const KEY = CR['val.packets'];
  const buf = Buffer.alloc(records.length * KEY);
  records.forEach((r, i) => {
    const o = i * KEY;
    buf.writeBigUInt64LE(r.location, o + CR['key.location']);
    buf.writeUInt32LE(r.reason, o + CR['key.reason']);
    buf.writeUInt32LE(r.ifindex, o + CR['key.ifindex']);
    buf.writeUInt32LE(r.netns, o + CR['key.netns']);
  });
  return buf;
}

/** Sum of packets over count records, optionally only those matching. */
export function totalPackets(records: CountRecord[], match: (r: CountRecord) => boolean = () => true): number {
  let n = 0;
  for (const r of records) if (match(r)) n += r.packets;
  return n;
}
