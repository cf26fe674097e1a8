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
 * Memory grows with the distinct drop sites, never with the lines, and a
 * site costs a few numbers (log-sites.ts): lines are counted into their site
 * as they come (the common dropwatch line is read from bytes without a
 * string). A site's resolution is kept only when each line is printed (text
 * or JSON entries), and then the first HOLD_LINES lines wait for the slide to
 * be decided; --summary decides over every line and resolves each site once,
 * for the report.
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
import { hexDigits, LogSites } from './log-sites.js';
import { symbolizeReport, type Report } from './symbolize-report.js';
import { annotationOf, judge, Resolver, type Judgement, type Resolution } from './judge.js';

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

/** fast lines queued before they are counted, and the int32s kept of each (countFast) */
const BATCH = 4096;
const BATCHED = 9;

/** a site id, or NONE */
type Site = number;
const NONE = -1;

interface Held {
  no: number;
  text: string;
  site: Site;
  count: number;
  reason: string | null;
  kind: LogKind | null;
}

const NOTHING: Emitted[] = [];

/** buf[start, end) is off as off.toString(16) prints it (lower case, no leading zero): no text to keep. */
function plainHex(buf: Buffer, start: number, end: number, off: number): boolean {
  if (end - start !== hexDigits(off)) return false;
  for (let p = start; p < end; p++) if (buf[p] >= 65 && buf[p] <= 70) return false;
  return true;
}

export class Symbolizer {
  private lineNo = 0;
  private held: Held[] | null = [];
  private decided = false;
  private judgement: Judgement | null = null;
  private resolver: Resolver | null = null;
  private readonly sites = new LogSites();
  /** per site, when each line is printed: its resolution and the text appended, made on its first print */
  private readonly printed: Array<{ res: Resolution; annotation: string }> = [];
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
  private frameSite: Site = NONE;
  private frameCount = 0;
  private inPacket: Site = NONE;
  private readonly perLine: boolean;
  /** fast lines not counted yet (--summary only: batchFast) */
  private readonly batch = new Int32Array(BATCH * BATCHED);
  private readonly batchIds = new Int32Array(BATCH);
  private batchText = Buffer.alloc(BATCH * 32);
  private batched = 0;
  private batchBytes = 0;

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
    this.recognised++;
    this.fastLines++;
    if (!this.perLine) {
      this.batchFast(buf, no);
      return NOTHING;
    }
    const s = this.sites.ofHalves(FAST[F.hi], FAST[F.lo], 'dropwatch');
    if (!this.sites.hasName(s) && FAST[F.nameEnd] > FAST[F.nameStart]) {
      this.nameFast(s, buf, FAST[F.nameStart], FAST[F.nameEnd], FAST[F.offStart], FAST[F.offEnd], FAST[F.offset]);
    }
    const n = FAST[F.count];
    this.sites.count(s, n, no);
    this.frameSite = s;
    this.frameCount = 0;
    this.inPacket = NONE;
    return this.output1(no, buf.toString('utf8', ls, le), s, n, null, 'dropwatch');
  }

  /** Names a site after its first named line: no text kept when the offset is printed as toString(16) would. */
  private nameFast(s: Site, buf: Buffer, ns: number, ne: number, os: number, oe: number, off: number): void {
    if (plainHex(buf, os, oe, off)) return this.sites.setNameHex(s, buf, ns, ne, off);
    const name = buf.toString('latin1', ns, ne);
    this.sites.setName(s, name, off, `${name}+${buf.toString('latin1', os, oe)}`);
  }

  /**
   * Queues the fast line in FAST for countFast(), its name and offset copied (the caller may
   * reuse buf once this returns).
   */
  private batchFast(buf: Buffer, no: number): void {
    const ns = FAST[F.nameStart];
    const len = FAST[F.offEnd] - ns;
    if (this.batched === BATCH || this.batchBytes + len > this.batchText.length) this.countFast();
    if (len > this.batchText.length) this.batchText = Buffer.alloc(len * 2);
    const at = this.batchBytes;
    const text = this.batchText;
    for (let i = 0; i < len; i++) text[at + i] = buf[ns + i];
    this.batchBytes += len;
    const b = this.batch;
    const k = this.batched++ * BATCHED;
    b[k] = FAST[F.hi];
    b[k + 1] = FAST[F.lo];
    b[k + 2] = FAST[F.count];
    b[k + 3] = no;
    b[k + 4] = at;
    b[k + 5] = FAST[F.nameEnd] - ns;
    b[k + 6] = FAST[F.offStart] - ns;
    b[k + 7] = len;
    b[k + 8] = FAST[F.offset];
  }

  /**
   * Counts the queued fast lines into their sites, one pass at a time: a big log's sites are
   * scattered over megabytes, and a pass that only finds sites (or only counts) lets the
   * processor wait for many of those reads at once, where a line's whole work between two of
   * them would make it wait for each in turn.
   */
  private countFast(): void {
    const n = this.batched;
    if (!n) return;
    const b = this.batch;
    const ids = this.batchIds;
    const sites = this.sites;
    for (let i = 0, k = 0; i < n; i++, k += BATCHED) ids[i] = sites.ofHalves(b[k], b[k + 1], 'dropwatch');
    for (let i = 0, k = 0; i < n; i++, k += BATCHED) {
      if (b[k + 5] === 0 || sites.hasName(ids[i])) continue;
      const at = b[k + 4];
      this.nameFast(ids[i], this.batchText, at, at + b[k + 5], at + b[k + 6], at + b[k + 7], b[k + 8]);
    }
    for (let i = 0, k = 0; i < n; i++, k += BATCHED) sites.count(ids[i], b[k + 2], b[k + 3]);
    this.frameSite = ids[n - 1];
    this.frameCount = 0;
    this.inPacket = NONE;
    this.batched = 0;
    this.batchBytes = 0;
  }

  /** Ends the input: decides what is still open and emits what was held back. */
  end(): Emitted[] {
    if (!this.decided) this.decide();
    return this.release();
  }

  private take(no: number, text: string, p: ReturnType<typeof parseLine>): Emitted[] {
    if (this.fastLines) this.settleFast();
    let site: Site = NONE;
    let count = 0;
    let reason: string | null = null;
    let kind: LogKind | null = null;
    if (!p) {
      this.unrecognised++;
      this.frameSite = NONE;
    } else if (p.kind === 'chatter') {
      this.ignored++;
      if (text.trim() === '') this.inPacket = NONE;
      if (!p.stack) this.frameSite = NONE;
    } else if (p.kind === 'dropwatch-field') {
      if (this.inPacket !== NONE) {
        this.recognised++;
        if (p.field === 'drop reason' && p.value) this.sites.addReason(this.inPacket, p.value, 1);
      } else this.unrecognised++;
    } else if (p.kind === 'frame') {
      this.frame(p.name);
    } else if (p.kind === 'address' && (this.frameSite !== NONE || this.otherForms)) {
      // an address after a drop line is its stack; in a log of other drop lines it is context
      if (this.frameSite !== NONE) this.frame(null);
      else this.ignored++;
    } else {
      const d = p as LogDrop;
      site = this.sites.of(d);
      count = d.count;
      reason = d.reason;
      kind = d.kind;
      this.count(site, no, count, reason, d.kind);
      this.frameSite = d.kind === 'address' ? NONE : site;
      this.frameCount = 0;
      this.inPacket = d.kind === 'dropwatch-packet' ? site : NONE;
    }
    if (!this.perLine) return NOTHING;
    return this.output1(no, text, site, count, reason, kind);
  }

  /** A line to print: held while the slide is undecided, else annotated now. */
  private output1(no: number, text: string, site: Site, count: number, reason: string | null, kind: LogKind | null): Emitted[] {
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
    if (s === NONE) {
      this.ignored++;
      return;
    }
    this.recognised++;
    // the first frame that is not a free function (nor the drop site itself) is who dropped it
    if (name && this.frameCount >= 0 && !isGenericFree(name) && name !== this.sites.name(s)) {
      this.sites.addCaller(s, name);
      this.frameCount = -1;
    } else if (this.frameCount >= 0) this.frameCount++;
  }

  private count(s: Site, no: number, n: number, reason: string | null, kind: LogKind): void {
    this.recognised++;
    this.formats[kind] = (this.formats[kind] ?? 0) + 1;
    if (kind !== 'address') this.otherForms = true;
    this.sites.count(s, n, no);
    if (reason) this.sites.addReason(s, reason, n);
  }

  /** Folds the fast path's tally into the per-kind counts. */
  private settleFast(): void {
    if (!this.fastLines) return;
    this.countFast();
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
    this.judgement = judge(this.sites, this.table);
    this.resolver = new Resolver(this.table, this.judgement);
    const warn = [...this.judgement.warnings];
    const v = this.judgement.verdict;
    if (v === 'unchecked' || v === 'one name') {
      let addressed = 0;
      let wild = 0;
      for (let s = 0; s < this.sites.size; s++) {
        if (!this.sites.addressOnly(s)) continue;
        addressed += this.sites.lines(s);
        if (this.resolver.resolve(this.sites.site(s)).unresolved) wild += this.sites.lines(s);
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

  private emitted(no: number, text: string, site: Site, count: number, reason: string | null, kind: LogKind | null): Emitted {
    const line = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (site === NONE || (this.sites.isBare(site) && !this.bareAsDrops)) return { text: this.output.text ? line : '', entry: null };
    const { res: r, annotation } = (this.printed[site] ??= this.printedAs(site));
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
          hardware: this.sites.isHardware(site),
          logSymbol: this.sites.text(site),
          logNameWrong: r.logNameWrong,
          unresolved: r.unresolved,
        }
      : null;
    return { text: this.output.text ? `${line}  => ${annotation}` : '', entry };
  }

  private printedAs(site: Site): { res: Resolution; annotation: string } {
    const s = this.sites.site(site);
    const res = this.resolver!.resolve(s);
    return { res, annotation: annotationOf(res, s) };
  }

  /** The tables; limit bounds the rows of each (the totals count all). */
  report(limit = Infinity): Report {
    if (!this.decided) this.decide();
    this.settleFast();
    return symbolizeReport(this.sites, this.resolver!, this.judgement!, {
      lines: this.lineNo,
      recognised: this.recognised,
      ignored: this.ignored,
      unrecognised: this.unrecognised,
      formats: this.formats,
      warnings: this.warnings,
      bareAsDrops: this.bareAsDrops,
    }, limit);
  }
}
