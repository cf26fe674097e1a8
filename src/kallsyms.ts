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


function toBig(hi: number, lo: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** Rank for choosing among symbols at one address: global beats local beats weak; no __pfx_ padding. */
function rankCode(type: number, name: string): number {
  if (name.startsWith('__pfx_') || name.startsWith('__cfi_')) return 0;
  return type === 84 ? 4 : type === 116 ? 3 : type === 87 ? 2 : 1;
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
  static parse(input: string | Buffer): SymbolTable {
    // Bytes, not a string split into lines, and column arrays, not an object per line:
    // a 122k-line table must not cost tens of MB of garbage on a node that is in trouble.
    const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
    let cap = 1 << 14;
    let hiC = new Uint32Array(cap);
    let loC = new Uint32Array(cap);
    let rankC = new Uint8Array(cap);
    const nameC: string[] = [];
    const modC: (string | null)[] = [];
    const modIntern = new Map<string, string>();
    let count = 0;
    const stats: ParseStats = { lines: 0, symbols: 0, zeroAddresses: 0, skipped: 0 };
    let etext: [number, number] | null = null;
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      let end = buf.indexOf(10, pos);
      if (end < 0) end = len;
      const ls = pos;
      let le = end;
      pos = end + 1;
      if (le > ls && buf[le - 1] === 13) le--;
      if (le === ls) continue;
      stats.lines++;
      let sp = ls;
      while (sp < le && buf[sp] !== 32) sp++;
      if (sp === ls || sp + 2 >= le || buf[sp + 2] !== 32 || sp - ls > 16) {
        stats.skipped++;
        continue;
      }
      let hi = 0;
      let lo = 0;
      let ok = true;
      for (let i = ls; i < sp; i++) {
        const c = buf[i];
        const v = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
        if (v < 0) {
          ok = false;
          break;
        }
        if (sp - i > 8) hi = hi * 16 + v;
        else lo = lo * 16 + v;
      }
      if (!ok) {
        stats.skipped++;
        continue;
      }
      if (hi === 0 && lo === 0) {
        stats.zeroAddresses++;
        continue;
      }
      const type = buf[sp + 1];
      const isText = type === 116 || type === 84 || type === 119 || type === 87; // t T w W
      const ns = sp + 3;
      let ne = ns;
      while (ne < le && buf[ne] !== 9 && buf[ne] !== 91 && buf[ne] !== 32) ne++; // tab, '[', space
      if (!isText) {
        if (ne - ns === 6 && buf.toString('latin1', ns, ne) === '_etext' && buf.indexOf(91, ne) < 0) etext = [hi, lo];
        continue;
      }
      let module: string | null = null;
      let br = ne;
      while (br < le && buf[br] !== 91) br++;
      if (br < le) {
        let close = br + 1;
        while (close < le && buf[close] !== 93) close++;
        const m = buf.toString('latin1', br + 1, close);
        module = modIntern.get(m) ?? (modIntern.set(m, m), m);
      }
      const name = buf.toString('latin1', ns, ne);
      if (name === '_etext' && !module) etext = [hi, lo];
      if (count === cap) {
        cap *= 2;
        const h = new Uint32Array(cap);
        h.set(hiC);
        hiC = h;
        const l = new Uint32Array(cap);
        l.set(loC);
        loC = l;
        const r = new Uint8Array(cap);
        r.set(rankC);
        rankC = r;
      }
      hiC[count] = hi;
      loC[count] = lo;
      rankC[count] = rankCode(type, name);
      nameC.push(name);
      modC.push(module);
      count++;
    }
    if (count === 0) {
      if (stats.zeroAddresses > 0) {
        throw new KallsymsError(
          'every address in this symbol table is zero (kernel.kptr_restrict hides them): ' +
            'read /proc/kallsyms as root, or run `sysctl kernel.kptr_restrict=0` first',
        );
      }
      throw new KallsymsError('no code symbols found: this does not look like /proc/kallsyms, System.map or nm output');
    }
    // /proc/kallsyms lists the core kernel sorted and module sections unsorted: sort only if needed
    let best = 0;
    const order = new Uint32Array(count);
    let sorted = true;
    for (let i = 0; i < count; i++) {
      order[i] = i;
      if (i && (hiC[i] < hiC[i - 1] || (hiC[i] === hiC[i - 1] && loC[i] < loC[i - 1]))) sorted = false;
    }
    if (!sorted) order.sort((a, b) => hiC[a] - hiC[b] || loC[a] - loC[b] || a - b);
    const hiA = new Uint32Array(count);
    const loA = new Uint32Array(count);
    const names: string[] = [];
    const modules: (string | null)[] = [];
    let n = 0;
    for (let k = 0; k < count; k++) {
      const i = order[k];
      if (n > 0 && hiA[n - 1] === hiC[i] && loA[n - 1] === loC[i]) {
        // one symbol per address: the best-ranked (global over local over weak, never __pfx_)
        if (rankC[i] > rankC[best]) {
          best = i;
          names[n - 1] = nameC[i];
          modules[n - 1] = modC[i];
        }
        continue;
      }
      best = i;
      hiA[n] = hiC[i];
      loA[n] = loC[i];
      names.push(nameC[i]);
      modules.push(modC[i]);
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
