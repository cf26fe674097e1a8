/**
 * Offline symbolization of drop logs against a symbol table taken
 * elsewhere. Streams: lines go in one at a time and come out annotated;
 * only the first lines are held back until the KASLR slide is known.
 * Always re-resolves printed addresses: a name in the log is evidence,
 * not truth (dropwatch before 1.5.5 named module addresses after whatever
 * core symbol preceded them in an unsorted /proc/kallsyms).
 */
import { parseLine, type LogDrop, type LogKind } from '../formats/droplog.js';
import { type Resolved, type SymbolTable } from '../model/kallsyms.js';
import { functionHint, hintId, reasonHint } from '../model/hints.js';

/** One recognised drop line, resolved. */
export interface Entry {
  line: number;
  kind: LogKind;
  count: number;
  /** the address used for the lookup (after the slide), hex, or null */
  address: string | null;
  symbol: string | null;
  function: string | null;
  offset: number | null;
  module: string | null;
  reason: string | null;
  hardware: boolean;
  /** what the log printed, when it printed a name */
  logSymbol: string | null;
  /** the log's name disagrees with the table's for the same address */
  logNameWrong: boolean;
  /** why this line could not be resolved, or null */
  unresolved: string | null;
}

export interface Row {
  key: string;
  count: number;
  share: number;
  module: string | null;
  reasons: string[];
  firstLine: number;
  lastLine: number;
  address?: string | null;
  /** what these drops mean (src/model/hints.ts id), or null */
  hint: string | null;
}

export interface Report {
  lines: number;
  recognised: number;
  unrecognised: number;
  drops: number;
  formats: Partial<Record<LogKind, number>>;
  /** address difference log − table, applied to every address; "0x0" when none */
  slide: string;
  slideSource: string;
  warnings: string[];
  wrongNames: number;
  unresolved: number;
  byFunction: Row[];
  byLocation: Row[];
}

export interface Emitted {
  text: string;
  entry: Entry | null;
}


/** How many lines to hold back while looking for a line that fixes the KASLR slide. */
export const SLIDE_PROBE_LINES = 5000;

/** Distinct lines remembered with their resolution: drop logs repeat the same few lines. */
const TEMPLATE_CACHE = 100_000;

/** What to produce per line: annotated text, entries (for JSON), or nothing (tables only). */
export interface SymbolizeOutput {
  text: boolean;
  entries: boolean;
}

/** A distinct line, parsed and resolved once. */
interface Template {
  /** the line as emitted in text mode: itself, plus the annotation when recognised */
  annotated: string;
  parsed: ReturnType<typeof parseLine>;
  entry: Entry | null;
  fn: Acc | null;
  loc: Acc | null;
}

const NOTHING: Emitted[] = [];

export class Symbolizer {
  private lineNo = 0;
  private pending: Array<{ no: number; text: string; parsed: ReturnType<typeof parseLine> }> = [];
  private slide: bigint | null = null;
  private slideSource = 'none needed';
  private readonly cache = new Map<bigint, Resolved | null>();
  private readonly byFunction = new Map<string, Acc>();
  private readonly byLocation = new Map<string, Acc>();
  private readonly formats: Partial<Record<LogKind, number>> = {};
  private readonly warnings: string[] = [];
  private recognised = 0;
  private unrecognised = 0;
  private drops = 0;
  private wrongNames = 0;
  private unresolved = 0;
  private implausible = 0;
  private addressed = 0;
  private inPacket: LiveEntry | null = null;
  private readonly templates = new Map<string, Template>();

  constructor(
    private readonly table: SymbolTable,
    private readonly output: SymbolizeOutput = { text: true, entries: true },
  ) {}

  /** Feeds one line (without its newline); returns what can be emitted now. */
  push(text: string): Emitted[] {
    const no = ++this.lineNo;
    if (this.slide === null) {
      const parsed = parseLine(text);
      this.pending.push({ no, text, parsed });
      const fixed = parsed && parsed.kind !== 'dropwatch-field' ? this.slideFrom(parsed) : null;
      if (fixed !== null || this.pending.length >= SLIDE_PROBE_LINES) {
        this.decideSlide(fixed);
        return this.flushPending();
      }
      return [];
    }
    const e = this.handle(no, text, undefined);
    return e ? [e] : NOTHING;
  }

  /** Ends the input: emits what was held back. */
  end(): Emitted[] {
    if (this.slide === null) {
      this.decideSlide(null);
      return this.flushPending();
    }
    return [];
  }

  private flushPending(): Emitted[] {
    const out: Emitted[] = [];
    for (const p of this.pending) {
      const e = this.handle(p.no, p.text, p.parsed);
      if (e) out.push(e);
    }
    this.pending = [];
    return out;
  }

  /** The difference log − table for a line that printed both a name and an address. */
  private slideFrom(d: LogDrop): bigint | null {
    if (d.address === null || d.name === null || d.offset === null) return null;
    const base = this.table.addressOf(d.name);
    if (base === null) return null; // a bogus (old dropwatch) or module name: no evidence
    return d.address - (base + BigInt(d.offset));
  }

  private decideSlide(found: bigint | null): void {
    if (found !== null) {
      this.slide = found;
      if (found !== 0n) {
        this.slideSource = 'computed from a line with both a name and an address';
        this.warnings.push(
          `the kallsyms is from another boot than the log (KASLR): every address was shifted by ${hexSigned(-found)} before lookup (${this.slideSource})`,
        );
      }
      return;
    }
    this.slide = 0n;
  }

  private resolve(addr: bigint): Resolved | null {
    let r = this.cache.get(addr);
    if (r === undefined) {
      r = this.table.lookup(addr);
      this.cache.set(addr, r);
    }
    return r;
  }

  private emit(text: string, entry: Entry | null): Emitted | null {
    if (!this.output.text && !this.output.entries) return null;
    return { text, entry };
  }

  /** Parses and resolves a line once; repeats of it cost a map lookup. */
  private template(text: string, parsed?: ReturnType<typeof parseLine>): Template {
    let t = this.templates.get(text);
    if (t) return t;
    const p = parsed === undefined ? parseLine(text) : parsed;
    const line = text.endsWith('\r') ? text.slice(0, -1) : text;
    t = { annotated: line, parsed: p, entry: null, fn: null, loc: null };
    if (p && p.kind !== 'dropwatch-field') {
      const e = this.entryFor(0, p);
      t.entry = e;
      t.annotated = `${line}  => ${annotation(e)}`;
      t.fn = this.acc(this.byFunction, e.function ?? e.symbol ?? '(unresolved)', e);
      t.loc = this.acc(this.byLocation, e.symbol ?? '(unresolved)', e);
    }
    if (this.templates.size < TEMPLATE_CACHE) this.templates.set(text, t);
    return t;
  }

  private acc(map: Map<string, Acc>, key: string, e: Entry): Acc {
    let a = map.get(key);
    if (!a) {
      a = { count: 0, module: e.module, reasons: new Map(), first: 0, last: 0, address: e.address };
      map.set(key, a);
    }
    return a;
  }

  private handle(no: number, text: string, parsed: ReturnType<typeof parseLine> | undefined): Emitted | null {
    return this.apply(no, this.template(text, parsed));
  }

  private apply(no: number, t: Template): Emitted | null {
    const p = t.parsed;
    const text = t.annotated;
    if (!p) {
      if (text.trim() === '') this.inPacket = null;
      this.unrecognised++;
      return this.emit(text, null);
    }
    if (p.kind === 'dropwatch-field') {
      // only meaningful inside a packet-mode block
      if (!this.inPacket) {
        this.unrecognised++;
        return this.emit(text, null);
      }
      this.recognised++;
      if (p.field === 'drop reason' && p.value) {
        this.inPacket.reason = p.value;
        addReason(this.inPacket.fnAcc!, p.value, this.inPacket.count);
        addReason(this.inPacket.locAcc!, p.value, this.inPacket.count);
      }
      return this.emit(text, null);
    }
    const e = t.entry!;
    this.recognised++;
    this.formats[e.kind] = (this.formats[e.kind] ?? 0) + 1;
    this.drops += e.count;
    if (e.logNameWrong) this.wrongNames++;
    if (e.unresolved) this.unresolved++;
    if (e.address !== null && p.address !== null) {
      this.addressed++;
      if (e.unresolved) this.implausible++;
    }
    for (const a of [t.fn!, t.loc!]) {
      a.count += e.count;
      if (!a.first) a.first = no;
      a.last = no;
      if (e.reason) addReason(a, e.reason, e.count);
    }
    const wantEntry = this.output.entries || e.kind === 'dropwatch-packet';
    const entry = wantEntry ? { ...e, line: no, fnAcc: t.fn, locAcc: t.loc } : null;
    this.inPacket = e.kind === 'dropwatch-packet' ? entry : null;
    if (!this.output.text && !this.output.entries) return null;
    return { text: this.output.text ? text : '', entry: this.output.entries ? strip(entry!) : null };
  }

  private entryFor(no: number, d: LogDrop): Entry {
    const logSymbol = d.name === null ? null : d.offset === null || d.hardware ? d.name : `${d.name}+0x${d.offset.toString(16)}`;
    const e: Entry = {
      line: no,
      kind: d.kind,
      count: d.count,
      address: null,
      symbol: null,
      function: null,
      offset: null,
      module: d.module,
      reason: d.reason,
      hardware: d.hardware,
      logSymbol,
      logNameWrong: false,
      unresolved: null,
    };
    if (d.hardware) {
      e.symbol = e.function = d.name;
      e.module = 'hardware';
      return e;
    }
    if (d.hashed) {
      e.unresolved = 'hashed pointer: the kernel printed %p, which no symbol table can resolve';
      return e;
    }
    if (d.address !== null) {
      const addr = d.address - (this.slide ?? 0n);
      e.address = `0x${addr.toString(16)}`;
      const r = this.resolve(addr);
      if (!r || r.implausible) {
        e.unresolved = r ? `past the end of ${r.name}: not in this kallsyms` : 'below every symbol in this kallsyms';
        e.symbol = e.address;
        return e;
      }
      e.function = r.name;
      e.offset = r.offset;
      e.module = r.module;
      e.symbol = `${r.name}+0x${r.offset.toString(16)}`;
      if (d.name !== null && (d.name !== r.name || (d.offset !== null && d.offset !== r.offset))) e.logNameWrong = true;
      return e;
    }
    if (d.name !== null) {
      // perf and ftrace resolved it already; check the name exists here
      const base = this.table.addressOf(d.name);
      e.function = d.name;
      e.offset = d.offset;
      e.symbol = logSymbol;
      if (base === null) {
        e.unresolved = 'name not in this kallsyms (kept as printed)';
      } else {
        const addr = base + BigInt(d.offset ?? 0);
        e.address = `0x${addr.toString(16)}`;
        e.module = this.resolve(addr)?.module ?? null;
      }
      return e;
    }
    e.unresolved = 'no address or name on this line';
    return e;
  }

  report(): Report {
    if (this.addressed >= 3 && this.implausible / this.addressed > 0.5) {
      this.warnings.push(
        `${this.implausible} of ${this.addressed} addresses fall outside this kallsyms' functions: it is probably from another machine or boot, and no line had both a name and an address to correct for KASLR; results are unreliable`,
      );
    }
    if (this.wrongNames) {
      this.warnings.push(
        `${this.wrongNames} line(s) printed a name that does not match the address (dropwatch before 1.5.5 misnamed module addresses); the re-resolved name is shown`,
      );
    }
    const rows = (m: Map<string, Acc>, withAddress: boolean): Row[] =>
      [...m.entries()]
        .map(([key, a]) => ({
          key,
          count: a.count,
          share: this.drops ? a.count / this.drops : 0,
          module: a.module,
          reasons: [...a.reasons.entries()].sort((x, y) => y[1] - x[1]).map(([r]) => r),
          firstLine: a.first,
          lastLine: a.last,
          ...(withAddress ? { address: a.address } : {}),
          hint: hintId(topReason(a), key.startsWith('0x') || key.startsWith('(') ? null : key.replace(/\+0x[0-9a-f]+$/, '')),
        }))
        .sort((x, y) => y.count - x.count || x.key.localeCompare(y.key));
    return {
      lines: this.lineNo,
      recognised: this.recognised,
      unrecognised: this.unrecognised,
      drops: this.drops,
      formats: { ...this.formats },
      slide: hexSigned(this.slide ?? 0n),
      slideSource: this.slideSource,
      warnings: [...this.warnings],
      wrongNames: this.wrongNames,
      unresolved: this.unresolved,
      byFunction: rows(this.byFunction, false),
      byLocation: rows(this.byLocation, true),
    };
  }
}

interface Acc {
  count: number;
  module: string | null;
  reasons: Map<string, number>;
  first: number;
  last: number;
  address: string | null;
}

/** An entry while its packet-mode block may still add a reason. */
type LiveEntry = Entry & { fnAcc?: Acc | null; locAcc?: Acc | null };

function addReason(a: Acc, reason: string, n: number): void {
  a.reasons.set(reason, (a.reasons.get(reason) ?? 0) + n);
}

function strip(e: LiveEntry): Entry {
  const { fnAcc: _f, locAcc: _l, ...rest } = e;
  return rest;
}

function topReason(a: Acc): string | null {
  let best: string | null = null;
  let n = 0;
  for (const [r, c] of a.reasons) if (c > n) [best, n] = [r, c];
  return best;
}

function hexSigned(v: bigint): string {
  return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

/** The text appended to a recognised line. */
export function annotation(e: Entry): string {
  if (e.hardware) return `${e.symbol} [hardware]`;
  if (e.unresolved && !e.function) return `unresolved: ${e.unresolved}`;
  let s = e.symbol ?? '?';
  if (e.module) s += ` [${e.module}]`;
  if (e.logNameWrong) s += ` (log said ${e.logSymbol}: wrong)`;
  if (e.unresolved) s += ` (${e.unresolved})`;
  return s;
}

/** The ranked tables as text. */
export function formatReport(r: Report, top = 20): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(6);
  const lines: string[] = [];
  const fmts = Object.entries(r.formats)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  lines.push(`${r.drops} drops on ${r.recognised} recognised lines (${fmts || 'none'}), ${r.unrecognised} unrecognised of ${r.lines}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  const table = (title: string, rows: Row[], withAddress: boolean) => {
    lines.push('', title);
    lines.push(`  ${'COUNT'.padStart(8)} ${'SHARE'.padStart(6)}  ${(withAddress ? 'LOCATION' : 'FUNCTION').padEnd(36)} ${withAddress ? 'ADDRESS'.padEnd(18) + ' ' : ''}${'REASONS'.padEnd(20)} LINES`);
    for (const row of rows.slice(0, top)) {
      const name = row.module ? `${row.key} [${row.module}]` : row.key;
      const addr = withAddress ? `${(row.address ?? '-').padEnd(18)} ` : '';
      lines.push(
        `  ${String(row.count).padStart(8)} ${pct(row.share)}  ${name.padEnd(36)} ${addr}${(row.reasons.join(',') || '-').padEnd(20)} ${row.firstLine}-${row.lastLine}`,
      );
    }
    if (rows.length > top) lines.push(`  … ${rows.length - top} more`);
  };
  table('By function:', r.byFunction, false);
  table('By location:', r.byLocation, true);
  const hinted = r.byFunction.slice(0, 5).filter((row) => row.hint);
  if (hinted.length) {
    lines.push('', 'What they mean:');
    for (const row of hinted) {
      const [kind, name] = row.hint!.split('/');
      const h = kind === 'reason' ? reasonHint(name) : functionHint(name);
      if (h) lines.push(`  ${row.key}: ${h.title}`);
    }
  }
  return lines.join('\n');
}
