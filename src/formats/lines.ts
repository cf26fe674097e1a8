/**
 * The lines of `droptrace trace` (text) and `trace --json`, written as bytes
 * straight from raw event records into a ByteSink: no object or string per
 * drop, so a flood does not grow the heap. The bytes equal
 * JSON.stringify(toRecord(...)) and the text line of the same record
 * (lines.test.ts proves both on every shape of record).
 *
 * Over 350 lines because the two writers share their caches (per site,
 * per segment of record words, per second of time) and must stay byte for
 * byte what the record model says; apart, each would need the other's.
 */
import { addrAt, commAt, EV, FLAG, ifnameAt, innerAt, pathAt, socketAt, TUNNEL, u16, u32 } from '../model/decode.js';
import { dropSite, icmpName, innerFlow, innerText, isoTime, l4Name, protocolName, siteHint, socketRecord, socketText, tcpFlagLetters, type CgroupLookup, type CgroupOwner, type Site } from '../model/drop.js';
import type { SymbolLookup } from '../model/kallsyms.js';
import { pathLines, pathMembers, routeOf, type NetnsName } from '../model/path.js';
import type { ReasonTable } from '../model/reasons.js';
import type { ByteSink } from './sink.js';

/** A site with the bytes of its lines, per reason code (-1: no reason). */
interface LineSite {
  site: Site;
  /** upper 32 bits of the address (the cache is keyed by the lower 32) */
  hi: number;
  /** the JSON bytes from "location" to "reasonCode", and the hint member */
  json: Map<number, { head: Buffer; hint: Buffer }>;
  /** the text line's bytes from the site to the interface column */
  text: Map<number, Buffer>;
}

// keyed by the address's lower 32 bits and checked against hi: no bigint per drop
const lineSites = new WeakMap<object, Map<number, LineSite>>();
const NO_TABLE = {};

function siteAt(syms: SymbolLookup | null, buf: Buffer, o: number): LineSite {
  const key = syms ?? NO_TABLE;
  let m = lineSites.get(key);
  if (!m) lineSites.set(key, (m = new Map()));
  const lo = u32(buf, o + EV.location);
  const hi = u32(buf, o + EV.location + 4);
  const v = m.get(lo);
  if (v !== undefined && v.hi === hi) return v;
  const w: LineSite = { site: dropSite(syms, buf.readBigUInt64LE(o + EV.location)), hi, json: new Map(), text: new Map() };
  if (m.size < 100_000) m.set(lo, w);
  return w;
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
    const lo = u32(buf, o + EV.ts_ns);
    const hi = u32(buf, o + EV.ts_ns + 4);
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
const T = { len: ' len ', arrow: ' > ' };
const TCP_TEXT = Array.from({ length: 256 }, (_, f) => enc(` [${tcpFlagLetters(f)}]`));
const podTails = new WeakMap<PodFields, Buffer>();
const NO_INNER = enc('"inner":null,');
const NO_SOCKET = enc('"socket":null,');

/** " type 143 code 0 (MLDv2 report)": built once per protocol, type and code. */
const icmpTexts = new Map<number, Buffer>();
function icmpText(proto: number, type: number, code: number): Buffer {
  const k = (proto << 16) | (type << 8) | code;
  let b = icmpTexts.get(k);
  if (!b) {
    const name = icmpName(proto, type, code);
    icmpTexts.set(k, (b = enc(` type ${type} code ${code}${name.startsWith('type ') ? '' : ` (${name})`}`)));
  }
  return b;
}

/** `"inner":{…},` of a tunnelled record (rare: built per line), else the constant null member. */
function innerJson(buf: Buffer, o: number): Buffer {
  if (buf[o + EV.tunnel] === TUNNEL.NONE) return NO_INNER;
  const inner = innerFlow(innerAt(buf, o));
  return inner ? enc(`"inner":${JSON.stringify(inner)},`) : NO_INNER;
}

/**
 * The receiving socket's JSON member and text, per socket and owner: a full receive buffer
 * drops for one socket in floods. Keyed by the record's socket bytes; an entry is rebuilt
 * when the cgroup's owner changes (found later, or gone).
 */
const SOCKET_BYTES = EV.pad3 + 4 - EV.sk_cgroup;
const socketCache = new Map<string, { owner: CgroupOwner | null; json: Buffer; text: Buffer }>();

function socketBytes(buf: Buffer, o: number, owner: CgroupLookup | null): { json: Buffer; text: Buffer } | null {
  if (!(buf[o + EV.flags] & FLAG.RX_SK)) return null;
  const key = buf.toString('latin1', o + EV.sk_cgroup, o + EV.sk_cgroup + SOCKET_BYTES);
  const id = Number(buf.readBigUInt64LE(o + EV.sk_cgroup));
  const who = id && owner ? owner(id) : null;
  let e = socketCache.get(key);
  if (!e || e.owner !== who) {
    const r = socketRecord(socketAt(buf, o), () => who)!;
    if (socketCache.size >= 4096) socketCache.clear();
    socketCache.set(key, (e = { owner: who, json: enc(`"socket":${JSON.stringify(r)},`), text: enc(` ${socketText(r)}`) }));
  }
  return e;
}

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
 * slow way once per distinct set of words and kept: a flood repeats its
 * interfaces, addresses and processes, though not always record after
 * record (several flows interleave). Entries are found by a hash of the
 * words and checked word by word; at most MAX_SEGMENTS are kept, then the
 * table starts over.
 */
const MAX_SEGMENTS = 4096;

class Segment {
  private readonly key: Uint32Array;
  private readonly cache = new Map<number, { key: Uint32Array; bytes: Buffer }>();
  private last: { key: Uint32Array; bytes: Buffer } | null = null;

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
    let n = 0;
    let h = 0x811c9dc5;
    for (let k = 0; k < w.length; k += 2) {
      for (let at = o + w[k], end = o + w[k + 1]; at < end; at += 4) {
        const v = (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
        key[n++] = v;
        h = Math.imul(h ^ v, 0x01000193);
      }
    }
    let e = this.last;
    if (e === null || !sameWords(e.key, key)) {
      e = this.cache.get(h) ?? null;
      if (e === null || !sameWords(e.key, key)) {
        if (this.cache.size >= MAX_SEGMENTS) this.cache.clear();
        e = { key: key.slice(), bytes: enc(this.build(buf, o)) };
        this.cache.set(h, e);
      }
      this.last = e;
    }
    return e.bytes;
  }
}

function sameWords(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** ,"ifindex": through ,"sport": — the interface, namespace, protocol and addresses */
const jsonWhere = new Segment([EV.ifindex, EV.mark, EV.ethertype, EV.ethertype + 4, EV.sport + 4, EV.comm], (buf, o) => {
  const flags = buf[o + EV.flags];
  const l3 = (flags & FLAG.L3) !== 0;
  const ipver = l3 ? buf[o + EV.ipver] : 0;
  const addr = (at: number) => (l3 ? `"${addrAt(buf, o, at, ipver)}"` : 'null');
  return (
    `,"ifindex":${u32(buf, o + EV.ifindex)},"ifname":${q(ifnameAt(buf, o) || null)},"iif":${u32(buf, o + EV.iif)},"netns":${u32(buf, o + EV.netns)},` +
    `"protocol":"${protocolName(u16(buf, o + EV.ethertype), ipver)}","l4":${q(l4Name(l3 ? buf[o + EV.l4proto] : null))},"saddr":${addr(EV.saddr)},"daddr":${addr(EV.daddr)},"sport":`
  );
});

/** the text line's interface (padded), namespace, protocol and L4 name */
const textWhere = new Segment([EV.ifname, EV.ifname + 16, EV.netns, EV.netns + 4, EV.ethertype, EV.ethertype + 4, EV.tcp_flags, EV.tcp_flags + 4], (buf, o) => {
  const l3 = (buf[o + EV.flags] & FLAG.L3) !== 0;
  const ipver = l3 ? buf[o + EV.ipver] : 0;
  const l4 = l3 ? l4Name(buf[o + EV.l4proto]) : null;
  return `${(ifnameAt(buf, o) || '-').padEnd(10)} ns:${u32(buf, o + EV.netns)} ${protocolName(u16(buf, o + EV.ethertype), ipver)}${l4 === null ? '' : ` ${l4}`}`;
});

/** ,"pid": through the comm and its comma: the process */
const jsonWho = new Segment([EV.pid, EV.pid + 4, EV.comm, EV.comm + 16], (buf, o) => `,"pid":${u32(buf, o + EV.pid)},"comm":${q(commAt(buf, o))},`);

/** room for one line: the cached pieces plus every other member at its widest */
const LINE_ROOM = 600;

/**
 * What both line writers read first from a record: one object, refilled
 * for every line (no allocation per drop).
 */
const shape = { l3: false, ipver: 0, l4proto: -1, isPorts: false, isIcmp: false, hasReason: false, reasonCode: -1, loc: null as unknown as LineSite };

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
  shape.reasonCode = shape.hasReason ? u32(buf, o + EV.reason) : -1;
  shape.loc = siteAt(syms, buf, o);
  return shape;
}

/**
 * Writes the `trace --json` line of record i of a raw batch, newline
 * included, straight from the bytes: the same text as
 * JSON.stringify(toRecord(decodeEvent(...))) with the pod fields set, as
 * UTF-8, with no object or string per drop. The members that repeat per drop
 * site are encoded once. formats/lines.test.ts proves it equal on a real
 * recording and on every shape of record. Addresses are digits, dots,
 * colons and hex: nothing to escape.
 */
export function writeJsonLine(
  out: ByteSink,
  clock: WallClock,
  buf: Buffer,
  i: number,
  stride: number,
  syms: SymbolLookup | null,
  reasons: ReasonTable,
  pod: PodFields | null,
  owner: CgroupLookup | null = null,
): void {
  const o = i * stride;
  const { l4proto, isPorts, isIcmp, hasReason, reasonCode: hk, loc } = readShape(buf, o, syms);
  let j = loc.json.get(hk);
  if (!j) {
    const site = loc.site;
    const reason = hasReason ? reasons.name(hk) : null;
    j = {
      head: enc(`Z","location":"${site.location}","symbol":${q(site.symbol)},"function":${q(site.function)},"offset":${site.offset},"module":${q(site.module)},"reason":${q(reason)},"reasonCode":${hasReason ? hk : null}`),
      hint: enc(`"hint":${q(siteHint(site, hk, reason))},`),
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
  const inner = innerJson(buf, o);
  const socket = socketBytes(buf, o, owner)?.json ?? NO_SOCKET;
  out.room(j.head.length + where.length + who.length + j.hint.length + inner.length + socket.length + tail.length + LINE_ROOM);
  writeTime(out, clock.msAt(buf, o), false);
  out.bytes(j.head);
  out.bytes(where); // ,"ifindex": .. ,"sport":
  if (isPorts) {
    out.uint(u16(buf, o + EV.sport));
    out.bytes(J.dport);
    out.uint(u16(buf, o + EV.dport));
  } else out.bytes(J.noPorts);
  if (isIcmp) {
    out.bytes(J.icmpType);
    out.uint(buf[o + EV.icmp_type]);
    out.bytes(J.icmpCode);
    out.uint(buf[o + EV.icmp_code]);
    out.bytes(J.len);
  } else out.bytes(TO_LEN[isPorts && l4proto === 6 ? buf[o + EV.tcp_flags] : 256]);
  out.uint(u32(buf, o + EV.len));
  out.bytes(J.mark);
  out.uint(u32(buf, o + EV.mark));
  out.bytes(J.cpu);
  out.uint(u32(buf, o + EV.cpu));
  out.bytes(who); // ,"pid": .. ,"comm":"..",
  out.bytes(j.hint);
  out.bytes(inner);
  out.bytes(socket);
  if (buf[o + EV.flags] & FLAG.PATH) {
    // --path: the path members go before the closing brace (rare enough to build per line)
    const members = JSON.stringify(pathMembers(pathAt(buf, o, stride)!, syms));
    out.bytes(tail.subarray(0, tail.length - 2));
    out.text(`,${members.slice(1)}\n`);
  } else out.bytes(tail);
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
 * Writes the text line of record i of a raw batch (the record's fields with
 * the pod set, and a newline) straight from the bytes, like writeJsonLine;
 * lines.test.ts holds it to the line built the obvious way from toRecord().
 */
export function writeTextLine(
  out: ByteSink,
  clock: WallClock,
  buf: Buffer,
  i: number,
  stride: number,
  syms: SymbolLookup | null,
  reasons: ReasonTable,
  pod: PodFields | null,
  nsName?: NetnsName,
  owner: CgroupLookup | null = null,
): void {
  const o = i * stride;
  const { l3, ipver, l4proto, isPorts, isIcmp, hasReason, reasonCode: hk, loc } = readShape(buf, o, syms);
  let head = loc.text.get(hk);
  if (!head) {
    const site = loc.site;
    const reason = hasReason ? reasons.name(hk) : null;
    const where = site.module ? `${site.symbol} [${site.module}]` : site.symbol;
    loc.text.set(hk, (head = enc(` ${where.padEnd(28)} ${(reason ?? '-').padEnd(16)} `)));
  }
  let podText: Buffer | null = null;
  if (pod?.pod) {
    podText = podTexts.get(pod) ?? null;
    if (!podText) podTexts.set(pod, (podText = enc(` pod ${pod.namespace ?? '?'}/${pod.pod}`)));
  }
  const flow = buf[o + EV.tunnel] === TUNNEL.NONE ? null : innerFlow(innerAt(buf, o));
  const inner = flow ? enc(` [${innerText(flow)}]`) : null;
  const socket = socketBytes(buf, o, owner)?.text ?? null;
  out.room(head.length + (podText ? podText.length : 0) + (inner ? inner.length : 0) + (socket ? socket.length : 0) + LINE_ROOM);
  writeTime(out, clock.msAt(buf, o), true);
  out.bytes(head);
  out.bytes(textWhere.get(buf, o)); // interface, namespace, protocol
  if (l3) {
    out.byte(0x20);
    writeEndpoint(out, buf, o, EV.saddr, ipver, isPorts ? u16(buf, o + EV.sport) : -1);
    out.ascii(T.arrow);
    writeEndpoint(out, buf, o, EV.daddr, ipver, isPorts ? u16(buf, o + EV.dport) : -1);
  }
  if (isPorts && l4proto === 6) out.bytes(TCP_TEXT[buf[o + EV.tcp_flags]]);
  if (isIcmp) {
    out.bytes(icmpText(l4proto, buf[o + EV.icmp_type], buf[o + EV.icmp_code]));
  }
  if (inner) out.bytes(inner);
  out.ascii(T.len);
  out.uint(u32(buf, o + EV.len));
  if (podText) out.bytes(podText);
  if (socket) out.bytes(socket);
  out.byte(0x0a);
  if (buf[o + EV.flags] & FLAG.PATH) {
    const path = pathAt(buf, o, stride)!;
    out.text(`${pathLines(path, buf.readBigUInt64LE(o + EV.ts_ns), routeOf(path, syms), nsName, syms).join('\n')}\n`);
  }
}
