/**
 * A drop made readable: the raw record plus its symbol, reason name and
 * wall-clock time. This is the shape of `trace --json` (one object a line)
 * and what the text line is printed from. Pure.
 */
import { addrAt, commAt, EV, FLAG, ifnameAt, type RawDrop } from './decode.js';
import { formatSymbol, type SymbolLookup } from './kallsyms.js';
import type { ReasonTable } from './reasons.js';
import { hintId } from './hints.js';

/** One line of `droptrace trace --json`. Field names are a public format: add, never rename. */
export interface DropRecord {
  time: string;
  location: string;
  symbol: string;
  function: string | null;
  offset: number | null;
  module: string | null;
  reason: string | null;
  reasonCode: number | null;
  ifindex: number;
  ifname: string | null;
  iif: number;
  netns: number;
  protocol: string;
  l4: string | null;
  saddr: string | null;
  daddr: string | null;
  sport: number | null;
  dport: number | null;
  tcpFlags: string | null;
  icmpType: number | null;
  icmpCode: number | null;
  len: number;
  mark: number;
  cpu: number;
  pid: number;
  comm: string;
  /** id of the hint that explains this drop (src/hints.ts), or null */
  hint: string | null;
  /** Kubernetes pod of the drop's netns (namespace/name, container id), when attributed */
  namespace: string | null;
  pod: string | null;
  container: string | null;
}

const ETHERTYPES: Record<number, string> = { 0x0800: 'IPv4', 0x86dd: 'IPv6', 0x0806: 'ARP', 0x8100: '802.1Q', 0x88cc: 'LLDP' };
const L4: Record<number, string> = { 0: 'HOPOPT', 1: 'ICMP', 2: 'IGMP', 6: 'TCP', 17: 'UDP', 47: 'GRE', 50: 'ESP', 58: 'ICMPv6', 132: 'SCTP' };

export function protocolName(ethertype: number, ipver: number): string {
  if (ETHERTYPES[ethertype]) return ETHERTYPES[ethertype];
  if (ipver === 4) return 'IPv4';
  if (ipver === 6) return 'IPv6';
  return ethertype ? `0x${ethertype.toString(16).padStart(4, '0')}` : 'none';
}

export function l4Name(proto: number | null): string | null {
  if (proto === null) return null;
  return L4[proto] ?? String(proto);
}

/** TCP flags in tcpdump's letters: S SYN, F FIN, R RST, P PSH, . ACK, U URG, E ECE, W CWR. */
export function tcpFlagLetters(flags: number): string {
  let s = '';
  if (flags & 0x02) s += 'S';
  if (flags & 0x01) s += 'F';
  if (flags & 0x04) s += 'R';
  if (flags & 0x08) s += 'P';
  if (flags & 0x20) s += 'U';
  if (flags & 0x40) s += 'E';
  if (flags & 0x80) s += 'W';
  if (flags & 0x10) s += '.';
  return s || 'none';
}

/** Offset from the BPF clock (CLOCK_MONOTONIC) to wall time, in ns; measure once per run. */
export function monotonicToWallOffset(): bigint {
  return BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
}

interface LocInfo {
  location: string;
  symbol: string;
  function: string | null;
  offset: number | null;
  module: string | null;
  /** hint id per reason code (-1: no reason) */
  hints: Map<number, string | null>;
  /** per reason code (-1: no reason): the JSON from "location" to "reasonCode", and the hint member */
  json: Map<number, { head: string; hint: string }>;
}

// Per-table caches: a node has few drop sites, and a flood repeats one of them per event.
const locCache = new WeakMap<object, Map<bigint, LocInfo>>();
const NO_TABLE = {};
let lastMs = -1;
let lastIso = '';

function locInfo(syms: SymbolLookup | null, addr: bigint): LocInfo {
  const key = syms ?? NO_TABLE;
  let m = locCache.get(key);
  if (!m) locCache.set(key, (m = new Map()));
  let v = m.get(addr);
  if (!v) {
    const r = syms ? syms.lookup(addr) : null;
    const ok = r && !r.implausible;
    v = { location: `0x${addr.toString(16)}`, symbol: formatSymbol(r, addr), function: ok ? r.name : null, offset: ok ? r.offset : null, module: ok ? r.module : null, hints: new Map(), json: new Map() };
    if (m.size < 100_000) m.set(addr, v);
  }
  return v;
}

function isoTime(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

function hintOf(loc: LocInfo, hk: number, reason: string | null): string | null {
  let hint = loc.hints.get(hk);
  if (hint === undefined) loc.hints.set(hk, (hint = hintId(reason, loc.function)));
  return hint;
}

export function toRecord(d: RawDrop, syms: SymbolLookup | null, reasons: ReasonTable, wallOffsetNs: bigint): DropRecord {
  const loc = locInfo(syms, d.location);
  const reason = d.hasReason ? reasons.name(d.reason) : null;
  const hint = hintOf(loc, d.hasReason ? d.reason : -1, reason);
  return {
    time: isoTime(Number((d.tsNs + wallOffsetNs) / 1_000_000n)),
    location: loc.location,
    symbol: loc.symbol,
    function: loc.function,
    offset: loc.offset,
    module: loc.module,
    reason,
    reasonCode: d.hasReason ? d.reason : null,
    ifindex: d.ifindex,
    ifname: d.ifname || null,
    iif: d.iif,
    netns: d.netns,
    protocol: protocolName(d.ethertype, d.ipver),
    l4: l4Name(d.l4proto),
    saddr: d.saddr,
    daddr: d.daddr,
    sport: d.sport,
    dport: d.dport,
    tcpFlags: d.tcpFlags === null ? null : tcpFlagLetters(d.tcpFlags),
    icmpType: d.icmpType,
    icmpCode: d.icmpCode,
    len: d.len,
    mark: d.mark,
    cpu: d.cpu,
    pid: d.pid,
    comm: d.comm,
    hint,
    namespace: null,
    pod: null,
    container: null,
  };
}

// JSON string literals of the values that repeat (symbols, reasons, names): computed once
const quoted = new Map<string, string>();
const q = (s: string | null): string => {
  if (s === null) return 'null';
  let v = quoted.get(s);
  if (v === undefined) {
    v = JSON.stringify(s);
    if (quoted.size < 50_000) quoted.set(s, v);
  }
  return v;
};

/** The pod a drop belongs to, for the last members of a JSON line. */
export interface PodFields {
  namespace: string | null;
  pod: string | null;
  container: string | null;
}

/**
 * The `trace --json` line of record i of a raw batch, read straight from the
 * bytes: the same text as JSON.stringify(toRecord(decodeEvent(...))) with
 * the pod fields set, without the two objects per drop; the members that
 * repeat per drop site are cached. src/drop.test.ts proves it equal on a
 * real recording and on every shape of record. Addresses are digits, dots,
 * colons and hex: nothing to escape.
 */
export function jsonLineAt(buf: Buffer, i: number, stride: number, syms: SymbolLookup | null, reasons: ReasonTable, wallOffsetNs: bigint, pod: PodFields | null): string {
  const o = i * stride;
  const flags = buf[o + EV.flags];
  const l3 = (flags & FLAG.L3) !== 0;
  const l4 = (flags & FLAG.L4) !== 0;
  const hasReason = (flags & FLAG.REASON) !== 0;
  const loc = locInfo(syms, buf.readBigUInt64LE(o + EV.location));
  const hk = hasReason ? buf.readUInt32LE(o + EV.reason) : -1;
  let j = loc.json.get(hk);
  if (!j) {
    const reason = hasReason ? reasons.name(hk) : null;
    j = {
      head: `"location":"${loc.location}","symbol":${q(loc.symbol)},"function":${q(loc.function)},"offset":${loc.offset},"module":${q(loc.module)},"reason":${q(reason)},"reasonCode":${hasReason ? hk : null},`,
      hint: `"hint":${q(hintOf(loc, hk, reason))},`,
    };
    loc.json.set(hk, j);
  }
  const ipver = l3 ? buf[o + EV.ipver] : 0;
  const l4proto = l3 ? buf[o + EV.l4proto] : null;
  const isPorts = l4 && (l4proto === 6 || l4proto === 17);
  const isIcmp = l4 && (l4proto === 1 || l4proto === 58);
  const time = isoTime(Number((buf.readBigUInt64LE(o + EV.ts_ns) + wallOffsetNs) / 1_000_000n));
  return (
    `{"time":"${time}",${j.head}"ifindex":${buf.readUInt32LE(o + EV.ifindex)},"ifname":${q(ifnameAt(buf, o) || null)},` +
    `"iif":${buf.readUInt32LE(o + EV.iif)},"netns":${buf.readUInt32LE(o + EV.netns)},"protocol":"${protocolName(buf.readUInt16LE(o + EV.ethertype), ipver)}",` +
    `"l4":${q(l4Name(l4proto))},"saddr":${l3 ? `"${addrAt(buf, o, EV.saddr, ipver)}"` : 'null'},"daddr":${l3 ? `"${addrAt(buf, o, EV.daddr, ipver)}"` : 'null'},` +
    `"sport":${isPorts ? buf.readUInt16LE(o + EV.sport) : null},"dport":${isPorts ? buf.readUInt16LE(o + EV.dport) : null},` +
    `"tcpFlags":${isPorts && l4proto === 6 ? q(tcpFlagLetters(buf[o + EV.tcp_flags])) : 'null'},` +
    `"icmpType":${isIcmp ? buf[o + EV.icmp_type] : null},"icmpCode":${isIcmp ? buf[o + EV.icmp_code] : null},` +
    `"len":${buf.readUInt32LE(o + EV.len)},"mark":${buf.readUInt32LE(o + EV.mark)},"cpu":${buf.readUInt32LE(o + EV.cpu)},"pid":${buf.readUInt32LE(o + EV.pid)},` +
    `"comm":${q(commAt(buf, o))},${j.hint}"namespace":${q(pod?.namespace ?? null)},"pod":${q(pod?.pod ?? null)},"container":${q(pod?.container ?? null)}}`
  );
}

function endpoint(addr: string | null, port: number | null): string {
  if (!addr) return '?';
  if (port === null) return addr;
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** The text line of `droptrace trace`. */
export function formatLine(r: DropRecord): string {
  const time = r.time.slice(11, 23);
  const where = r.module ? `${r.symbol} [${r.module}]` : r.symbol;
  const parts = [time, where.padEnd(28), (r.reason ?? '-').padEnd(16), (r.ifname ?? '-').padEnd(10), `ns:${r.netns}`];
  let flow = r.protocol;
  if (r.l4) flow += ` ${r.l4}`;
  if (r.saddr) flow += ` ${endpoint(r.saddr, r.sport)} > ${endpoint(r.daddr, r.dport)}`;
  if (r.tcpFlags) flow += ` [${r.tcpFlags}]`;
  if (r.icmpType !== null) flow += ` type ${r.icmpType} code ${r.icmpCode}`;
  parts.push(flow, `len ${r.len}`);
  if (r.pod) parts.push(`pod ${r.namespace ?? '?'}/${r.pod}`);
  return parts.join(' ');
}
