/**
 * A dropped packet's path (--path) made readable: what each step kind means, a FIB lookup's
 * table and result in words, the route the skb held at the drop, and the short form that
 * groups equal paths ("a0 → b0 → local → dropped"). Pure; the bytes are decode.ts's.
 */
import { STEP, type RawPath, type RawStep } from './decode.js';
import type { SymbolLookup } from './kallsyms.js';

/** Each step kind: its JSON name, the tracepoint it comes from, and what it means for the packet. */
export const STEP_KINDS: { readonly [kind: number]: { name: string; tracepoint: string; meaning: string } } = {
  [STEP.XMIT_QUEUE]: { name: 'queue', tracepoint: 'net:net_dev_queue', meaning: 'handed to the device to send' },
  [STEP.XMIT]: { name: 'xmit', tracepoint: 'net:net_dev_start_xmit', meaning: 'sent by the device (its driver took it)' },
  [STEP.NETIF_RX]: { name: 'netif_rx', tracepoint: 'net:netif_rx', meaning: "queued to the device's receive backlog" },
  [STEP.GRO]: { name: 'gro', tracepoint: 'net:napi_gro_receive_entry', meaning: "received by the device's driver" },
  [STEP.RX]: { name: 'rx', tracepoint: 'net:netif_receive_skb', meaning: 'received by the stack on the device' },
  [STEP.QDISC_ENQ]: { name: 'qdisc_enqueue', tracepoint: 'qdisc:qdisc_enqueue', meaning: "queued in the device's qdisc" },
  [STEP.QDISC_DEQ]: { name: 'qdisc_dequeue', tracepoint: 'qdisc:qdisc_dequeue', meaning: "left the device's qdisc" },
  [STEP.FIB]: { name: 'fib', tracepoint: 'fib:fib_table_lookup', meaning: 'IPv4 route lookup' },
  [STEP.FIB6]: { name: 'fib6', tracepoint: 'fib6:fib6_table_lookup', meaning: 'IPv6 route lookup' },
  [STEP.FUNC]: { name: 'function', tracepoint: 'kprobe-multi', meaning: 'a kernel function took it' },
};

const TABLES: Record<number, string> = { 255: 'local', 254: 'main', 253: 'default' };
export const tableName = (id: number): string => TABLES[id] ?? String(id);

/** What fib_table_lookup's error says about the route it found (fib_props[] in net/ipv4/fib_semantics.c). */
const FIB4_ERRORS: Record<number, string> = {
  [-22]: 'blackhole route (EINVAL)',
  [-113]: 'unreachable route (EHOSTUNREACH)',
  [-13]: 'prohibit route (EACCES)',
  [-101]: 'no route (ENETUNREACH)',
  [-11]: 'throw route (EAGAIN)',
};

/** enum rtn_type (include/uapi/linux/rtnetlink.h): fib6_table_lookup gives the route's type. */
const RTN = ['unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'xresolve'];

/** A step's detail in words: the lookup's table and outcome, the qdisc's handle; null when the device says it all. */
export function stepDetail(s: RawStep): string | null {
  if (s.kind === STEP.FIB || s.kind === STEP.FIB6) {
    const outcome =
      s.kind === STEP.FIB ? (s.result === 0 ? (s.ifname ? `via ${s.ifname}` : 'found') : (FIB4_ERRORS[s.result] ?? `error ${s.result}`)) : `${RTN[s.result] ?? `type ${s.result}`}${s.ifname ? ` via ${s.ifname}` : ''}`;
    return `${s.reverse ? 'reverse-path check (rp_filter), ' : ''}table ${tableName(s.detail)}: ${outcome}`;
  }
  if (s.kind === STEP.QDISC_ENQ || s.kind === STEP.QDISC_DEQ) return `qdisc ${(s.detail >>> 16).toString(16)}:${(s.detail & 0xffff).toString(16)}`;
  return null;
}

/** What the route's input function means (net/ipv4/route.c, net/ipv6/route.c and their callers). */
const ROUTE_INPUTS: Record<string, string> = {
  ip_local_deliver: 'local delivery',
  ip_forward: 'forward',
  ip_error: 'error route (unreachable, prohibit or no forwarding)',
  ip_mr_input: 'multicast routing',
  dst_discard: 'discard (blackhole)',
  ip6_input: 'local delivery',
  ip6_forward: 'forward',
  ip6_pkt_discard: 'discard (unreachable)',
  ip6_pkt_prohibit: 'discard (prohibit)',
  ip6_mc_input: 'multicast',
  ip_rt_bug: 'output route',
  xfrm_input: 'IPsec input',
};

export interface RouteRecord {
  /** the route's input function (ip_local_deliver, ip_forward, ip_error, dst_discard, ...) */
  input: string | null;
  output: string | null;
  /** the input function in words, when droptrace knows it */
  meaning: string | null;
}

const fnName = (syms: SymbolLookup | null, a: bigint): string | null => {
  if (!a) return null;
  const r = syms?.lookup(a);
  return r && !r.implausible && r.offset === 0 ? r.name : `0x${a.toString(16)}`;
};

/** The route the skb held at the drop, or null when it had none (dropped before routing). */
export function routeOf(p: RawPath, syms: SymbolLookup | null): RouteRecord | null {
  if (!p.dstInput && !p.dstOutput) return null;
  const input = fnName(syms, p.dstInput);
  return { input, output: fnName(syms, p.dstOutput), meaning: (input && ROUTE_INPUTS[input]) ?? null };
}

/** One step as `trace --json` writes it (a public format: add, never rename). */
export interface StepRecord {
  /** CLOCK_MONOTONIC ns, as the drop's own timestamp */
  ts_ns: number;
  kind: string;
  /** the tracepoint, or for a `function` step the kernel function */
  name: string;
  ifname: string | null;
  ifindex: number;
  netns: number;
  cpu: number;
  detail: string | null;
}

/** A function step's name: the function (its address when it cannot be named). */
const funcName = (s: RawStep, syms: SymbolLookup | null): string => fnName(syms, s.fn) ?? '?';

export function stepRecord(s: RawStep, syms: SymbolLookup | null = null): StepRecord {
  const k = STEP_KINDS[s.kind];
  return {
    ts_ns: Number(s.tsNs),
    kind: k?.name ?? `kind${s.kind}`,
    name: s.kind === STEP.FUNC ? funcName(s, syms) : (k?.tracepoint ?? '?'),
    ifname: s.ifname || null,
    ifindex: s.ifindex,
    netns: s.netns,
    cpu: s.cpu,
    detail: stepDetail(s),
  };
}

/** The path members of a `trace --json` line. */
export interface PathMembers {
  path: StepRecord[];
  /** steps seen but not kept between the first and the latest */
  pathCut: number;
  route: RouteRecord | null;
}

export function pathMembers(p: RawPath, syms: SymbolLookup | null): PathMembers {
  return { path: p.steps.map((s) => stepRecord(s, syms)), pathCut: p.cut, route: routeOf(p, syms) };
}

/** "(podA)"; a name that is already in parentheses, as the live naming's "(host)", stays as it is. */
const inParens = (name: string): string => (name.startsWith('(') ? name : `(${name})`);

/** Names a namespace inode for people ("podA", "(host)"), or null to leave it out. */
export type NetnsName = (inode: number) => string | null;

/**
 * The short form of a path: one hop per device the packet met in a row (its steps on that
 * device folded: a0 queue+xmit is "a0 ⇢", b0 netif_rx+rx is "⇢ b0"), the route lookups'
 * outcomes, the route held at the drop. Equal paths have equal short forms: report --paths
 * counts them.
 */
export function pathHops(p: RawPath, route: RouteRecord | null, nsName: NetnsName = () => null): string[] {
  const hops: string[] = [];
  let last = '';
  for (const s of p.steps) {
    // the devices and routes make the short form; functions are in the full path only
    if (s.kind === STEP.FUNC) continue;
    let hop: string;
    if (s.kind === STEP.FIB || s.kind === STEP.FIB6) hop = `fib: ${stepDetail(s)}`;
    else {
      const ns = nsName(s.netns);
      const dev = `${s.ifname || `if${s.ifindex}`}${ns ? ` ${inParens(ns)}` : ''}`;
      const out = s.kind === STEP.XMIT_QUEUE || s.kind === STEP.XMIT || s.kind === STEP.QDISC_ENQ || s.kind === STEP.QDISC_DEQ;
      hop = out ? `${dev} out` : `${dev} in`;
    }
    if (hop !== last) hops.push(hop);
    last = hop;
  }
  if (p.cut) hops.splice(1, 0, `… ${p.cut} step${p.cut === 1 ? '' : 's'} not kept …`);
  if (route) hops.push(`route: ${route.meaning ?? route.input}`);
  return hops;
}

/** Nanoseconds from the path's first step to the drop at dropNs (0 without steps). */
export function pathSpanNs(p: RawPath, dropNs: bigint): number {
  return p.steps.length ? Number(dropNs - p.steps[0].tsNs) : 0;
}

/** "14 µs", "2.1 ms": a latency for people. */
export function formatNs(ns: number): string {
  if (ns < 1_000) return `${ns} ns`;
  if (ns < 1_000_000) return `${(ns / 1_000).toFixed(ns < 10_000 ? 1 : 0)} µs`;
  if (ns < 1_000_000_000) return `${(ns / 1_000_000).toFixed(ns < 10_000_000 ? 1 : 0)} ms`;
  return `${(ns / 1e9).toFixed(1)} s`;
}

/**
 * The indented lines `trace` prints under a drop: each step with its time before the drop,
 * device, namespace and meaning; then the route.
 */
export function pathLines(p: RawPath, dropNs: bigint, route: RouteRecord | null, nsName: NetnsName = () => null, syms: SymbolLookup | null = null): string[] {
  if (!p.steps.length && !route) return ['    path: no step seen (the packet matched the filters only at its drop, or was made there)'];
  const out = [`    path: ${p.steps.length + p.cut} step${p.steps.length + p.cut === 1 ? '' : 's'} in ${formatNs(pathSpanNs(p, dropNs))}${p.cut ? ` (${p.cut} in the middle not kept)` : ''}`];
  p.steps.forEach((s, i) => {
    const k = STEP_KINDS[s.kind];
    const ns = nsName(s.netns);
    const dev = `${s.ifname || (s.ifindex ? `if${s.ifindex}` : 'no device')} ${ns ? inParens(ns) : `ns:${s.netns}`}`;
    const detail = stepDetail(s);
    if (i === 1 && p.cut) out.push(`      … ${p.cut} step${p.cut === 1 ? '' : 's'} not kept`);
    const what =
      s.kind === STEP.FUNC
        ? `${funcName(s, syms)} (${dev})`
        : `${s.kind === STEP.FIB || s.kind === STEP.FIB6 ? '' : `${dev} `}${k?.meaning ?? `step ${s.kind}`}${detail ? `: ${detail}` : ''}`;
    out.push(`      ${`-${formatNs(Number(dropNs - s.tsNs))}`.padStart(9)}  ${what}`);
  });
  if (route) out.push(`      route at the drop: ${route.meaning ? `${route.meaning} (${route.input})` : route.input}`);
  return out;
}
