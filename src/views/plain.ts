/**
 * dropwatch-compatible lines for `live --plain`: one line per location
 * (and reason and interface) that dropped during the interval, e.g.
 *   12 drops at nft_do_chain+0x3c3 (0xffffffff81f63613) [NETFILTER_DROP] cni0
 * The symbolizer's dropwatch parser reads them back. Pure.
 */
import { baseKey } from '../analysis/aggregate.js';
import type { Naming } from '../model/naming.js';
import type { CountRecord } from '../model/decode.js';

export interface PlainLine {
  count: number;
  location: bigint;
  reason: number;
  ifindex: number;
  netns: number;
}

/** Per-key increases between two cumulative snapshots, biggest first. */
export function intervalDrops(prev: Map<string, number>, cur: CountRecord[]): { lines: PlainLine[]; next: Map<string, number> } {
  const next = new Map<string, number>();
  const lines: PlainLine[] = [];
  for (const r of cur) {
    const k = baseKey(r.location, r.reason, r.ifindex, r.netns);
    next.set(k, r.packets);
    const d = r.packets - (prev.get(k) ?? 0);
    if (d > 0) lines.push({ count: d, location: r.location, reason: r.reason, ifindex: r.ifindex, netns: r.netns });
  }
  lines.sort((a, b) => b.count - a.count);
  return { lines, next };
}

/** `N drops at sym+0xoff (0xaddr) [REASON] ifname`, or `N drops at location 0xaddr …` when unresolved. */
export function formatPlain(l: PlainLine, naming: Naming, ifname: string, hasReasons: boolean): string {
  const addr = `0x${l.location.toString(16)}`;
  const sym = naming.location(l.location);
  const at = sym.symbol === addr ? `location ${addr}` : `${sym.symbol} (${addr})`;
  const reason = hasReasons ? ` [${naming.reason(l.reason)}]` : '';
  const iface = ifname && ifname !== '-' ? ` ${ifname}` : '';
  return `${l.count} drops at ${at}${reason}${iface}`;
}
