/**
 * Does an nftables rule match a dropped flow? A rule without a counter cannot say it
 * dropped anything, but its simple expressions (addresses, ports, protocol, interface,
 * conntrack state of a new connection) can be held against the flow droptrace saw. Anything
 * else (marks, meta of the socket, maps, rate limits) is unknown, never guessed: the answer is
 * 'match' only when every expression is known to match. Pure.
 */
import type { NftExpr, NftRule, NftRuleset } from '../host/nft.js';
import { addrBytes, inPrefix } from '../model/addr.js';

/** The dropped packet as far as the trace knows it. */
export interface DroppedFlow {
  ipver: 4 | 6 | null;
  /** "TCP", "UDP", "ICMP", "ICMPv6" … as droptrace names it */
  l4: string | null;
  saddr: string | null;
  daddr: string | null;
  dport: number | null;
  /** the device the packet was on when dropped */
  iface: string | null;
  /** every drop was a TCP SYN: conntrack sees a new connection */
  ctNew: boolean;
}

export type Match = 'match' | 'nomatch' | 'unknown';

const L4_NUMBERS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, 'ipv6-icmp': 58, icmpv6: 58, sctp: 132, udplite: 136 };

function l4Of(flow: DroppedFlow): string | null {
  return flow.l4 ? flow.l4.toLowerCase().replace(/^icmpv6$/, 'ipv6-icmp') : null;
}

/** Does one value of the flow equal, or fall in, one element of a rule's right-hand side? */
function valueIn(v: string | number, right: unknown, sets: NftRuleset['sets'], rule: NftRule): boolean | null {
  if (typeof right === 'string' && right.startsWith('@')) {
    const elems = sets.get(`${rule.family} ${rule.table} ${right.slice(1)}`);
    return elems ? elems.some((e) => valueIn(v, e, sets, rule) === true) : null;
  }
  if (typeof right === 'number' || typeof right === 'string') {
    if (typeof v === 'number') return typeof right === 'number' ? v === right : L4_NUMBERS[right] !== undefined ? v === L4_NUMBERS[right] : null;
    if (typeof right === 'number') return L4_NUMBERS[v] === right;
    const [a, b] = [addrBytes(v), addrBytes(right)];
    return v === right || (a !== null && b !== null && a.equals(b));
  }
  if (Array.isArray(right)) return valueIn(v, { set: right }, sets, rule);
  if (right && typeof right === 'object') {
    const o = right as Record<string, unknown>;
    if (Array.isArray(o.set)) {
      const each = o.set.map((e) => valueIn(v, e, sets, rule));
      return each.includes(true) ? true : each.includes(null) ? null : false;
    }
    if (o.prefix && typeof o.prefix === 'object') {
      const p = o.prefix as { addr: string; len: number };
      return typeof v === 'string' ? inPrefix(v, p.addr, p.len) : null;
    }
    if (Array.isArray(o.range) && typeof v === 'number') return v >= Number(o.range[0]) && v <= Number(o.range[1]);
    if ('elem' in o) return valueIn(v, o.elem, sets, rule);
    if ('val' in o) return valueIn(v, o.val, sets, rule);
  }
  return null;
}

/** The flow's value for a rule's left-hand side: a value, 'absent' (the packet has no such header) or null (unknown). */
function leftValue(left: unknown, flow: DroppedFlow): string | number | 'absent' | null {
  if (!left || typeof left !== 'object') return null;
  const l = left as Record<string, Record<string, unknown>>;
  const l4 = l4Of(flow);
  if (l.payload) {
    const { protocol, field } = l.payload as { protocol?: string; field?: string };
    if (protocol === 'ip' || protocol === 'ip6') {
      if (flow.ipver === null) return null;
      if (flow.ipver !== (protocol === 'ip' ? 4 : 6)) return 'absent';
      if (field === 'saddr') return flow.saddr;
      if (field === 'daddr') return flow.daddr;
      if (field === 'protocol' || field === 'nexthdr') return l4;
      return null;
    }
    if (protocol === 'tcp' || protocol === 'udp' || protocol === 'sctp' || protocol === 'udplite' || protocol === 'th') {
      if (!l4) return null;
      const fits = protocol === 'th' ? ['tcp', 'udp', 'sctp', 'udplite'].includes(l4) : l4 === protocol;
      if (!fits) return 'absent';
      return field === 'dport' ? flow.dport : null;
    }
    if (protocol === 'icmp' || protocol === 'icmpv6') return l4 && l4 !== (protocol === 'icmp' ? 'icmp' : 'ipv6-icmp') ? 'absent' : null;
    return null;
  }
  if (l.meta) {
    const key = (l.meta as { key?: string }).key;
    if (key === 'iifname' || key === 'iif') return flow.iface;
    if (key === 'l4proto') return l4;
    if (key === 'nfproto') return flow.ipver === 4 ? 'ipv4' : flow.ipver === 6 ? 'ipv6' : null;
    return null;
  }
  if (l.ct && (l.ct as { key?: string }).key === 'state') return flow.ctNew ? 'new' : null;
  return null;
}

/** One match expression against the flow. */
function matchExpr(e: NftExpr, flow: DroppedFlow, sets: NftRuleset['sets'], rule: NftRule): Match {
  const m = e.match as { op?: string; left?: unknown; right?: unknown } | undefined;
  if (!m) return 'unknown';
  const v = leftValue(m.left, flow);
  // a header the packet does not have never matches, whatever the operator
  if (v === 'absent') return 'nomatch';
  if (v === null) return 'unknown';
  const hit = valueIn(v, m.right, sets, rule);
  if (hit === null) return 'unknown';
  switch (m.op ?? '==') {
    case '==':
    case 'in':
      return hit ? 'match' : 'nomatch';
    case '!=':
      return hit ? 'nomatch' : 'match';
    default:
      return 'unknown';
  }
}

/**
 * A rule against the flow: 'nomatch' when any expression cannot match, 'match' when every
 * one does, else 'unknown'. Statements (counter, log, the verdict) do not decide.
 */
export function matchRule(rule: NftRule, flow: DroppedFlow, sets: NftRuleset['sets']): Match {
  let out: Match = 'match';
  for (const e of rule.expr) {
    if ('match' in e) {
      const r = matchExpr(e, flow, sets, rule);
      if (r === 'nomatch') return 'nomatch';
      if (r === 'unknown') out = 'unknown';
    } else if (!['counter', 'log', 'comment', 'drop', 'reject', 'accept', 'jump', 'goto', 'return', 'continue', 'queue', 'limit', 'xt'].some((k) => k in e)) {
      // a statement that changes or selects the packet (nat, mangle, meter, set updates)
      out = 'unknown';
    }
  }
  return out;
}

/**
 * Base chains a dropped packet can have gone through, by the hooks its direction allows:
 * to a local address, prerouting and input; else prerouting, forward, output and postrouting.
 */
export function hooksFor(local: boolean | null): string[] {
  if (local === true) return ['ingress', 'prerouting', 'input'];
  if (local === false) return ['ingress', 'prerouting', 'forward', 'output', 'postrouting'];
  return ['ingress', 'prerouting', 'input', 'forward', 'output', 'postrouting'];
}
