/**
 * The live screen's text: rows and their columns fitted to the terminal's
 * width from the data (the widest key, the widest counts), the detail view
 * of a row, the recent-drops line and the sparkline. Pure: the screen
 * (screen.ts) only places what these return.
 */
import type { GroupBy, GroupRow } from '../analysis/snapshot.js';
import { endpoint, icmpName, innerText, type DropRecord } from '../model/drop.js';

const SPARKS = '▁▂▃▄▅▆▇█';

/** A sparkline of the last `width` points, scaled to the largest. ASCII when asked. */
export function sparkline(history: number[], width = 20, ascii = false): string {
  const pts = history.slice(-width);
  const max = Math.max(...pts, 0);
  const chars = ascii ? ' .:-=+*#' : SPARKS;
  return pts.map((v) => (max === 0 || v === 0 ? (ascii ? ' ' : ' ') : chars[Math.min(chars.length - 1, Math.floor((v / max) * (chars.length - 1)))])).join('');
}

export function fmtRate(r: number): string {
  if (r >= 1e6) return `${(r / 1e6).toFixed(1)}M`;
  if (r >= 1e4) return `${(r / 1e3).toFixed(1)}k`;
  if (r >= 100) return r.toFixed(0);
  return r.toFixed(1);
}

function fmtCount(n: number): string {
  if (n >= 1e7) return `${(n / 1e6).toFixed(1)}M`;
  return String(n);
}

export function fmtElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h ? `${h}h` : ''}${String(m).padStart(h ? 2 : 1, '0')}m${String(s % 60).padStart(2, '0')}s`;
}

export function fit(s: string, w: number): string {
  if (w <= 0) return '';
  return s.length > w ? s.slice(0, Math.max(0, w - 1)) + '…' : s.padEnd(w);
}

/** A recent drop in one short line: what fits 80 columns first. */
export function recentLine(d: DropRecord): string {
  const ver = d.protocol === 'IPv6' ? 6 : 4;
  const ep = (a: string | null, p: number | null) => (a === null ? '?' : endpoint(a, ver, p));
  const icmp = d.icmpType !== null ? ` ${icmpName(d.l4 === 'ICMPv6' ? 58 : 1, d.icmpType, d.icmpCode ?? 0)}` : '';
  const flow = d.saddr ? `${d.l4 ?? d.protocol} ${ep(d.saddr, d.sport)} > ${ep(d.daddr, d.dport)}${d.tcpFlags ? ` [${d.tcpFlags}]` : ''}${icmp}` : d.protocol;
  // a tunnelled drop: the pod flow inside is what the reader is looking for
  const inner = d.inner ? ` [${innerText(d.inner)}]` : '';
  return `${d.time.slice(11, 23)} ${d.symbol} ${d.reason ?? '-'} ${d.ifname ?? '-'} ${flow}${inner}`;
}

/** Cuts from the start, keeping the distinctive end of a name ("…-hostA", "…coredns-5d78c9-x7k2p"). */
export function fitTail(s: string, w: number): string {
  if (w <= 0) return '';
  return s.length > w ? '…' + s.slice(s.length - w + 1) : s.padEnd(w);
}

/** Cuts the middle of a function name, keeping its "+0x…" offset and "[module]". */
export function fitSite(s: string, w: number): string {
  if (s.length <= w) return s.padEnd(w);
  const m = /(\+0x[0-9a-f]+(?: \[[^\]]+\])?(?: ~)?)$/.exec(s);
  const tail = m && m[1].length < w - 3 ? m[1] : '';
  return fit(s.slice(0, s.length - tail.length), w - tail.length) .trimEnd().padEnd(w - tail.length) + tail;
}

/** The name a person recognises for a row's namespace: given by the caller, else the inode. */
export type NetnsName = (label: string) => string;

const plainNetns: NetnsName = (label) => /\((.+)\)$/.exec(label)?.[1] ?? label;

/**
 * Column layout for a terminal width and the rows it will show: each column
 * as wide as its data needs (within bounds), the key column takes the rest.
 * Every column stays readable at 80 columns. Pure, so tests can check it.
 */
export function layoutColumns(width: number, group: GroupBy, rows: readonly GroupRow[] = [], netnsName: NetnsName = plainNetns): { header: string; row: (r: GroupRow) => string } {
  const second = group === 'reason' ? 'LOCATION' : 'REASON';
  const third = group === 'interface' ? 'LOCATION' : 'IFACE';
  const key = (r: GroupRow) => (r.module ? `${r.key} [${r.module}]` : r.key) + (r.exact ? '' : ' ~');
  const sec = (r: GroupRow) => (group === 'reason' ? r.locations[0]?.key : r.reasons[0]?.key) ?? '-';
  const thd = (r: GroupRow) => (group === 'interface' ? r.locations[0]?.key : r.interfaces[0]?.key) ?? '-';
  const ns = (r: GroupRow) => (group === 'netns' ? '' : r.netns[0] ? netnsName(r.netns[0].key) : '-');
  const widest = (f: (r: GroupRow) => string, title: string) => rows.reduce((w, r) => Math.max(w, f(r).length), title.length);
  const countW = Math.max(6, widest((r) => fmtCount(r.total), 'COUNT'));
  const rateW = 7;
  let trend = width >= 130 ? 20 : width >= 100 ? 12 : 6;
  const showNs = group !== 'netns';
  // what each column wants and the least it may shrink to; the key (the drop site) comes first
  const cols = [
    { want: Math.max(16, Math.min(60, widest(key, group))), min: 16 },
    { want: Math.min(28, widest(sec, second)), min: Math.min(13, widest(sec, second)) },
    { want: Math.min(24, widest(thd, third)), min: Math.min(8, widest(thd, third)) },
    ...(showNs ? [{ want: Math.min(64, widest(ns, 'NETNS')), min: Math.min(11, widest(ns, 'NETNS')) }] : []),
  ];
  const seps = 2 + cols.length;
  let room = width - countW - rateW - trend - seps;
  if (room < cols.reduce((n, c) => n + c.min, 0)) {
    trend = 6;
    room = width - countW - rateW - trend - seps;
  }
  // each its minimum, then what is left up to what it wants, in order of use: the drop site,
  // the reason, the namespace, the interface; the rest to the drop site
  const w = cols.map((c) => c.min);
  let left = Math.max(0, room - w.reduce((a, b) => a + b, 0));
  for (const i of [0, 1, 3, 2]) {
    if (i >= cols.length || left <= 0) continue;
    const more = Math.min(left, cols[i].want - w[i]);
    w[i] += more;
    left -= more;
  }
  w[0] += left;
  const [keyW, secW, thdW, nsW] = w;
  const header = [
    'COUNT'.padStart(countW),
    '/s 10s'.padStart(rateW),
    fit('TREND', trend),
    fit(group.toUpperCase(), keyW),
    fit(second, secW),
    fit(third, thdW),
    ...(showNs ? [fit('NETNS', nsW)] : []),
  ].join(' ');
  const row = (r: GroupRow) =>
    [
      fmtCount(r.total).padStart(countW),
      fmtRate(r.rateAvg).padStart(rateW),
      sparkline(r.history, trend),
      group === 'location' || group === 'function' ? fitSite(key(r), keyW) : fitTail(key(r), keyW),
      group === 'reason' ? fitSite(sec(r), secW) : fit(sec(r), secW),
      group === 'interface' ? fitSite(thd(r), thdW) : fitTail(thd(r), thdW),
      ...(showNs ? [fitTail(ns(r), nsW)] : []),
    ].join(' ');
  return { header, row };
}

/** The detail text of one row. */
export function detailText(r: GroupRow, group: GroupBy, hint: string | null, stacks: string | null = null, paths: string | null = null): string {
  const when = (t: number) => new Date(t).toISOString().replace('T', ' ').slice(0, 19);
  const list = (title: string, items: { key: string; count: number }[]) =>
    items.length ? `${title}:\n${items.map((i) => `  ${String(i.count).padStart(8)}  ${i.key}`).join('\n')}` : '';
  return [
    `${group}: ${r.key}${r.module ? ` [${r.module}]` : ''}    (Esc: back, ↑↓: scroll)`,
    `total ${r.total} drops, ${r.bytes} bytes; ${fmtRate(r.rateAvg)}/s averaged over ~10 s (${fmtRate(r.rate1)}/s in the last second, ${fmtRate(r.rate10)}/s over the last 10 s)${r.exact ? '' : ' (counted from events: may miss lost ones)'}`,
    `first seen ${when(r.firstSeen)}, last seen ${when(r.lastSeen)}`,
    `last 60 s: ${sparkline(r.history, 60)}`,
    '',
    list('Locations', r.locations),
    list('Reasons', r.reasons),
    list('Interfaces', r.interfaces),
    list('Network namespaces', r.netns),
    list('Flows (from events)', r.flows),
    list('Receiving sockets (from events)', r.sockets),
    hint ? `\nWhat to check:\n${hint}` : '',
    stacks ? `\nKernel stacks (innermost frame first):\n${stacks}` : '',
    paths ? `\nPaths of its dropped packets (first step to drop):\n${paths}` : '',
    '',
    'Esc to go back',
  ]
    .filter((s, i, a) => s !== '' || a[i - 1] !== '')
    .join('\n');
}
