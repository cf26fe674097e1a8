/**
 * Kernel symbol tables: /proc/kallsyms, System.map and `nm` output.
 * Pure: parse text, then look addresses up by binary search. Addresses are
 * kept as two Uint32Arrays (high and low halves) because kernel addresses
 * do not fit a double and BigInt comparisons are slow in a hot loop.
 */

/** Thrown when a table cannot give right answers (kptr_restrict zeros, nothing parsed). */
export class KallsymsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KallsymsError';
  }
}

/** A resolved address. */
export interface Resolved {
  /** function name as in the table, suffixes such as .isra.0 or .cold kept */
  name: string;
  /** address minus the symbol's start */
  offset: number;
  /** module in brackets in kallsyms ("bpf" for BPF programs), null for the core kernel */
  module: string | null;
  start: bigint;
  /** distance to the next symbol (an upper bound of the function's size), null for the last */
  size: number | null;
  /**
   * The address lies past any plausible end of this symbol (beyond the core
   * kernel's text end, or farther from the start than any function is long):
   * the table probably does not belong to the address, and `sym+huge` would
   * be a lie.
   */
  implausible: boolean;
}

/** Anything that resolves addresses: a SymbolTable, or the symbols stored in a recording. */
export interface SymbolLookup {
  lookup(addr: bigint): Resolved | null;
}

/** Farther than this from a symbol's start is not inside that function. */
export const MAX_FUNCTION_SIZE = 0x40000;

const TEXT_TYPES = new Set(['t', 'T', 'w', 'W']);

/** Splits an up-to-16-digit hex address into halves; NaN on bad input. */
function splitHex(hex: string): [number, number] {
  const n = hex.length;
  if (n <= 8) return [0, parseInt(hex, 16)];
  return [parseInt(hex.slice(0, n - 8), 16), parseInt(hex.slice(n - 8), 16)];
}

function toBig(hi: number, lo: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** Rank for choosing among symbols at one address: global beats local beats weak; no __pfx_ padding. */
function rank(type: string, name: string): number {
  if (name.startsWith('__pfx_') || name.startsWith('__cfi_')) return 0;
  return type === 'T' ? 4 : type === 't' ? 3 : type === 'W' ? 2 : 1;
}

export interface ParseStats {
  lines: number;
  symbols: number;
  zeroAddresses: number;
  skipped: number;
}

export class SymbolTable {
  private constructor(
    private readonly hi: Uint32Array,
    private readonly lo: Uint32Array,
    private readonly names: string[],
    private readonly modules: (string | null)[],
    /** end of the core kernel's text (_etext), as [hi, lo], or null */
    private readonly etext: [number, number] | null,
    readonly stats: ParseStats,
  ) {}

  get size(): number {
    return this.names.length;
  }

  /**
   * Parses kallsyms / System.map / nm text. Only symbols that can hold code
   * (types t T w W) are kept: a lookup must never land in data.
   */
  static parse(text: string): SymbolTable {
    type Row = { hi: number; lo: number; name: string; module: string | null; rank: number };
    const rows: Row[] = [];
    const stats: ParseStats = { lines: 0, symbols: 0, zeroAddresses: 0, skipped: 0 };
    let etext: [number, number] | null = null;
    let start = 0;
    const len = text.length;
    while (start < len) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = len;
      let line = text.slice(start, end);
      start = end + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (!line) continue;
      stats.lines++;
      const sp1 = line.indexOf(' ');
      if (sp1 <= 0 || line.length < sp1 + 3 || line[sp1 + 2] !== ' ') {
        stats.skipped++;
        continue;
      }
      const type = line[sp1 + 1];
      const hex = line.slice(0, sp1);
      const [hi, lo] = splitHex(hex);
      if (Number.isNaN(hi) || Number.isNaN(lo)) {
        stats.skipped++;
        continue;
      }
      let rest = line.slice(sp1 + 3);
      let module: string | null = null;
      const br = rest.indexOf('[');
      if (br >= 0) {
        const close = rest.indexOf(']', br);
        module = rest.slice(br + 1, close < 0 ? undefined : close);
        rest = rest.slice(0, br);
      }
      const name = rest.trim();
      if (hi === 0 && lo === 0) {
        stats.zeroAddresses++;
        continue;
      }
      if (name === '_etext' && !module) etext = [hi, lo];
      if (!TEXT_TYPES.has(type)) continue;
      rows.push({ hi, lo, name, module, rank: rank(type, name) });
    }
    if (rows.length === 0) {
      if (stats.zeroAddresses > 0) {
        throw new KallsymsError(
          'every address in this symbol table is zero (kernel.kptr_restrict hides them): ' +
            'read /proc/kallsyms as root, or run `sysctl kernel.kptr_restrict=0` first',
        );
      }
      throw new KallsymsError('no code symbols found: this does not look like /proc/kallsyms, System.map or nm output');
    }
    // modules' sections are not sorted in /proc/kallsyms: sort everything
    rows.sort((a, b) => a.hi - b.hi || a.lo - b.lo || b.rank - a.rank);
    const hiA = new Uint32Array(rows.length);
    const loA = new Uint32Array(rows.length);
    const names: string[] = [];
    const modules: (string | null)[] = [];
    let n = 0;
    for (const r of rows) {
      // one symbol per address: the best-ranked came first
      if (n > 0 && hiA[n - 1] === r.hi && loA[n - 1] === r.lo) continue;
      hiA[n] = r.hi;
      loA[n] = r.lo;
      names.push(r.name);
      modules.push(r.module);
      n++;
    }
    stats.symbols = n;
    return new SymbolTable(hiA.slice(0, n), loA.slice(0, n), names, modules, etext, stats);
  }

  /** Index of the last symbol starting at or below the address, or -1. */
  private index(hi: number, lo: number): number {
    let a = 0;
    let b = this.hi.length - 1;
    let found = -1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      const mh = this.hi[m];
      if (mh < hi || (mh === hi && this.lo[m] <= lo)) {
        found = m;
        a = m + 1;
      } else {
        b = m - 1;
      }
    }
    return found;
  }

  /** Resolves an address, or null when it lies below every symbol. */
  lookup(addr: bigint): Resolved | null {
    const hi = Number(addr >> 32n);
    const lo = Number(addr & 0xffffffffn);
    const i = this.index(hi, lo);
    if (i < 0) return null;
    const dh = hi - this.hi[i];
    const offset = dh * 0x100000000 + (lo - this.lo[i]);
    const module = this.modules[i];
    let implausible = offset > MAX_FUNCTION_SIZE;
    if (!module && this.etext) {
      const [eh, el] = this.etext;
      if (hi > eh || (hi === eh && lo >= el)) implausible = true;
    }
    const size = i + 1 < this.hi.length ? (this.hi[i + 1] - this.hi[i]) * 0x100000000 + (this.lo[i + 1] - this.lo[i]) : null;
    return { name: this.names[i], offset, module, start: toBig(this.hi[i], this.lo[i]), size, implausible };
  }

  private byName: Map<string, number> | null = null;

  /** Address of a code symbol by exact name (the lowest if repeated), or null. */
  addressOf(name: string): bigint | null {
    if (!this.byName) {
      // built on first use: live tracing never needs it
      this.byName = new Map();
      for (let i = 0; i < this.names.length; i++) if (!this.byName.has(this.names[i])) this.byName.set(this.names[i], i);
    }
    const i = this.byName.get(name);
    return i === undefined ? null : toBig(this.hi[i], this.lo[i]);
  }
}

/** `sym+0xoff`, as the kernel's %pS prints it (without the size). */
export function formatSymbol(r: Resolved | null, addr: bigint): string {
  if (!r || r.implausible) return `0x${addr.toString(16)}`;
  return `${r.name}+0x${r.offset.toString(16)}`;
}
