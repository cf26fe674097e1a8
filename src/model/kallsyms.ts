/**
 * Kernel symbol tables: /proc/kallsyms, System.map and `nm` output.
 * Parse text (from a buffer, or a file read a chunk at a time), then look
 * addresses up by binary search. Addresses are kept as two Uint32Arrays
 * (high and low halves) because kernel addresses do not fit a double and
 * BigInt comparisons are slow in a hot loop; names stay bytes in one blob
 * until a lookup asks for one.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { Parser, type ParseStats } from './kallsyms-parse.js';

export type { ParseStats };

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


/** The last index in [a, b] of sorted halves at or below (hi, lo); none when there is none. */
function lastAtOrBelow(his: Uint32Array, los: Uint32Array, a: number, b: number, hi: number, lo: number, none: number): number {
  let found = none;
  while (a <= b) {
    const m = (a + b) >>> 1;
    const mh = his[m];
    if (mh < hi || (mh === hi && los[m] <= lo)) {
      found = m;
      a = m + 1;
    } else {
      b = m - 1;
    }
  }
  return found;
}

function toBig(hi: number, lo: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

export class SymbolTable {
  private constructor(
    private readonly hi: Uint32Array,
    private readonly lo: Uint32Array,
    /** names: bytes of symbol i are blob[nameAt[i], nameAt[i] + nameLen[i]) */
    private readonly blob: Buffer,
    private readonly nameAt: Uint32Array,
    private readonly nameLen: Uint16Array,
    /** 0 for the core kernel, else index + 1 into moduleNames */
    private readonly mod: Uint16Array,
    private readonly moduleNames: string[],
    /** end of the core kernel's text (_etext), as [hi, lo], or null */
    private readonly etext: [number, number] | null,
    readonly stats: ParseStats,
    /** names of the symbols that share a kept symbol's address (blob ranges), by kept slot */
    private readonly aliases: ReadonlyArray<{ slot: number; at: number; len: number }> = [],
  ) {}

  get size(): number {
    return this.hi.length;
  }

  /**
   * Parses kallsyms / System.map / nm text. Only symbols that can hold code
   * (types t T w W) are kept: a lookup must never land in data.
   */
  static parse(input: string | Buffer): SymbolTable {
    const text = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
    const p = new Parser(text.length);
    p.write(text);
    p.end();
    return SymbolTable.build(p);
  }

  /**
   * Reads and parses a file 1 MiB at a time (/proc/kallsyms is 5+ MB of
   * text, of which only the code symbols are kept). On a node that is in
   * trouble the text must not cost tens of MB: columns and one blob of
   * names, not a string or an object per line.
   */
  static readFile(path: string): SymbolTable {
    const p = new Parser();
    const fd = openSync(path, 'r');
    try {
      const chunk = Buffer.alloc(1 << 20);
      for (;;) {
        const n = readSync(fd, chunk, 0, chunk.length, null);
        if (n <= 0) break;
        p.write(chunk.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
    p.end();
    return SymbolTable.build(p);
  }

  private static build(p: Parser): SymbolTable {
    const { cols: c, stats } = p;
    const count = c.count;
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
    const order = new Uint32Array(count);
    let sorted = true;
    for (let i = 0; i < count; i++) {
      order[i] = i;
      if (i && (c.hi[i] < c.hi[i - 1] || (c.hi[i] === c.hi[i - 1] && c.lo[i] < c.lo[i - 1]))) sorted = false;
    }
    if (!sorted) order.sort((a, b) => c.hi[a] - c.hi[b] || c.lo[a] - c.lo[b] || a - b);
    const keep = new Uint32Array(count);
    // the other names at an address (aliases such as __do_sys_getpid / __ia32_sys_getpid): raw index → kept slot
    const aliasOf: Array<[number, number]> = [];
    let n = 0;
    for (let k = 0; k < count; k++) {
      const i = order[k];
      if (n > 0 && c.hi[keep[n - 1]] === c.hi[i] && c.lo[keep[n - 1]] === c.lo[i]) {
        // one symbol per address: the best-ranked (global over local over weak, never __pfx_)
        if (c.rank[i] > c.rank[keep[n - 1]]) {
          aliasOf.push([keep[n - 1], n - 1]);
          keep[n - 1] = i;
        } else aliasOf.push([i, n - 1]);
        continue;
      }
      keep[n++] = i;
    }
    stats.symbols = n;
    const pick = <T extends Uint32Array | Uint16Array>(from: T, to: T): T => {
      for (let k = 0; k < n; k++) to[k] = from[keep[k]];
      return to;
    };
    return new SymbolTable(
      pick(c.hi, new Uint32Array(n)),
      pick(c.lo, new Uint32Array(n)),
      c.blob.subarray(0, c.blobLen),
      pick(c.nameAt, new Uint32Array(n)),
      pick(c.nameLen, new Uint16Array(n)),
      pick(c.mod, new Uint16Array(n)),
      p.modules,
      p.etext,
      stats,
      aliasOf.filter(([i]) => c.rank[i] > 0).map(([i, slot]) => ({ slot, at: c.nameAt[i], len: c.nameLen[i] })),
    );
  }

  /**
   * names made once per symbol asked for: a log resolves many offsets of the same functions.
   * Filled with null first: an array written at scattered indexes becomes a dictionary.
   */
  private names: Array<string | null> | null = null;

  private name(i: number): string {
    const names = (this.names ??= new Array<string | null>(this.hi.length).fill(null));
    return (names[i] ??= this.blob.toString('latin1', this.nameAt[i], this.nameAt[i] + this.nameLen[i]));
  }

  private module(i: number): string | null {
    return this.mod[i] ? this.moduleNames[this.mod[i] - 1] : null;
  }

  /**
   * Every 64th symbol's address, searched first: its 2,000 or so entries stay in the cache,
   * and a lookup then reads one block of 64 where a search of the whole table misses the cache
   * at each of its last steps.
   */
  private top: { hi: Uint32Array; lo: Uint32Array } | null = null;

  private topIndex(): { hi: Uint32Array; lo: Uint32Array } {
    if (this.top) return this.top;
    const n = Math.ceil(this.hi.length / 64);
    const top = { hi: new Uint32Array(n), lo: new Uint32Array(n) };
    for (let k = 0; k < n; k++) [top.hi[k], top.lo[k]] = [this.hi[k * 64], this.lo[k * 64]];
    return (this.top = top);
  }

  /**
   * The symbol last found for each 4 KiB page of addresses (index + 1; 0: none), by the page's
   * low bits: a log names each function at many offsets, far apart in the log, and a symbol
   * that still holds the address is the answer a search would give.
   */
  private readonly recent = new Int32Array(4096);

  /** Index of the last symbol starting at or below the address, or -1. */
  private index(hi: number, lo: number): number {
    const page = (lo >>> 12) & 4095;
    const r = this.recent[page] - 1;
    if (r >= 0 && this.holds(r, hi, lo)) return r;
    const i = this.search(hi, lo);
    if (i >= 0) this.recent[page] = i + 1;
    return i;
  }

  /** Symbol i starts at or below the address, and the next (if any) above it. */
  private holds(i: number, hi: number, lo: number): boolean {
    const h = this.hi[i];
    if (h > hi || (h === hi && this.lo[i] > lo)) return false;
    if (i + 1 === this.hi.length) return true;
    const nh = this.hi[i + 1];
    return nh > hi || (nh === hi && this.lo[i + 1] > lo);
  }

  private search(hi: number, lo: number): number {
    const top = this.topIndex();
    const block = lastAtOrBelow(top.hi, top.lo, 0, top.hi.length - 1, hi, lo, -1);
    if (block < 0) return -1;
    const a = block * 64;
    return lastAtOrBelow(this.hi, this.lo, a + 1, Math.min(a + 63, this.hi.length - 1), hi, lo, a);
  }

  /** Resolves an address, or null when it lies below every symbol. */
  lookup(addr: bigint): Resolved | null {
    const hi = Number(addr >> 32n);
    const lo = Number(addr & 0xffffffffn);
    const i = this.index(hi, lo);
    if (i < 0) return null;
    this.lastIndex = i;
    const offset = this.offsetIn(i, hi, lo);
    const module = this.module(i);
    const size = i + 1 < this.hi.length ? (this.hi[i + 1] - this.hi[i]) * 0x100000000 + (this.lo[i + 1] - this.lo[i]) : null;
    const start = toBig(this.hi[i], this.lo[i]);
    this.lastStart = start;
    return { name: this.name(i), offset, module, start, size, implausible: this.implausible(i, hi, lo, offset) };
  }

  /**
   * The symbol lookup() would resolve the address (its unsigned 32-bit halves) to and call
   * plausible, or -1: the same answer by numbers, for a caller that resolves a quarter million
   * addresses and needs a string only for the few it prints. The offset is offsetIn().
   */
  plausibleAt(hi: number, lo: number): number {
    const i = this.index(hi, lo);
    return i >= 0 && !this.implausible(i, hi, lo, this.offsetIn(i, hi, lo)) ? i : -1;
  }

  /** The address's distance from symbol i's start. */
  offsetIn(i: number, hi: number, lo: number): number {
    return (hi - this.hi[i]) * 0x100000000 + (lo - this.lo[i]);
  }

  /** Symbol i is the core kernel's (not a module's). */
  isCore(i: number): boolean {
    return this.mod[i] === 0;
  }

  /** Symbol i's name, as lookup() gives it. */
  nameOf(i: number): string {
    return this.name(i);
  }

  private implausible(i: number, hi: number, lo: number, offset: number): boolean {
    if (offset > MAX_FUNCTION_SIZE) return true;
    if (this.mod[i] || !this.etext) return false;
    const [eh, el] = this.etext;
    return hi > eh || (hi === eh && lo >= el);
  }

  /** the symbol of the last lookup: namesAt() is asked of the lookup just made */
  private lastIndex = -1;
  private lastStart: bigint | null = null;

  /**
   * Symbols by name: an open-addressing hash over the names' bytes in the
   * blob (kept symbols, then aliases), built on first use. No string per
   * symbol: a table of 120,000 names costs two arrays, not a Map of strings.
   */
  private nameIndex: { buckets: Int32Array; mask: number; at: Uint32Array; len: Uint16Array; slot: Uint32Array } | null = null;

  /** The table as plain arrays (for a worker thread to hand over without copying), name index included. */
  toParts(): SymbolTableParts {
    const ix = this.nameIndexOf();
    return { hi: this.hi, lo: this.lo, blob: this.blob, nameAt: this.nameAt, nameLen: this.nameLen, mod: this.mod, moduleNames: this.moduleNames, etext: this.etext, stats: this.stats, aliases: [...this.aliases], index: ix };
  }

  static fromParts(p: SymbolTableParts): SymbolTable {
    const blob = Buffer.from(p.blob.buffer, p.blob.byteOffset, p.blob.byteLength);
    const t = new SymbolTable(p.hi, p.lo, blob, p.nameAt, p.nameLen, p.mod, p.moduleNames, p.etext, p.stats, p.aliases);
    t.nameIndex = p.index;
    return t;
  }

  private static hash(b: Buffer, at: number, len: number): number {
    let h = 0x811c9dc5;
    for (let k = 0; k < len; k++) h = Math.imul(h ^ b[at + k], 0x01000193);
    return h >>> 0;
  }

  private nameIndexOf(): NonNullable<SymbolTable['nameIndex']> {
    if (this.nameIndex) return this.nameIndex;
    const n = this.size + this.aliases.length;
    const at = new Uint32Array(n);
    const len = new Uint16Array(n);
    const slot = new Uint32Array(n);
    for (let i = 0; i < this.size; i++) [at[i], len[i], slot[i]] = [this.nameAt[i], this.nameLen[i], i];
    this.aliases.forEach((a, k) => ([at[this.size + k], len[this.size + k], slot[this.size + k]] = [a.at, a.len, a.slot]));
    let cap = 1;
    while (cap < n * 2) cap <<= 1;
    const buckets = new Int32Array(cap).fill(-1);
    const mask = cap - 1;
    for (let e = 0; e < n; e++) {
      let h = SymbolTable.hash(this.blob, at[e], len[e]) & mask;
      while (buckets[h] !== -1) h = (h + 1) & mask;
      buckets[h] = e;
    }
    this.nameIndex = { buckets, mask, at, len, slot };
    return this.nameIndex;
  }

  /** Kept slots of every symbol (or alias) with this name, in table order. */
  private slotsNamed(name: string): number[] {
    const ix = this.nameIndexOf();
    const q = Buffer.from(name, 'latin1');
    const out: number[] = [];
    for (let h = SymbolTable.hash(q, 0, q.length) & ix.mask; ix.buckets[h] !== -1; h = (h + 1) & ix.mask) {
      const e = ix.buckets[h];
      if (ix.len[e] === q.length && this.blob.compare(q, 0, q.length, ix.at[e], ix.at[e] + ix.len[e]) === 0 && !out.includes(ix.slot[e])) out.push(ix.slot[e]);
    }
    return out.sort((a, b) => a - b);
  }

  /** Address of a code symbol by exact name (the lowest if repeated), or null. */
  addressOf(name: string): bigint | null {
    const slots = this.slotsNamed(name);
    return slots.length ? toBig(this.hi[slots[0]], this.lo[slots[0]]) : null;
  }

  /** Every symbol of that name (static functions repeat across files; aliases count), lowest first. */
  symbolsNamed(name: string): Array<{ start: bigint; module: string | null }> {
    return this.slotsNamed(name).map((i) => ({ start: toBig(this.hi[i], this.lo[i]), module: this.module(i) }));
  }

  /** Every name at the start of the symbol a lookup returned: its own, then its aliases. */
  namesAt(r: Resolved): string[] {
    const i = r.start === this.lastStart ? this.lastIndex : this.index(Number(r.start >> 32n), Number(r.start & 0xffffffffn));
    if (i < 0) return [r.name];
    return [this.name(i), ...(this.aliasesBySlot().get(i) ?? []).map((a) => this.blob.toString('latin1', a.at, a.at + a.len))];
  }

  private bySlot: Map<number, Array<{ at: number; len: number }>> | null = null;

  /** The aliases of each kept slot, indexed on first use (namesAt is asked once per drop site). */
  private aliasesBySlot(): Map<number, Array<{ at: number; len: number }>> {
    if (!this.bySlot) {
      this.bySlot = new Map();
      for (const a of this.aliases) {
        const list = this.bySlot.get(a.slot);
        if (list) list.push(a);
        else this.bySlot.set(a.slot, [a]);
      }
    }
    return this.bySlot;
  }
}

/** A SymbolTable's arrays, as toParts() gives them. */
export interface SymbolTableParts {
  hi: Uint32Array;
  lo: Uint32Array;
  blob: Uint8Array;
  nameAt: Uint32Array;
  nameLen: Uint16Array;
  mod: Uint16Array;
  moduleNames: string[];
  etext: [number, number] | null;
  stats: ParseStats;
  aliases: Array<{ slot: number; at: number; len: number }>;
  index: { buckets: Int32Array; mask: number; at: Uint32Array; len: Uint16Array; slot: Uint32Array };
}

/** `sym+0xoff`, as the kernel's %pS prints it (without the size). */
export function formatSymbol(r: Resolved | null, addr: bigint): string {
  if (!r || r.implausible) return `0x${addr.toString(16)}`;
  return `${r.name}+0x${r.offset.toString(16)}`;
}
