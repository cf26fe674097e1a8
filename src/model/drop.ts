/**
 * A drop made readable: the raw record plus its symbol, reason name and
 * wall-clock time. This is the shape of `trace --json` (one object a line);
 * formats/lines.ts writes the same text straight from the bytes. Pure.
 */
import type { RawDrop } from './decode.js';
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
  /** id of the hint that explains this drop (src/model/hints.ts), or null */
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


/** What a drop site's address names: computed once per site and symbol table. */
export interface Site {
  location: string;
  symbol: string;
  function: string | null;
  offset: number | null;
  module: string | null;
  /** hint id per reason code (-1: no reason) */
  hints: Map<number, string | null>;
}

// a node has few drop sites, and a flood repeats one of them per event: name each once per table
const siteCache = new WeakMap<object, Map<bigint, Site>>();
const NO_TABLE = {};
let lastMs = -1;
let lastIso = '';

export function dropSite(syms: SymbolLookup | null, addr: bigint): Site {
  const key = syms ?? NO_TABLE;
  let m = siteCache.get(key);
  if (!m) siteCache.set(key, (m = new Map()));
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
    };
    if (m.size < 100_000) m.set(addr, v);
  }
  return v;
}

/** Date(ms).toISOString(), remembered for the last millisecond asked (a batch shares a few). */
export function isoTime(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/** The hint id of a drop at this site with this reason code (-1: none). */
export function siteHint(site: Site, code: number, reason: string | null): string | null {
  let hint = site.hints.get(code);
  if (hint === undefined) site.hints.set(code, (hint = hintId(reason, site.function)));
  return hint;
}

export function toRecord(d: RawDrop, syms: SymbolLookup | null, reasons: ReasonTable, wallOffsetNs: bigint): DropRecord {
  const loc = dropSite(syms, d.location);
  const reason = d.hasReason ? reasons.name(d.reason) : null;
  const hint = siteHint(loc, d.hasReason ? d.reason : -1, reason);
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
