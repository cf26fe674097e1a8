/**
 * A drop made readable: the raw record plus its symbol, reason name and
 * wall-clock time. This is the shape of `trace --json` (one object a line)
 * and what the text line is printed from. Pure.
 */
import { addrAt, commAt, EV, FLAG, ifnameAt, type RawDrop } from './decode.js';
import { formatSymbol, type SymbolLookup } from './kallsyms.js';
import type { ReasonTable } from './reasons.js';
import { hintId } from './hints.js';
import type { ByteSink } from '../formats/sink.js';

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
  /** upper 32 bits of the address (the per-table cache is keyed by the lower 32) */
  hi: number;
  /** per reason code (-1: no reason): the JSON bytes from "location" to "reasonCode", and the hint member */
  json: Map<number, { head: Buffer; hint: Buffer }>;
  /** per reason code: the text line's bytes from the site to the interface column */
  text: Map<number, Buffer>;
}

// Per-table caches: a node has few drop sites, and a flood repeats one of them per event.
interface LocCache {
  byAddr: Map<bigint, LocInfo>;
  /** by the address's lower 32 bits, checked against hi: no bigint per drop */
  byLo: Map<number, LocInfo>;
}
const locCache = new WeakMap<object, LocCache>();
const NO_TABLE = {};
let lastMs = -1;
let lastIso = '';

function cacheOf(syms: SymbolLookup | null): LocCache {
  const key = syms ?? NO_TABLE;
  let c = locCache.get(key);
  if (!c) locCache.set(key, (c = { byAddr: new Map(), byLo: new Map() }));
  return c;
}

function locInfo(syms: SymbolLookup | null, addr: bigint): LocInfo {
  const m = cacheOf(syms).byAddr;
  let v = m.get(addr);
  if (!v) {
    const r = syms ? syms.lookup(addr) : null;
    const ok = r && !r.implausible;
    v = {
      location: `0x${addr.toString(16)}`,
      symbol: formatSymbol(r, addr),
      function: ok ? r.name : null,
      offset: ok ? r.offset : null,
      module: ok ? r.module : null,
      hints: new Map(),
      hi: Number(addr >> 32n),
      json: new Map(),
      text: new Map(),
    };
    if (m.size < 100_000) m.set(addr, v);
  }
  return v;
}

/** locInfo of the record at byte offset o. */
function locInfoAt(syms: SymbolLookup | null, buf: Buffer, o: number): LocInfo {
  const lo = buf.readUInt32LE(o + EV.location);
  const c = cacheOf(syms);
  const v = c.byLo.get(lo);
  if (v !== undefined && v.hi === buf.readUInt32LE(o + EV.location + 4)) return v;
  const w = locInfo(syms, buf.readBigUInt64LE(o + EV.location));
  if (c.byLo.size < 100_000) c.byLo.set(lo, w);
  return w;
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
 * Wall-clock milliseconds of records' BPF timestamps: exactly
 * Number((ts_ns + offset) / 1_000_000n), in float arithmetic that stays
 * exact (every intermediate below 2^53), so no bigint per drop.
 */
export class WallClock {
  private readonly offMs: number;
  private readonly offRem: number;

  constructor(offsetNs: bigint) {
    this.offMs = Number(offsetNs / 1_000_000n);
    this.offRem = Number(offsetNs % 1_000_000n);
  }

  /** ms of the record at byte offset o: ts = hi * 2^32 + lo, and 2^32 = 4294 * 10^6 + 967296 */
  msAt(buf: Buffer, o: number): number {
    const lo = buf.readUInt32LE(o + EV.ts_ns);
    const hi = buf.readUInt32LE(o + EV.ts_ns + 4);
    const x = hi * 967296 + lo + this.offRem;
    const r = ((x % 1e6) + 1e6) % 1e6;
    return hi * 4294 + this.offMs + (x - r) / 1e6;
  }
}

const enc = (s: string): Buffer => Buffer.from(s, 'utf8');
const J = {
  dport: enc(',"dport":'),
  noPorts: enc('null,"dport":null'),
  icmpType: enc(',"tcpFlags":null,"icmpType":'),
  icmpCode: enc(',"icmpCode":'),
  len: enc(',"len":'),
  mark: enc(',"mark":'),
  cpu: enc(',"cpu":'),
};
const NO_POD = enc('"namespace":null,"pod":null,"container":null}\n');
/** from tcpFlags to "len": by TCP flags byte, 256 when there are no TCP flags */
const TO_LEN = Array.from({ length: 257 }, (_, f) => enc(`,"tcpFlags":${f < 256 ? JSON.stringify(tcpFlagLetters(f)) : 'null'},"icmpType":null,"icmpCode":null,"len":`));
const T = { ns: ' ns:', len: ' len ', arrow: ' > ', type: ' type ', code: ' code ', pod: ' pod ' };
/** the ASCII bytes of names that repeat (protocols, L4 names), encoded once */
const asciiCache = new Map<string, Buffer>();
const ascii = (s: string): Buffer => {
  let b = asciiCache.get(s);
  if (!b) {
    b = enc(s);
    if (asciiCache.size < 1000) asciiCache.set(s, b);
  }
  return b;
};
const TCP_TEXT = Array.from({ length: 256 }, (_, f) => enc(` [${tcpFlagLetters(f)}]`));
const podTails = new WeakMap<PodFields, Buffer>();

/** the start of a line up to the milliseconds, for one second: text "HH:MM:SS.", JSON {"time":"YYYY-MM-DDTHH:MM:SS. */
let prefixSec = NaN;
let jsonPrefix: Buffer | null = null;
let textPrefix: Buffer | null = null;

/** The time; JSON stops before the Z (the cached head that follows starts with it). */
function writeTime(out: ByteSink, ms: number, text: boolean): void {
  const msPart = ((ms % 1000) + 1000) % 1000;
  const sec = (ms - msPart) / 1000;
  if (sec !== prefixSec) {
    prefixSec = sec;
    const iso = new Date(sec * 1000).toISOString();
    // years beyond 0-9999 take the slow way
    jsonPrefix = iso.length === 24 ? enc(`{"time":"${iso.slice(0, 20)}`) : null;
    textPrefix = iso.length === 24 ? enc(iso.slice(11, 20)) : null;
  }
  const prefix = text ? textPrefix : jsonPrefix;
  if (!prefix) {
    const iso = isoTime(ms);
    out.ascii(text ? iso.slice(11, 23) : `{"time":"${iso.slice(0, -1)}`);
    return;
  }
  out.bytes(prefix);
  out.digits(msPart, 3);
}

function writeIpv4(out: ByteSink, buf: Buffer, at: number): void {
  out.uint(buf[at]);
  out.byte(0x2e);
  out.uint(buf[at + 1]);
  out.byte(0x2e);
  out.uint(buf[at + 2]);
  out.byte(0x2e);
  out.uint(buf[at + 3]);
}

function writeAddr(out: ByteSink, buf: Buffer, o: number, at: number, ipver: number): void {
  if (ipver === 4) writeIpv4(out, buf, o + at);
  else out.ascii(addrAt(buf, o, at, ipver));
}

/**
 * A run of a line that depends only on some words of the record, built the
 * slow way and kept while the next records carry the same words: a flood
 * repeats its interface, addresses and process record after record.
 */
class Segment {
  private readonly key: Uint32Array;
  private bytes: Buffer | null = null;

  constructor(
    /** word offsets into the record, each [from, to) a multiple of 4 */
    private readonly words: readonly number[],
    private readonly build: (buf: Buffer, o: number) => string,
  ) {
    let n = 0;
    for (let k = 0; k < words.length; k += 2) n += (words[k + 1] - words[k]) / 4;
    this.key = new Uint32Array(n);
  }

  get(buf: Buffer, o: number): Buffer {
    const key = this.key;
    const w = this.words;
    let same = this.bytes !== null;
    let n = 0;
    for (let k = 0; k < w.length; k += 2) {
      for (let at = w[k]; at < w[k + 1]; at += 4) {
        const v = buf.readUInt32LE(o + at);
        if (key[n] !== v) {
          key[n] = v;
          same = false;
        }
        n++;
      }
    }
    if (!same) this.bytes = enc(this.build(buf, o));
    return this.bytes!;
  }
}

/** ,"ifindex": through ,"sport": — the interface, namespace, protocol and addresses */
const jsonWhere = new Segment([EV.ifindex, EV.mark, EV.ethertype, EV.ethertype + 4, EV.sport + 4, EV.comm], (buf, o) => {
  const flags = buf[o + EV.flags];
  const l3 = (flags & FLAG.L3) !== 0;
  const ipver = l3 ? buf[o + EV.ipver] : 0;
  const addr = (at: number) => (l3 ? `"${addrAt(buf, o, at, ipver)}"` : 'null');
  return (
    `,"ifindex":${buf.readUInt32LE(o + EV.ifindex)},"ifname":${q(ifnameAt(buf, o) || null)},"iif":${buf.readUInt32LE(o + EV.iif)},"netns":${buf.readUInt32LE(o + EV.netns)},` +
    `"protocol":"${protocolName(buf.readUInt16LE(o + EV.ethertype), ipver)}","l4":${q(l4Name(l3 ? buf[o + EV.l4proto] : null))},"saddr":${addr(EV.saddr)},"daddr":${addr(EV.daddr)},"sport":`
  );
});

/** ,"pid": through the comm and its comma: the process */
const jsonWho = new Segment([EV.pid, EV.pid + 4, EV.comm, EV.comm + 16], (buf, o) => `,"pid":${buf.readUInt32LE(o + EV.pid)},"comm":${q(commAt(buf, o))},`);

/** room for one line: the cached pieces plus every other member at its widest */
const LINE_ROOM = 600;

/**
 * What both line writers read first from a record: one object, refilled
 * for every line (no allocation per drop).
 */
const shape = { l3: false, ipver: 0, l4proto: -1, isPorts: false, isIcmp: false, hasReason: false, reasonCode: -1, loc: null as unknown as LocInfo };

function readShape(buf: Buffer, o: number, syms: SymbolLookup | null): typeof shape {
  const flags = buf[o + EV.flags];
  const l3 = (flags & FLAG.L3) !== 0;
  const l4 = (flags & FLAG.L4) !== 0;
  const l4proto = l3 ? buf[o + EV.l4proto] : -1;
  shape.l3 = l3;
  shape.ipver = l3 ? buf[o + EV.ipver] : 0;
  shape.l4proto = l4proto;
  shape.isPorts = l4 && (l4proto === 6 || l4proto === 17);
  shape.isIcmp = l4 && (l4proto === 1 || l4proto === 58);
  shape.hasReason = (flags & FLAG.REASON) !== 0;
  shape.reasonCode = shape.hasReason ? buf.readUInt32LE(o + EV.reason) : -1;
  shape.loc = locInfoAt(syms, buf, o);
  return shape;
}

/**
 * Writes the `trace --json` line of record i of a raw batch, newline
 * included, straight from the bytes: the same text as
 * JSON.stringify(toRecord(decodeEvent(...))) with the pod fields set, as
 * UTF-8, with no object or string per drop. The members that repeat per drop
 * site are encoded once. src/drop.test.ts proves it equal on a real
 * recording and on every shape of record. Addresses are digits, dots,
 * colons and hex: nothing to escape.
 */
export function writeJsonLine(out: ByteSink, clock: WallClock, buf: Buffer, i: number, stride: number, syms: SymbolLookup | null, reasons: ReasonTable, pod: PodFields | null): void {
  const o = i * stride;
  const { l4proto, isPorts, isIcmp, hasReason, reasonCode: hk, loc } = readShape(buf, o, syms);
  let j = loc.json.get(hk);
  if (!j) {
    const reason = hasReason ? reasons.name(hk) : null;
    j = {
      head: enc(`Z","location":"${loc.location}","symbol":${q(loc.symbol)},"function":${q(loc.function)},"offset":${loc.offset},"module":${q(loc.module)},"reason":${q(reason)},"reasonCode":${hasReason ? hk : null}`),
      hint: enc(`"hint":${q(hintOf(loc, hk, reason))},`),
    };
    loc.json.set(hk, j);
  }
  let tail = NO_POD;
  if (pod) {
    let t = podTails.get(pod);
    if (!t) podTails.set(pod, (t = enc(`"namespace":${q(pod.namespace)},"pod":${q(pod.pod)},"container":${q(pod.container)}}\n`)));
    tail = t;
  }
  const where = jsonWhere.get(buf, o);
  const who = jsonWho.get(buf, o);
  out.room(j.head.length + where.length + who.length + j.hint.length + tail.length + LINE_ROOM);
  writeTime(out, clock.msAt(buf, o), false);
  out.bytes(j.head);
  out.bytes(where); // ,"ifindex": .. ,"sport":
  if (isPorts) {
    out.uint(buf.readUInt16LE(o + EV.sport));
    out.bytes(J.dport);
    out.uint(buf.readUInt16LE(o + EV.dport));
  } else out.bytes(J.noPorts);
  if (isIcmp) {
    out.bytes(J.icmpType);
    out.uint(buf[o + EV.icmp_type]);
    out.bytes(J.icmpCode);
    out.uint(buf[o + EV.icmp_code]);
    out.bytes(J.len);
  } else out.bytes(TO_LEN[isPorts && l4proto === 6 ? buf[o + EV.tcp_flags] : 256]);
  out.uint(buf.readUInt32LE(o + EV.len));
  out.bytes(J.mark);
  out.uint(buf.readUInt32LE(o + EV.mark));
  out.bytes(J.cpu);
  out.uint(buf.readUInt32LE(o + EV.cpu));
  out.bytes(who); // ,"pid": .. ,"comm":"..",
  out.bytes(j.hint);
  out.bytes(tail);
}

const podTexts = new WeakMap<PodFields, Buffer>();

function writeEndpoint(out: ByteSink, buf: Buffer, o: number, at: number, ipver: number, port: number): void {
  if (port < 0) return writeAddr(out, buf, o, at, ipver);
  if (ipver !== 4) out.byte(0x5b); // [
  writeAddr(out, buf, o, at, ipver);
  if (ipver !== 4) out.byte(0x5d); // ]
  out.byte(0x3a);
  out.uint(port);
}

/**
 * Writes the text line of record i of a raw batch (formatLine(toRecord(...))
 * with the pod set, and a newline) straight from the bytes, like
 * writeJsonLine; src/drop.test.ts proves the two ways equal.
 */
export function writeTextLine(out: ByteSink, clock: WallClock, buf: Buffer, i: number, stride: number, syms: SymbolLookup | null, reasons: ReasonTable, pod: PodFields | null): void {
  const o = i * stride;
  const { l3, ipver, l4proto, isPorts, isIcmp, hasReason, reasonCode: hk, loc } = readShape(buf, o, syms);
  let head = loc.text.get(hk);
  if (!head) {
    const reason = hasReason ? reasons.name(hk) : null;
    const where = loc.module ? `${loc.symbol} [${loc.module}]` : loc.symbol;
    loc.text.set(hk, (head = enc(` ${where.padEnd(28)} ${(reason ?? '-').padEnd(16)} `)));
  }
  let podText: Buffer | null = null;
  if (pod?.pod) {
    podText = podTexts.get(pod) ?? null;
    if (!podText) podTexts.set(pod, (podText = enc(` pod ${pod.namespace ?? '?'}/${pod.pod}`)));
  }
  out.room(head.length + (podText ? podText.length : 0) + LINE_ROOM);
  writeTime(out, clock.msAt(buf, o), true);
  out.bytes(head);
  const ifChars = buf[o + EV.ifname] === 0 ? (out.byte(0x2d), 1) : out.latin1(buf, o + EV.ifname, 16);
  if (ifChars < 10) out.spaces(10 - ifChars);
  out.ascii(T.ns);
  out.uint(buf.readUInt32LE(o + EV.netns));
  out.byte(0x20);
  out.bytes(ascii(protocolName(buf.readUInt16LE(o + EV.ethertype), ipver)));
  if (l4proto >= 0) {
    out.byte(0x20);
    out.bytes(ascii(l4Name(l4proto)!));
  }
  if (l3) {
    out.byte(0x20);
    writeEndpoint(out, buf, o, EV.saddr, ipver, isPorts ? buf.readUInt16LE(o + EV.sport) : -1);
    out.ascii(T.arrow);
    writeEndpoint(out, buf, o, EV.daddr, ipver, isPorts ? buf.readUInt16LE(o + EV.dport) : -1);
  }
  if (isPorts && l4proto === 6) out.bytes(TCP_TEXT[buf[o + EV.tcp_flags]]);
  if (isIcmp) {
    out.ascii(T.type);
    out.uint(buf[o + EV.icmp_type]);
    out.ascii(T.code);
    out.uint(buf[o + EV.icmp_code]);
  }
  out.ascii(T.len);
  out.uint(buf.readUInt32LE(o + EV.len));
  if (podText) out.bytes(podText);
  out.byte(0x0a);
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
