/**
 * The `droptrace live` screen. Renders snapshots handed to it; never samples
 * anything itself. Each panel is one component with one render method.
 * Keys call back into a Controller, which owns the data.
 */
import blessed from 'blessed';
import { GROUPS, SORTS, type BenignMode, type GroupBy, type GroupRow, type Snapshot, type SortBy } from '../analysis/snapshot.js';
import { benignLine } from '../model/benign.js';
import type { DropRecord } from '../model/drop.js';

const SPARKS = '▁▂▃▄▅▆▇█';

/** A sparkline of the last `width` points, scaled to the largest. ASCII when asked. */
export function sparkline(history: number[], width = 20, ascii = false): string {
  const pts = history.slice(-width);
  const max = Math.max(...pts, 0);
  const chars = ascii ? ' .:-=+*#' : SPARKS;
  return pts.map((v) => (max === 0 || v === 0 ? (ascii ? ' ' : ' ') : chars[Math.min(chars.length - 1, Math.floor((v / max) * (chars.length - 1)))])).join('');
}

/** What the screen needs from whoever owns the capture. */
export interface Controller {
  header(): HeaderInfo;
  snapshot(group: GroupBy, sort: SortBy, benign: BenignMode): Snapshot;
  clear(): void;
  /** Applies a filter string such as "--port 2483 --iface cni0"; returns an error message or null. */
  setFilters(text: string): Promise<string | null>;
  quit(): void;
  hint?(row: GroupRow, group: GroupBy): string | null;
  /** one line: what the row's drops mean and the first command to run (diagnose's verdict, short) */
  verdict?(row: GroupRow, group: GroupBy): string | null;
  /** the name a person recognises for a netns label: its ip-netns name, its pod, "(host)", else the inode */
  netnsName?: NetnsName;
}

export interface HeaderInfo {
  host: string;
  kernel: string;
  attach: string;
  filters: string;
  delivered: number;
  lost: number;
  source: string;
}

const HELP = `droptrace live — keys

  ↑ ↓  j k     select a row            Enter   details of the selected row
  g            next grouping            Esc     back
  s            next sort order          p       pause the screen (counting goes on)
  c            clear counts             f       edit filters (reloads the BPF program)
  b            show or fold the drops every healthy node makes (IPv6 multicast nobody
               joined, frames for other hosts, …): folded, they are one counted line
  ?            this help                q, Ctrl-C  quit

Groupings: ${GROUPS.join(', ')}.   Sort orders: ${SORTS.join(', ')}.
Counts and rates come from exact in-kernel counters; "flow" rows are counted from
events, which can be lost under a flood (the header says how many were).
"/s 10s" is drops per second weighted over the last seconds (a 5 s time constant):
a burst stays visible for a few seconds and fades; "rate" sorts by it.
The line under the header is what the top row means and the first command to run.`;

function fmtRate(r: number): string {
  if (r >= 1e6) return `${(r / 1e6).toFixed(1)}M`;
  if (r >= 1e4) return `${(r / 1e3).toFixed(1)}k`;
  if (r >= 100) return r.toFixed(0);
  return r.toFixed(1);
}

function fmtCount(n: number): string {
  if (n >= 1e7) return `${(n / 1e6).toFixed(1)}M`;
  return String(n);
}

function fmtElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h ? `${h}h` : ''}${String(m).padStart(h ? 2 : 1, '0')}m${String(s % 60).padStart(2, '0')}s`;
}

function fit(s: string, w: number): string {
  if (w <= 0) return '';
  return s.length > w ? s.slice(0, Math.max(0, w - 1)) + '…' : s.padEnd(w);
}

/** A recent drop in one short line: what fits 80 columns first. */
export function recentLine(d: DropRecord): string {
  const ep = (a: string | null, p: number | null) => (a === null ? '?' : p === null ? a : a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
  const flow = d.saddr ? `${d.l4 ?? d.protocol} ${ep(d.saddr, d.sport)} > ${ep(d.daddr, d.dport)}${d.tcpFlags ? ` [${d.tcpFlags}]` : ''}` : d.protocol;
  return `${d.time.slice(11, 23)} ${d.symbol} ${d.reason ?? '-'} ${d.ifname ?? '-'} ${flow}`;
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
export function detailText(r: GroupRow, group: GroupBy, hint: string | null): string {
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
    hint ? `\nWhat to check:\n${hint}` : '',
    '',
    'Esc to go back',
  ]
    .filter((s, i, a) => s !== '' || a[i - 1] !== '')
    .join('\n');
}

export class LiveScreen {
  private readonly screen: blessed.Widgets.Screen;
  private readonly header: blessed.Widgets.BoxElement;
  private readonly colhdr: blessed.Widgets.BoxElement;
  private readonly problem: blessed.Widgets.BoxElement;
  private readonly table: blessed.Widgets.ListElement;
  private readonly recent: blessed.Widgets.BoxElement;
  private readonly footer: blessed.Widgets.BoxElement;
  private overlay: blessed.Widgets.BoxElement | null = null;
  private group: GroupBy;
  private sort: SortBy;
  private benign: BenignMode;
  private paused = false;
  private rows: GroupRow[] = [];
  private selectedKey: string | null = null;
  private last: Snapshot | null = null;
  private destroyed = false;
  private message = '';
  private color = true;

  constructor(
    private readonly ctl: Controller,
    opts: { group: GroupBy; sort: SortBy; noColor: boolean; benign: BenignMode },
  ) {
    this.group = opts.group;
    this.sort = opts.sort;
    this.benign = opts.benign;
    // forceUnicode: box lines as Unicode, not the terminal's ACS charset (which some
    // terminals and tmux capture show as 'lqqk')
    this.screen = blessed.screen({ smartCSR: true, title: 'droptrace live', fullUnicode: true, forceUnicode: true, autoPadding: false, warnings: false });
    const color = !opts.noColor;
    this.color = color;
    this.header = blessed.box({ parent: this.screen, top: 0, left: 0, width: '100%', height: 2, tags: false, style: color ? { fg: 'white', bg: 'blue' } : {} });
    this.problem = blessed.box({ parent: this.screen, top: 2, left: 0, width: '100%', height: 1, tags: false, style: color ? { fg: 'yellow', bold: true } : { bold: true } });
    this.colhdr = blessed.box({ parent: this.screen, top: 3, left: 0, width: '100%', height: 1, style: color ? { bold: true, fg: 'cyan' } : { bold: true } });
    this.table = blessed.list({
      parent: this.screen,
      top: 4,
      left: 0,
      width: '100%',
      height: 10,
      keys: true,
      vi: true,
      mouse: true,
      tags: false,
      style: color ? { selected: { bg: 'cyan', fg: 'black' } } : { selected: { inverse: true } },
    });
    this.recent = blessed.box({ parent: this.screen, left: 0, width: '100%', height: 6, tags: false, style: color ? { fg: 'gray' } : {} });
    this.footer = blessed.box({ parent: this.screen, bottom: 0, left: 0, width: '100%', height: 1, style: color ? { fg: 'black', bg: 'white' } : { inverse: true } });
    this.table.on('select item', (_item, index) => {
      this.selectedKey = this.rows[index]?.key ?? null;
    });
    this.bindKeys();
    this.screen.on('resize', () => this.layout());
    this.layout();
    this.table.focus();
  }

  private bindKeys(): void {
    const s = this.screen;
    s.key(['q', 'C-c'], () => this.ctl.quit());
    s.key(['?'], () => this.showOverlay(HELP));
    s.key(['escape'], () => this.closeOverlay());
    s.key(['enter'], () => {
      if (this.overlay) return;
      const row = this.rows[(this.table as unknown as { selected: number }).selected];
      if (row) this.showOverlay(detailText(row, this.group, this.ctl.hint?.(row, this.group) ?? null));
    });
    s.key(['g'], () => {
      this.group = GROUPS[(GROUPS.indexOf(this.group) + 1) % GROUPS.length];
      this.selectedKey = null;
      this.refresh(true);
    });
    s.key(['s'], () => {
      this.sort = SORTS[(SORTS.indexOf(this.sort) + 1) % SORTS.length];
      this.refresh(true);
    });
    s.key(['b'], () => {
      this.benign = this.benign === 'fold' ? 'show' : 'fold';
      this.refresh(true);
    });
    s.key(['p'], () => {
      this.paused = !this.paused;
      this.refresh(true);
    });
    s.key(['c'], () => {
      this.ctl.clear();
      this.refresh(true);
    });
    s.key(['f'], () => this.editFilters());
  }

  private editFilters(): void {
    if (this.overlay) return;
    const prompt = blessed.prompt({ parent: this.screen, top: 'center', left: 'center', width: '80%', height: 8, padding: 1, tags: false, style: this.color ? { bg: 'blue', fg: 'white' } : { inverse: true } });
    prompt.input('Filter options (as on the command line, e.g. --port 2483 --iface cni0; empty for none):', this.ctl.header().filters === 'none' ? '' : '', (err, value) => {
      prompt.destroy();
      this.table.focus();
      if (err || value === null || value === undefined) return this.render();
      void this.ctl.setFilters(value).then((msg) => {
        this.message = msg ? `filters not changed: ${msg}` : 'filters applied';
        this.refresh(true);
      });
    });
  }

  private showOverlay(text: string): void {
    this.closeOverlay();
    // the whole screen but the footer: nothing of the table may show through at any size
    this.overlay = blessed.box({
      parent: this.screen,
      top: 0,
      left: 0,
      width: '100%',
      height: '100%-1',
      // no border: line-drawing characters render as 'lqqk' on terminals with broken ACS
      padding: { left: 1, right: 1 },
      style: this.color ? { bg: 'black', fg: 'white' } : {},
      ch: ' ',
      content: text,
      tags: false,
      scrollable: true,
      alwaysScroll: true,
      keys: true,
      vi: true,
    });
    // and what it covers is hidden while it is open: a scrollable box shorter than its content
    // area does not repaint every cell, and the panes under it redraw once a second
    for (const el of [this.colhdr, this.table, this.recent, this.problem]) el.hide();
    this.overlay.focus();
    this.screen.render();
  }

  private closeOverlay(): void {
    if (!this.overlay) return;
    this.overlay.destroy();
    this.overlay = null;
    for (const el of [this.colhdr, this.table, this.recent, this.problem]) el.show();
    this.table.focus();
    this.screen.render();
  }

  private layout(): void {
    const h = (this.screen.height as number) || 24;
    const recentH = Math.max(3, Math.min(10, Math.floor((h - 5) / 3)));
    this.table.height = Math.max(3, h - 4 - recentH - 1);
    this.recent.top = 4 + (this.table.height as number);
    this.recent.height = recentH;
    this.refresh(true);
  }

  /** Takes a fresh snapshot (unless paused) and draws it. */
  refresh(force = false): void {
    if (this.destroyed) return;
    if (!this.paused || force || !this.last) {
      if (!this.paused || !this.last) this.last = this.ctl.snapshot(this.group, this.sort, this.benign);
    }
    this.render();
  }

  private render(): void {
    if (this.destroyed || !this.last) return;
    const snap = this.last;
    const width = (this.screen.width as number) || 80;
    const hdr = this.ctl.header();
    const lostText = hdr.lost ? `LOST ${hdr.lost}` : 'lost 0';
    this.header.setContent(
      fit(`droptrace live  ${hdr.host}  ${hdr.kernel}  via ${hdr.attach}  ${fmtElapsed(snap.elapsedMs)}${this.paused ? '  [PAUSED]' : ''}`, width) +
        '\n' +
        fit(`drops ${snap.total}  ${fmtRate(snap.rateAvg)}/s 10s  events ${hdr.delivered} (${lostText})  group: ${snap.groupBy}  sort: ${snap.sortBy}  filters: ${hdr.filters}`, width),
    );
    const top = snap.rows.find((r) => !r.benign);
    const verdict = top ? this.ctl.verdict?.(top, snap.groupBy) : null;
    this.problem.setContent(verdict ? fit(`▶ ${verdict}`, width) : '');
    const cols = layoutColumns(width, snap.groupBy, snap.rows, this.ctl.netnsName);
    this.colhdr.setContent(cols.header);
    this.rows = snap.rows;
    const folded = benignLine(snap.benign, 'b');
    const items = snap.rows.length ? snap.rows.map(cols.row) : [this.paused ? '  (paused)' : folded ? '  no drops besides expected noise' : '  no drops yet: waiting…'];
    const keep = this.selectedKey;
    this.table.setItems(items as unknown as blessed.Widgets.BlessedElement[]);
    const idx = keep ? snap.rows.findIndex((r) => r.key === keep) : 0;
    this.table.select(Math.max(0, idx));
    this.selectedKey = snap.rows[Math.max(0, idx)]?.key ?? null;
    const recentHead = folded ? [fit(`+ ${folded}`, width)] : [];
    const room = Math.max(0, (this.recent.height as number) - 1 - recentHead.length);
    const recentLines = (room ? snap.recent.slice(-room) : [])
      .reverse()
      .map((d: DropRecord) => fit(recentLine(d), width));
    this.recent.setContent([...recentHead, fit('Recent drops:', width), ...recentLines].join('\n'));
    this.footer.setContent(fit(this.message || ' ↑↓ select  Enter detail  g group  s sort  b noise  p pause  c clear  f filters  ? help  q quit', width));
    this.screen.render();
  }

  /** A message in the footer, until a key changes it. */
  say(text: string): void {
    if (this.message === text) return;
    this.message = text;
    this.render();
  }

  /** Restores the terminal; safe to call more than once. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.screen.destroy();
  }
}
