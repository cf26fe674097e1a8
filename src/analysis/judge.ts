/**
 * Is this symbol table the log's kernel? Every drop site of the log that
 * printed both a name and an address votes for the slide (log address −
 * table address) that would make the two agree; distinct functions, not
 * lines, are counted, since lines of one function agree with any table.
 * Then each site is resolved by what the verdict allows: a table shown to
 * match renames and flags; one that is not shown to match keeps the log's
 * names and says so.
 */
import { MAX_FUNCTION_SIZE, type Resolved, type SymbolTable } from '../model/kallsyms.js';
import type { LogSite, LogSites } from './log-sites.js';

/**
 * `matches` (distinct functions agree on one slide), `one name` (a single
 * function to check: not enough), `mismatch` (they disagree), `unchecked`
 * (no line has both a name and an address).
 */
export type SnapshotVerdict = 'matches' | 'one name' | 'mismatch' | 'unchecked';

export interface Resolution {
  address: string | null;
  /** `function+0x<offset>` whenever both are given (the report groups on that); else as printed, or the address */
  symbol: string | null;
  function: string | null;
  offset: number | null;
  module: string | null;
  logNameWrong: boolean;
  unresolved: string | null;
}

export interface Judgement {
  verdict: SnapshotVerdict;
  /** log − table, subtracted from every core address */
  slide: bigint;
  /** per module, its own slide (modules load at addresses of their own) */
  moduleSlides: Map<string, bigint>;
  agreement: { agree: number; of: number };
  slideSource: string;
  warnings: string[];
}

export function hexSigned(v: bigint): string {
  return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

function vote(m: Map<bigint, Set<string>>, slide: bigint, name: string): void {
  let s = m.get(slide);
  if (!s) m.set(slide, (s = new Set()));
  s.add(name);
}

/** The slide most distinct names voted for, and how many (0n, 0 when none). */
function top(m: Map<bigint, Set<string>>): [bigint, number] {
  let best = 0n;
  let n = 0;
  for (const [slide, names] of m) if (names.size > n || (names.size === n && slide === 0n)) [best, n] = [slide, names.size];
  return [best, n];
}

/** A line whose name is at an offset no function has (old dropwatch misnamed module addresses so): its address is the evidence. */
export function misnamed(s: LogSite): boolean {
  return s.address !== null && s.name !== null && !s.hardware && misnamedOffset(s.offset);
}

/** misnamed() of a named site with an address, by its offset (null/NaN: none). */
function misnamedOffset(offset: number | null): boolean {
  return offset !== null && offset > MAX_FUNCTION_SIZE;
}

export function judge(sites: LogSites, table: SymbolTable): Judgement {
  const core = new Map<bigint, Set<string>>();
  const coreVoters = new Set<string>();
  const mods = new Map<string, Map<bigint, Set<string>>>();
  let anyMisnamed = false;
  let bare = false;
  // a function's symbols, once per name: a big log names each function at a hundred offsets
  const named = new Map<string, Candidate[]>();
  // by numbers: a quarter million sites, and a BigInt made only for a slide not voted yet
  for (let id = 0; id < sites.size; id++) {
    if (!sites.hasAddress(id)) continue;
    const name = sites.name(id);
    if (name === null) {
      bare = true;
      continue;
    }
    const offset = sites.offsetOf(id);
    if (Number.isNaN(offset) || sites.isHardware(id)) continue;
    // an offset no function has is a misnamed line (old dropwatch): no evidence
    if (misnamedOffset(offset)) {
      anyMisnamed = true;
      continue;
    }
    let symbols = named.get(name);
    if (!symbols) named.set(name, (symbols = table.symbolsNamed(name).map((b) => ({ ...b, hi: Number(b.start >> 32n), lo: Number(b.start & 0xffffffffn), last: NaN }))));
    const hi = sites.hiOf(id);
    const lo = sites.loOf(id);
    for (const b of symbols) {
      // the slide, log − (start + offset), exact as a double while the high halves are near
      // (a far one is never equal to a near one: the last is NaN after it)
      const dh = hi - b.hi;
      const near = dh > -0x100000 && dh < 0x100000;
      const d = dh * 0x100000000 + (lo - b.lo - offset);
      // a vote is a name in a set: the same again changes nothing (a function's offsets mostly agree)
      if (d === b.last) continue;
      b.last = near ? d : NaN;
      const slide = near ? BigInt(d) : sites.address(id) - (b.start + BigInt(offset));
      if (b.module === null) {
        coreVoters.add(name);
        vote(core, slide, name);
      } else {
        let m = mods.get(b.module);
        if (!m) mods.set(b.module, (m = new Map()));
        vote(m, slide, name);
      }
    }
  }
  const [best, agree] = top(core);
  const of = coreVoters.size;
  const j: Judgement = { verdict: 'unchecked', slide: 0n, moduleSlides: new Map(), agreement: { agree, of }, slideSource: 'none needed', warnings: [] };
  for (const [mod, votes] of mods) j.moduleSlides.set(mod, top(votes)[0]);
  if (of === 0) {
    if (anyMisnamed)
      j.warnings.push(
        "nothing vouches for this kallsyms: no line of the log names a function with its address (a name at an offset no function has, old dropwatch's __brk_limit+0x…, is no evidence); addresses are resolved by the table as it is, unverified",
      );
    return j;
  }
  if (agree >= 2 && agree * 4 >= of * 3) {
    j.verdict = 'matches';
    j.slide = best;
    j.slideSource = `${agree} of ${of} named functions agree`;
    if (best !== 0n) j.warnings.push(`the kallsyms is from another boot than the log (KASLR): every log address is this table's ${hexSigned(best)} (the slide, log − table), subtracted before lookup (${j.slideSource})`);
  } else if (of === 1) {
    const only = [...coreVoters][0];
    j.verdict = 'one name';
    j.slide = best;
    j.slideSource = `one named function (${only}): not enough to check the table`;
    j.warnings.push(
      `only one function of the log (${only}) prints both a name and an address: this kallsyms cannot be checked against the log's kernel; the log's names are kept${bare ? `, and addresses alone are resolved with that line's slide (${hexSigned(best)}), unverified` : ''}`,
    );
  } else {
    j.verdict = 'mismatch';
    j.slideSource = `${agree} of ${of} named functions agree: no slide`;
    j.warnings.push(
      `THIS KALLSYMS IS NOT THE LOG'S KERNEL: of ${of} functions the log names with an address, ${agree === 1 ? 'no two' : `only ${agree}`} agree on where the kernel was; the log's own names are kept and ranked, nothing is renamed, and addresses without a name are left unresolved`,
    );
  }
  return j;
}

/** A symbol a name may be, and the slide it last voted for (as a number; NaN: none yet). */
interface Candidate {
  start: bigint;
  module: string | null;
  hi: number;
  lo: number;
  last: number;
}

/** Resolves sites as a judgement allows. */
export class Resolver {
  /** the slide as halves: high signed (floor), low unsigned */
  private readonly slideHi: number;
  private readonly slideLo: number;

  constructor(
    private readonly table: SymbolTable,
    private readonly j: Judgement,
  ) {
    this.slideHi = Number(j.slide >> 32n);
    this.slideLo = Number(j.slide & 0xffffffffn);
  }

  /** set by locate(): the offset into the symbol it returned */
  located = 0;

  /**
   * The table symbol a site resolves to, found by numbers, when resolve() would give just that:
   * the symbol's name (which the log printed, if it printed one) at an offset, nothing wrong,
   * nothing unresolved, its symbol function+0xoffset. -1 for any other site, left to resolve().
   * A report of a quarter million locations makes no string for the ones it does not print.
   */
  locate(sites: LogSites, id: number): number {
    const verdict = this.j.verdict;
    // (a site with an address is never hardware nor hashed: those lines print none)
    if (verdict === 'mismatch' || !sites.hasAddress(id)) return -1;
    const name = sites.name(id);
    // a named site: its name, unless the name is wrong or nothing checks the table against it
    if (name !== null && (verdict !== 'matches' || misnamedOffset(sites.offsetOf(id)))) return -1;
    // the address less the slide, when it is a 64-bit address: else lookup() sees below or past every symbol
    let lo = sites.loOf(id) - this.slideLo;
    const borrow = lo < 0 ? 1 : 0;
    lo += borrow * 0x100000000;
    const hi = sites.hiOf(id) - this.slideHi - borrow;
    if (hi < 0 || hi > 0xffffffff) return -1;
    const i = this.table.plausibleAt(hi, lo);
    // a module's symbol under a slide: the module's own slide may place it elsewhere (lookup())
    if (i < 0 || (this.j.slide !== 0n && !this.table.isCore(i))) return -1;
    // an alias of the symbol, or a wrong name, is for resolve() to tell apart
    if (name !== null && name !== this.table.nameOf(i)) return -1;
    this.located = this.table.offsetIn(i, hi, lo);
    return i;
  }

  /** The name of a symbol locate() returned. */
  symbolName(i: number): string {
    return this.table.nameOf(i);
  }

  /** How many symbols locate() can return (its results are below this). */
  get symbols(): number {
    return this.table.size;
  }

  /** The table's answer for an address, after the slide (a module's own, when it resolves there). */
  private lookup(addr: bigint): Resolved | null {
    const r = this.table.lookup(addr - this.j.slide);
    if (r && !r.implausible && (r.module === null || this.j.slide === 0n)) return r;
    for (const [mod, s] of this.j.moduleSlides) {
      const m = this.table.lookup(addr - s);
      if (m && !m.implausible && m.module === mod) return m;
    }
    return r;
  }

  resolve(s: LogSite): Resolution {
    const res: Resolution = { address: null, symbol: null, function: s.name, offset: s.offset, module: s.module, logNameWrong: false, unresolved: null };
    this.fill(res, s);
    // where the table gave no symbol: the log's, as printed (made only then: most sites resolve)
    res.symbol ??= s.name === null ? s.text : s.offset === null ? s.name : `${s.name}+0x${s.offset.toString(16)}`;
    return res;
  }

  private fill(res: Resolution, s: LogSite): void {
    const verdict = this.j.verdict;
    if (s.hardware) {
      res.module = 'hardware';
      return;
    }
    if (s.hashed) {
      res.unresolved = 'hashed pointer: the kernel printed %p, which no symbol table can resolve';
      return;
    }
    const trusted = verdict === 'matches';
    // a name no function can have is no name: unless the table is shown not to be the log's,
    // the address decides (unverified where nothing vouches for the table)
    const byAddress = misnamed(s) && verdict !== 'mismatch';
    const named = s.name !== null && !byAddress;
    if (s.address !== null) {
      if (verdict === 'mismatch' && !named) {
        res.symbol = `0x${s.address.toString(16)}`;
        res.unresolved = "this kallsyms is not the log's kernel";
        return;
      }
      if (named && !trusted) {
        // keep what the log printed: nothing checks the table against it
        res.address = `0x${s.address.toString(16)}`;
        if (verdict !== 'mismatch' && this.table.addressOf(s.name!) === null) res.unresolved = 'name not in this kallsyms (kept as printed)';
        return;
      }
      const addr = s.address - this.j.slide;
      res.address = `0x${addr.toString(16)}`;
      const r = this.lookup(s.address);
      if (!r || r.implausible) {
        if (named) res.unresolved = "address not in this kallsyms (the log's name kept)";
        else {
          res.symbol = res.address;
          res.unresolved = r ? `past the end of ${r.name}: not in this kallsyms` : 'below every symbol in this kallsyms';
        }
        return;
      }
      res.function = r.name;
      res.offset = r.offset;
      res.module = r.module;
      if (byAddress) {
        res.logNameWrong = trusted;
        if (!trusted) res.unresolved = `the log's name is at an offset no function has: resolved by address, unverified`;
      } else if (named && trusted && !this.table.namesAt(r).includes(s.name!)) {
        res.logNameWrong = true;
      } else if (named) {
        // the log was right: say it its way (an alias it printed)
        res.function = s.name;
      }
      res.symbol = `${res.function}+0x${r.offset.toString(16)}`;
      return;
    }
    if (named) {
      // perf and ftrace resolved it already; check the name exists here
      const base = verdict === 'mismatch' ? null : this.table.addressOf(s.name!);
      if (base === null) {
        if (verdict !== 'mismatch') res.unresolved = 'name not in this kallsyms (kept as printed)';
      } else {
        const addr = base + BigInt(s.offset ?? 0);
        res.address = `0x${addr.toString(16)}`;
        res.module = this.table.lookup(addr)?.module ?? s.module;
      }
      return;
    }
    res.unresolved = 'no address or name on this line';
  }
}

/** The text appended to a recognised line; the log's own text quoted as it was. */
export function annotationOf(r: Resolution, s: LogSite): string {
  if (s.hardware) return `${r.symbol} [hardware]`;
  if (r.unresolved && !r.function) return `unresolved: ${r.unresolved}`;
  let out = r.symbol ?? '?';
  if (r.module) out += ` [${r.module}]`;
  if (r.logNameWrong) out += ` (log said ${s.text}: wrong)`;
  if (r.unresolved) out += ` (${r.unresolved})`;
  return out;
}
