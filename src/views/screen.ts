/**
 * The `droptrace live` screen: blessed boxes for the header, the problem
 * line, the table, the recent drops and the footer, plus full-screen
 * overlays (detail, help, filter). It renders snapshots handed to it and
 * never samples anything itself; keys call back into a Controller, which
 * owns the data. The text of each part comes from columns.ts.
 */
import { FILTER_FLAGS } from '../capture/filters.js';
import blessed from 'blessed';
import { GROUPS, SORTS, type BenignMode, type GroupBy, type GroupRow, type Snapshot, type SortBy } from '../analysis/snapshot.js';
import { benignLine } from '../model/benign.js';
import type { DropRecord } from '../model/drop.js';
import { detailText, fit, fmtElapsed, fmtRate, layoutColumns, recentLine, type NetnsName } from './columns.js';

/** What the screen needs from whoever owns the capture. */
export interface Controller {
  header(): HeaderInfo;
  snapshot(group: GroupBy, sort: SortBy, benign: BenignMode): Snapshot;
  clear(): void;
  /** Applies a filter string such as "--port 2483 --iface cni0"; returns an error message or null. */
  setFilters(text: string): Promise<string | null>;
  quit(): void;
  hint?(row: GroupRow, group: GroupBy): string | null;
  /** drops only counters saw in the last period (accept queues, NIC rings, qdiscs), one line each */
  counted?(): string[];
  /** the kernel stacks of the row's top drop site (live --stack), as text */
  stacks?(row: GroupRow, group: GroupBy): string | null;
  /** the typical paths of the row's dropped packets and their latency (live --path), as text */
  paths?(row: GroupRow, group: GroupBy): string | null;
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
      if (row) this.showOverlay(detailText(row, this.group, this.ctl.hint?.(row, this.group) ?? null, this.ctl.stacks?.(row, this.group) ?? null, this.ctl.paths?.(row, this.group) ?? null));
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
    prompt.input(`Filters as on the command line (${FILTER_FLAGS.map((f) => f.flag).join(' ')}), e.g. --port 2483 --iface cni0; empty for none:`, this.ctl.header().filters === 'none' ? '' : '', (err, value) => {
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
    // counted by the kernel, never traced: above the recent drops, marked as such
    const counted = (this.ctl.counted?.() ?? []).map((l) => fit(`■ counted, not traced: ${l}`, width));
    const recentHead = [...counted, ...(folded ? [fit(`+ ${folded}`, width)] : [])];
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
