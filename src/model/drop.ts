/**
 * A drop made readable: the raw record plus its symbol, reason name and
 * wall-clock time. This is the shape of `trace --json` (one object a line);
 * formats/lines.ts writes the same text straight from the bytes. Pure.
 */
import type { RawDrop, RawInner, RawSocket } from './decode.js';
import { pathMembers, type RouteRecord, type StepRecord } from './path.js';
import { formatSymbol, type SymbolLookup } from './kallsyms.js';
import type { ReasonTable } from './reasons.js';
import { hintId } from './hints.js';

/** A flow's header fields as `trace --json` writes them (the drop's own, or `inner`). */
export interface FlowRecord {
  l4: string | null;
  saddr: string | null;
  daddr: string | null;
  sport: number | null;
  dport: number | null;
  tcpFlags: string | null;
  icmpType: number | null;
  icmpCode: number | null;
}

/**
 * One line of `droptrace trace --json`. Field names are a public format: add, never rename;
 * the order of the members is toRecord's.
 */
export interface DropRecord extends FlowRecord {
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
  len: number;
  mark: number;
  cpu: number;
  pid: number;
  comm: string;
  /** id of the hint that explains this drop (src/model/hints.ts), or null */
  hint: string | null;
  /** the flow inside a VXLAN or Geneve packet (the pod-to-pod flow of an overlay), or null */
  inner: InnerFlow | null;
  /** the socket that refused the packet (kernel 6.11+: full buffer, memory, filter), or null */
  socket: SocketRecord | null;
  /** Kubernetes pod of the drop's netns (namespace/name, container id), when attributed */
  namespace: string | null;
  pod: string | null;
  container: string | null;
  /** --path only: the steps the skb took before the drop, oldest first */
  path?: StepRecord[];
  /** --path only: steps seen but not kept (the kernel keeps the first and the latest) */
  pathCut?: number;
  /** --path only: the route the skb held at the drop, or null when it had none */
  route?: RouteRecord | null;
}

/** The inner flow of a tunnelled drop, as `trace --json` writes it. */
export interface InnerFlow extends FlowRecord {
  tunnel: 'vxlan' | 'geneve';
  vni: number;
  /** false: the inner headers were beyond the packet's linear data, so not read (the flow's fields are null) */
  read: boolean;
  protocol: 'IPv4' | 'IPv6' | null;
}

export function innerFlow(r: RawInner | null): InnerFlow | null {
  if (!r) return null;
  return {
    tunnel: r.tunnel,
    vni: r.vni,
    read: r.read,
    protocol: r.ipver === 4 ? 'IPv4' : r.ipver === 6 ? 'IPv6' : null,
    l4: l4Name(r.l4proto),
    saddr: r.saddr,
    daddr: r.daddr,
    sport: r.sport,
    dport: r.dport,
    tcpFlags: r.tcpFlags === null ? null : tcpFlagLetters(r.tcpFlags),
    icmpType: r.icmpType,
    icmpCode: r.icmpCode,
  };
}

/** Who a cgroup is: its path under the cgroup v2 mount and, when it is a pod's, the pod. */
export interface CgroupOwner {
  path: string | null;
  namespace: string | null;
  pod: string | null;
  container: string | null;
}

/** A cgroup v2 id's owner, or null when it is not known on this node. */
export type CgroupLookup = (id: number) => CgroupOwner | null;

/** The receiving socket of a drop, as `trace --json` writes it. */
export interface SocketRecord {
  /** cgroup v2 id (the inode of its directory), 0 when unknown */
  cgroupId: number;
  /** that cgroup's path under the cgroup v2 mount, when found */
  cgroup: string | null;
  /** the pod whose cgroup it is */
  namespace: string | null;
  pod: string | null;
  container: string | null;
  /** socket inode (ss -e, /proc/PID/fd/* -> socket:[inode]), 0 for a kernel socket */
  inode: number;
  uid: number;
  family: string;
  l4: string | null;
  /** local address and port as the socket is bound, or null for a family without them */
  local: string | null;
}

const FAMILIES: Record<number, string> = { 1: 'unix', 2: 'IPv4', 10: 'IPv6', 16: 'netlink', 17: 'packet', 44: 'xdp' };

export function socketRecord(s: RawSocket | null, owner: CgroupLookup | null): SocketRecord | null {
  if (!s) return null;
  const o = s.cgroup && owner ? owner(s.cgroup) : null;
  return {
    cgroupId: s.cgroup,
    cgroup: o?.path ?? null,
    namespace: o?.namespace ?? null,
    pod: o?.pod ?? null,
    container: o?.container ?? null,
    inode: s.inode,
    uid: s.uid,
    family: FAMILIES[s.family] ?? String(s.family),
    l4: s.family === 2 || s.family === 10 ? l4Name(s.protocol) : null,
    local: s.addr === null ? null : endpoint(s.addr, s.family === 10 ? 6 : 4, s.port),
  };
}

/** "UDP 0.0.0.0:7000 uid 0 pod default/web-0" (or the cgroup when it is no pod's): a socket and its owner. */
export function socketLabel(r: SocketRecord): string {
  const what = [r.l4 ?? r.family, r.local].filter((x) => x !== null).join(' ');
  const owner = r.pod ? `pod ${r.namespace ?? '?'}/${r.pod}` : r.cgroup ? `cgroup ${r.cgroup}` : r.cgroupId ? `cgroup id ${r.cgroupId}` : 'no cgroup';
  return `${what} uid ${r.uid} ${owner}`;
}

/** The trace line's words for a receiving socket. */
export function socketText(r: SocketRecord): string {
  return `socket ${socketLabel(r)}`;
}

/** An endpoint as text: 10.0.0.1:80, [fd00::1]:80, or the bare address without a port. */
export function endpoint(addr: string, ipver: number, port: number | null): string {
  if (port === null) return addr;
  return ipver === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** "vxlan 1: TCP 10.244.1.2:40000 > 10.244.0.1:2483 S" (the inner flow of a tunnelled drop). */
export function innerText(f: InnerFlow): string {
  const head = `${f.tunnel} ${f.vni}`;
  if (!f.read) return `${head}: inner headers not in linear data`;
  if (!f.saddr || !f.daddr) return `${head}: no inner IP header`;
  const ver = f.protocol === 'IPv6' ? 6 : 4;
  let s = `${head}: ${f.l4 ?? '?'} ${endpoint(f.saddr, ver, f.sport)} > ${endpoint(f.daddr, ver, f.dport)}`;
  if (f.tcpFlags) s += ` ${f.tcpFlags}`;
  if (f.icmpType !== null) s += ` ${icmpName(f.protocol === 'IPv6' ? 58 : 1, f.icmpType, f.icmpCode ?? 0)}`;
  return s;
}

const ICMP4: Record<number, string> = { 0: 'echo reply', 3: 'unreachable', 5: 'redirect', 8: 'echo request', 11: 'time exceeded', 12: 'parameter problem' };
const ICMP6: Record<number, string> = {
  1: 'unreachable',
  2: 'packet too big',
  3: 'time exceeded',
  4: 'parameter problem',
  128: 'echo request',
  129: 'echo reply',
  130: 'MLD query',
  131: 'MLD report',
  132: 'MLD done',
  133: 'router solicitation',
  134: 'router advertisement',
  135: 'neighbor solicitation',
  136: 'neighbor advertisement',
  137: 'redirect',
  143: 'MLDv2 report',
};

/** ICMP (proto 1) or ICMPv6 (58) type as its name, "type N code C" when unnamed. */
export function icmpName(proto: number, type: number, code: number): string {
  const name = (proto === 58 ? ICMP6 : ICMP4)[type];
  return name ? (code ? `${name} (code ${code})` : name) : `type ${type} code ${code}`;
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

export function toRecord(d: RawDrop, syms: SymbolLookup | null, reasons: ReasonTable, wallOffsetNs: bigint, owner: CgroupLookup | null = null): DropRecord {
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
    inner: innerFlow(d.inner),
    socket: socketRecord(d.socket, owner),
    namespace: null,
    pod: null,
    container: null,
    ...(d.path ? pathMembers(d.path, syms) : {}),
  };
}
