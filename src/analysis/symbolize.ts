/**
 * Offline symbolization of drop logs against a symbol table taken
 * elsewhere, usually not from the log's kernel. A name in the log is
 * evidence, not truth (dropwatch before 1.5.5 named module addresses after
 * whatever core symbol preceded them in an unsorted /proc/kallsyms), and so
 * is the table: before any name is replaced, the lines that print both a
 * name and an address vote on the KASLR slide, and only when distinct
 * functions agree is the table taken to be the log's kernel. Otherwise the
 * log's own names are kept and said to be unchecked.
 *
 * Memory grows with the distinct drop sites, never with the lines: lines
 * are counted into their site as they come (the common dropwatch line is
 * read from bytes without a string), and resolved once per site. When each
 * line is printed (text or JSON entries), the first HOLD_LINES lines wait
 * for the slide to be decided; --summary decides over every line.
 *
 * This is the scanner, one streaming state machine: a line's meaning
 * depends on the lines before it (a stack frame belongs to the drop above, a
 * packet-mode field to its block, a bare address is a drop only in a list of
 * addresses). The sites are log-sites.ts; whether the table is the log's
 * kernel, and what a site resolves to, is judge.ts; the report is
 * symbolize-report.ts; the text tables are views/symbolize.ts.
 */
import { F, FAST, fastDropwatch, parseLine, type LogDrop, type LogKind } from '../formats/droplog.js';
import { isGenericFree } from '../model/functions.js';
import type { SymbolTable } from '../model/kallsyms.js';
import { LogSites } from './log-sites.js';
import { bump } from './snapshot.js';
import { symbolizeReport, type Report } from './symbolize-report.js';
import { judge, Resolver, type Judgement, type LogSite } from './judge.js';

/** One recognised drop line, resolved. */
export interface Entry {
  line: number;
  kind: LogKind;
  count: number;
  /** the address looked up (the log's, minus the slide), hex, or null */
  address: string | null;
  symbol: string | null;
  function: string | null;
  offset: number | null;
  module: string | null;
  reason: string | null;
  hardware: boolean;
  /** the location exactly as the log printed it */
  logSymbol: string | null;
  /** the log's name is none of the names at its address, in a table shown to be the log's kernel */
  logNameWrong: boolean;
  /** why this line could not be resolved, or null */
  unresolved: string | null;
}

export interface Emitted {
  text: string;
  entry: Entry | null;
}

/** What to produce per line: annotated text, entries (for JSON), or nothing (tables only). */
export interface SymbolizeOutput {
  text: boolean;
  entries: boolean;
}

/** Lines held back, when each line is printed, while the slide is not decided. */
export const HOLD_LINES = 100_000;

type Site = LogSite;

interface Held {
  no: number;
  text: string;
  site: Site | null;
  count: number;
  reason: string | null;
  kind: LogKind | null;
}

const NOTHING: Emitted[] = [];

export class Symbolizer {
  private lineNo = 0;
  private held: Held[] | null = [];
  private decided = false;
  private judgement: Judgement | null = null;
  private resolver: Resolver | null = null;
  private readonly sites = new LogSites();
  private readonly formats: Partial<Record<LogKind, number>> = {};
  private readonly warnings: string[] = [];
  /** the warnings already handed to onVerdict */
  readonly announced: string[] = [];
  private recognised = 0;
  /** lines taken by pushBytes' fast path: dropwatch lines, counted into formats when asked */
  private fastLines = 0;
  private ignored = 0;
  private unrecognised = 0;
  /** a drop form other than a bare address was seen: bare addresses are then stack context, not drops */
  private otherForms = false;
  /** the drop line the next stack frames belong to, until its caller is found */
  private frameSite: Site | null = null;
  private frameCount = 0;
  private inPacket: Site | null = null;
  private readonly perLine: boolean;

  private symbols: SymbolTable | null;

  /**
   * table may come later (setTable), as long as it comes before anything
   * must be resolved: with no per-line output, before end(); otherwise
   * before the first line.
   */
  constructor(
    table: SymbolTable | null,
    private readonly output: SymbolizeOutput = { text: true, entries: true },
    /** called once, when the slide is decided: what the user must hear first */
    private readonly onVerdict: (warnings: string[]) => void = () => {},
  ) {
    this.symbols = table;
    this.perLine = output.text || output.entries;
    if (!this.perLine) this.held = null;
  }

  setTable(table: SymbolTable): void {
    this.symbols = table;
  }

  private get table(): SymbolTable {
    if (!this.symbols) throw new Error('symbolize: the symbol table is needed before it was given');
    return this.symbols;
  }

  /** Feeds one line (without its newline); returns what can be emitted now. */
  push(text: string): Emitted[] {
    const no = ++this.lineNo;
    const p = parseLine(text);
    return this.take(no, text, p);
  }

  /**
   * Feeds the line buf[ls, le) (without its newline). The common dropwatch
   * line costs no string when nothing is printed per line.
   */
  pushBytes(buf: Buffer, ls: number, le: number): Emitted[] {
    if (!fastDropwatch(buf, ls, le)) return this.push(buf.toString('utf8', ls, le));
    const no = ++this.lineNo;
    const hi = FAST[F.hi];
    const lo = FAST[F.lo];
    const s = this.sites.ofHalves(hi, lo, 'dropwatch');
    if (s.name === null && FAST[F.nameEnd] > FAST[F.nameStart]) {
      s.name = buf.toString('latin1', FAST[F.nameStart], FAST[F.nameEnd]);
      s.offset = FAST[F.offset];
      s.text = `${s.name}+${buf.toString('latin1', FAST[F.offStart], FAST[F.offEnd])}`;
    }
    // the common line, counted in place (count() for the rest)
    const n = FAST[F.count];
    this.recognised++;
    this.fastLines++;
    s.count += n;
    s.lines++;
    if (!s.first) s.first = no;
    s.last = no;
    if (this.resolver && !s.res) s.res = this.resolver.resolve(s);
    this.frameSite = s;
    this.frameCount = 0;
    this.inPacket = null;
    if (!this.perLine) return NOTHING;
    return this.output1(no, buf.toString('utf8', ls, le), s, n, null, 'dropwatch');
  }

  /** Ends the input: decides what is still open and emits what was held back. */
  end(): Emitted[] {
    if (!this.decided) this.decide();
    return this.release();
  }

  private take(no: number, text: string, p: ReturnType<typeof parseLine>): Emitted[] {
    if (this.fastLines) this.settleFast();
    let site: Site | null = null;
    let count = 0;
    let reason: string | null = null;
    let kind: LogKind | null = null;
    if (!p) {
      this.unrecognised++;
      this.frameSite = null;
    } else if (p.kind === 'chatter') {
      this.ignored++;
      if (text.trim() === '') this.inPacket = null;
      if (!p.stack) this.frameSite = null;
    } else if (p.kind === 'dropwatch-field') {
      if (this.inPacket) {
        this.recognised++;
        if (p.field === 'drop reason' && p.value) bump(this.inPacket.reasons, p.value, 1);
      } else this.unrecognised++;
    } else if (p.kind === 'frame') {
      this.frame(p.name);
    } else if (p.kind === 'address' && (this.frameSite || this.otherForms)) {
      // an address after a drop line is its stack; in a log of other drop lines it is context
      if (this.frameSite) this.frame(null);
      else this.ignored++;
    } else {
      const d = p as LogDrop;
      site = this.sites.of(d);
      count = d.count;
      reason = d.reason;
      kind = d.kind;
      this.count(site, no, count, reason, d.kind);
      this.frameSite = d.kind === 'address' ? null : site;
      this.frameCount = 0;
      this.inPacket = d.kind === 'dropwatch-packet' ? site : null;
    }
    if (!this.perLine) return NOTHING;
    return this.output1(no, text, site, count, reason, kind);
  }

  /** A line to print: held while the slide is undecided, else annotated now. */
  private output1(no: number, text: string, site: Site | null, count: number, reason: string | null, kind: LogKind | null): Emitted[] {
    if (this.held) {
      this.held.push({ no, text, site, count, reason, kind });
      if (this.held.length >= HOLD_LINES) {
        this.decide();
        return this.release();
      }
      return NOTHING;
    }
    return [this.emitted(no, text, site, count, reason, kind)];
  }

  private frame(name: string | null): void {
    const s = this.frameSite;
    if (!s) {
      this.ignored++;
      return;
    }
    this.recognised++;
    // the first frame that is not a free function (nor the drop site itself) is who dropped it
    if (name && this.frameCount >= 0 && !isGenericFree(name) && name !== s.name) {
      bump(s.callers, name, 1);
      this.frameCount = -1;
    } else if (this.frameCount >= 0) this.frameCount++;
  }

  private count(s: Site, no: number, n: number, reason: string | null, kind: LogKind): void {
    this.recognised++;
    this.formats[kind] = (this.formats[kind] ?? 0) + 1;
    if (kind !== 'address') this.otherForms = true;
    s.count += n;
    s.lines++;
    if (!s.first) s.first = no;
    s.last = no;
    if (reason) bump(s.reasons, reason, n);
    if (this.resolver && !s.res) s.res = this.resolver.resolve(s);
  }

  /** Folds the fast path's tally into the per-kind counts. */
  private settleFast(): void {
    if (!this.fastLines) return;
    this.formats.dropwatch = (this.formats.dropwatch ?? 0) + this.fastLines;
    this.otherForms = true;
    this.fastLines = 0;
  }

  /** Bare addresses are drops only in a log that is nothing but addresses. */
  private get bareAsDrops(): boolean {
    return !this.otherForms && !this.fastLines;
  }

  /** The votes are counted once: after HOLD_LINES, at the end, or when the report is asked. */
  private decide(): void {
    this.settleFast();
    this.decided = true;
    this.judgement = judge(this.sites.all, this.table);
    this.resolver = new Resolver(this.table, this.judgement);
    for (const s of this.sites.all) if (!s.res) s.res = this.resolver.resolve(s);
    const warn = [...this.judgement.warnings];
    const v = this.judgement.verdict;
    if (v === 'unchecked' || v === 'one name') {
      let addressed = 0;
      let wild = 0;
      for (const s of this.sites.all) {
        if (s.address === null || s.name !== null) continue;
        addressed += s.lines;
        if (s.res?.unresolved) wild += s.lines;
      }
      if (addressed >= 3 && wild * 2 > addressed) {
        warn.push(`${wild} of ${addressed} addresses fall outside this kallsyms' functions: it is probably from another machine or boot, and no line had both a name and an address to correct for KASLR; results are unreliable`);
      }
    }
    this.warnings.push(...warn);
    this.announced.push(...warn);
    if (warn.length) this.onVerdict(warn);
  }

  private release(): Emitted[] {
    const held = this.held;
    this.held = null;
    if (!held) return NOTHING;
    const out: Emitted[] = [];
    for (const h of held) out.push(this.emitted(h.no, h.text, h.site, h.count, h.reason, h.kind));
    return out;
  }

  private emitted(no: number, text: string, site: Site | null, count: number, reason: string | null, kind: LogKind | null): Emitted {
    const line = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (!site || (site.bare && !this.bareAsDrops)) return { text: this.output.text ? line : '', entry: null };
    const r = site.res!;
    const entry: Entry | null = this.output.entries
      ? {
          line: no,
          kind: kind!,
          count,
          address: r.address,
          symbol: r.symbol,
          function: r.function,
          offset: r.offset,
          module: r.module,
          reason,
          hardware: site.hardware,
          logSymbol: site.text,
          logNameWrong: r.logNameWrong,
          unresolved: r.unresolved,
        }
      : null;
    return { text: this.output.text ? `${line}  => ${r.annotation}` : '', entry };
  }

  report(): Report {
    if (!this.decided) this.decide();
    this.settleFast();
    return symbolizeReport(this.sites.all, this.judgement!, {
      lines: this.lineNo,
      recognised: this.recognised,
      ignored: this.ignored,
      unrecognised: this.unrecognised,
      formats: this.formats,
      warnings: this.warnings,
      bareAsDrops: this.bareAsDrops,
    });
  }
}
